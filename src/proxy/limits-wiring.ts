// The limit backend for this process, and warming its counters off the request path: every
// counter the snapshot implies is peeked (which seeds it from the store) at start and after
// each reload, so requests never wait for a seeding read.
import type { Logger } from 'pino';
import type { Store } from '../shared/db/store.js';
import { FailoverLimitBackend } from '../shared/limits/failover-backend.js';
import { MemoryLimitBackend } from '../shared/limits/memory-backend.js';
import { RedisLimitBackend } from '../shared/limits/redis-backend.js';
import { descendantsOf, storeSeeder } from '../shared/limits/store-seeder.js';
import type { CounterRef, CounterSeeder, LimitBackend } from '../shared/limits/types.js';
import { effectiveSince, isRolling } from '../shared/limits/windows.js';
import { modelMatches } from '../shared/model-patterns.js';
import type { UsageRecord } from '../shared/usage/types.js';
import type { SinkHold } from '../shared/usage/store-sink.js';
import { creditCounterId, limitCounter } from '../shared/snapshot/counters.js';
import type { Snapshot } from '../shared/snapshot/types.js';
import type { ScopeType } from '../shared/services/limits.js';
import type { ProxyConfig } from './config.js';

export interface WiredLimits {
  limits: LimitBackend;
  /** Null when all is well; otherwise why the shared counters are not in use. */
  problem(): string | null;
  /** This instance's clock minus Redis's at the last check, ms (0 without Redis). */
  clockSkewMs(): number;
  /** Stops the clock check. */
  close(): void;
}

/**
 * One instance: counters in memory, seeded from the store. With --redis: counters in Redis
 * shared by every instance, falling back per org failure mode when Redis is unreachable.
 */
/** How often an instance compares its clock with Redis's, and from what skew it warns. */
export const SKEW_CHECK_MS = 60_000;
export const SKEW_WARN_MS = 1_000;

export async function createLimitBackend(
  config: ProxyConfig,
  store: Store,
  snapshot: () => Snapshot,
  log: Logger,
  usageSink: () => { hold(): SinkHold } | null = () => null,
  now: () => number = Date.now,
): Promise<WiredLimits> {
  const seeder = heldSeeder(storeSeeder(store, snapshot), usageSink, snapshot);
  const memory = new MemoryLimitBackend({ seeder });
  if (!config.redisUrl) return { limits: memory, problem: () => null, clockSkewMs: () => 0, close: () => {} };
  const redis = new RedisLimitBackend({ url: config.redisUrl, prefix: config.redisPrefix, seeder });
  try {
    await redis.waitReady(3_000);
  } catch {
    log.warn('Redis is not reachable at start: fail-closed orgs get 503, fail-open orgs use local counters until it is');
  }
  const limits = new FailoverLimitBackend(redis, memory, {
    onStateChange: (state, health) => log.warn({ ...health }, state === 'redis' ? 'shared counters back in use' : 'shared counters unreachable: failure modes apply'),
  });
  // Rolling windows on Redis are cut by each instance's clock (see the README on clock skew): the
  // skew against Redis's clock is measured now and every minute, exported, and warned about.
  let skew = 0;
  let warnedAt = 0;
  const checkSkew = async () => {
    try {
      skew = await redis.clockSkewMs(now);
    } catch {
      return; // Redis unreachable: said elsewhere
    }
    if (Math.abs(skew) >= SKEW_WARN_MS && Date.now() - warnedAt >= 10 * SKEW_CHECK_MS) {
      warnedAt = Date.now();
      log.warn({ skewMs: Math.round(skew) }, "this instance's clock differs from Redis's: rolling limits (per minute, per hour) are only as exact as the instances' clocks agree; sync them (NTP)");
    }
  };
  await checkSkew();
  const timer = setInterval(() => void checkSkew(), SKEW_CHECK_MS);
  timer.unref();
  return {
    limits,
    problem: () => (limits.health().state === 'redis' ? null : (limits.health().lastError ?? 'Redis unreachable')),
    clockSkewMs: () => skew,
    close: () => clearInterval(timer),
  };
}

/**
 * A seed read from the store with this process's usage sink held at a cut (see
 * StoreUsageSink.hold): the records of requests settled before the seed started are written
 * first, so the read counts them, and the ones settled after it are kept back until the read is
 * done, so it does not (the backend charges those to the counter itself). Without it a limit
 * added under load started without the last flush interval's requests. The hold is taken before
 * the first await: in the same turn as the backend starts collecting charges for the counter.
 */
export function heldSeeder(seeder: CounterSeeder, usageSink: () => { hold(): SinkHold } | null, snapshot?: () => Snapshot): CounterSeeder {
  return async (c, now) => {
    const hold = isRolling(c.window) ? null : (usageSink()?.hold() ?? null);
    if (!hold) return seeder(c, now);
    try {
      // A store that refuses writes may still answer reads: the seed is read all the same, and
      // the cut still keeps later events out of it. Failing the seed instead started open orgs
      // at 0. What the read lacks then is this process's records still waiting to be written
      // (e.g. Redis lost right after a Postgres outage: the fallback's counters started without
      // them); they are added from the buffer, as they stand once the read is done.
      const written = await hold.ready.then(
        () => true,
        () => false,
      );
      const stored = await seeder(c, now);
      if (written) return stored;
      return stored + unwrittenAmount(hold.unwritten(), c, now, snapshot?.());
    } finally {
      hold.release();
    }
  };
}

/** What records not yet in the store add to a calendar, total or credit counter (as the store seed counts them). */
export function unwrittenAmount(records: readonly UsageRecord[], c: CounterRef, now: number, snapshot?: Snapshot): number {
  if (!records.length || isRolling(c.window)) return 0;
  if (c.metric === 'credits') {
    const scope = `${c.scopeType}:${c.scopeId}`;
    let sum = 0;
    for (const r of records) if (r.creditScopes.includes(scope)) sum += r.costMicros;
    return sum;
  }
  const since = effectiveSince(c.window, c.since, now);
  const keys = c.scopeType === 'key' ? new Set(descendantsOf(snapshot, c.scopeId)) : null;
  let sum = 0;
  for (const r of records) {
    if (r.ts < since) continue;
    if (c.scopeType === 'org' ? r.orgId !== c.scopeId : c.scopeType === 'user' ? r.userId !== c.scopeId : !keys!.has(r.keyId)) continue;
    if (c.model && !modelMatches(c.model, r.model)) continue;
    sum += c.metric === 'requests' ? 1 : c.metric === 'tokens' ? r.totalTokens : r.costMicros;
  }
  return sum;
}

export function snapshotCounters(snapshot: Snapshot, now: number): CounterRef[] {
  const out: CounterRef[] = [];
  for (const list of snapshot.limits.values()) for (const l of list) out.push(limitCounter(snapshot, l, now));
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
  // Counters of limits that are gone (removed, set again, restarted by a quota reset) are
  // dropped: only requests admitted before the reload still touch them.
  limits.retain?.(new Set(all.map((c) => c.id)));
  try {
    for (let i = 0; i < all.length; i += BATCH) await limits.peek(all.slice(i, i + BATCH), now);
  } catch (err) {
    log.warn({ err }, 'could not warm the limit counters; they will be seeded on first use');
  }
}
