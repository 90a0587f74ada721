// The limit backend for this process, and warming its counters off the request path: every
// counter the snapshot implies is peeked (which seeds it from the store) at start and after
// each reload, so requests never wait for a seeding read.
import type { Logger } from 'pino';
import type { Store } from '../shared/db/store.js';
import { GatewayError } from '../shared/errors.js';
import { MemoryLimitBackend } from '../shared/limits/memory-backend.js';
import { storeSeeder } from '../shared/limits/store-seeder.js';
import type { CounterRef, LimitBackend } from '../shared/limits/types.js';
import { counterId, creditCounterId, sinceFor } from '../shared/snapshot/counters.js';
import type { Snapshot } from '../shared/snapshot/types.js';
import type { ScopeType } from '../shared/services/limits.js';
import type { ProxyConfig } from './config.js';

export async function createLimitBackend(config: ProxyConfig, store: Store, snapshot: () => Snapshot, _log: Logger): Promise<LimitBackend> {
  if (config.redisUrl) throw new GatewayError('usage_error', 'Redis counters are not available in this build yet');
  return new MemoryLimitBackend({ seeder: storeSeeder(store, snapshot) });
}

export function snapshotCounters(snapshot: Snapshot, now: number): CounterRef[] {
  const out: CounterRef[] = [];
  for (const list of snapshot.limits.values()) {
    for (const l of list) {
      const scope = { type: l.scopeType, id: l.scopeId };
      out.push({ id: counterId(scope, l.model, l.metric, l.window), scopeType: l.scopeType, scopeId: l.scopeId, model: l.model, metric: l.metric, window: l.window, max: l.max, since: sinceFor(snapshot, scope, l.window, now) });
    }
  }
  for (const [scopeKey, granted] of snapshot.creditGranted) {
    const i = scopeKey.indexOf(':');
    const scope = { type: scopeKey.slice(0, i) as ScopeType, id: scopeKey.slice(i + 1) };
    out.push({ id: creditCounterId(scope), scopeType: scope.type, scopeId: scope.id, model: '', metric: 'credits', window: 'total', max: granted, since: 0 });
  }
  return out;
}

const BATCH = 256;

export async function warmCounters(limits: LimitBackend, snapshot: Snapshot, now: number, log: Logger): Promise<void> {
  const all = snapshotCounters(snapshot, now);
  try {
    for (let i = 0; i < all.length; i += BATCH) await limits.peek(all.slice(i, i + BATCH), now);
  } catch (err) {
    log.warn({ err }, 'could not warm the limit counters; they will be seeded on first use');
  }
}
