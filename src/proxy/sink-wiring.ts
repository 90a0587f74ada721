// The usage sink for this process.
import type { Logger } from 'pino';
import type { Store } from '../shared/db/store.js';
import type { UsageRecord, UsageSink } from '../shared/usage/types.js';
import type { ProxyConfig } from './config.js';

export function createUsageSink(_config: ProxyConfig, _store: Store, _log: Logger): UsageSink {
  const buffer: UsageRecord[] = [];
  return {
    add: (r) => void buffer.push(r),
    flush: async () => {},
    pending: () => buffer.length,
    close: async () => {},
  };
}
