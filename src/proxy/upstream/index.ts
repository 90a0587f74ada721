// Picks the adapter for an org's provider.
import type { SnapshotOrg } from '../../shared/snapshot/types.js';
import { createMockAdapter } from './mock.js';
import { createOpenAICompatibleAdapter } from './openai-compatible.js';
import type { PoolRegistry } from './pools.js';
import type { UpstreamAdapter } from './types.js';

export interface Upstreams {
  forOrg(org: SnapshotOrg): UpstreamAdapter;
}

export function createUpstreams(pools: PoolRegistry): Upstreams {
  const mock = createMockAdapter();
  const network = {
    openrouter: createOpenAICompatibleAdapter(pools, 'openrouter'),
    openai: createOpenAICompatibleAdapter(pools, 'openai'),
    'openai-compatible': createOpenAICompatibleAdapter(pools, 'openai-compatible'),
  };
  return {
    forOrg: (org) => (org.provider === 'mock' ? mock : network[org.provider]),
  };
}
