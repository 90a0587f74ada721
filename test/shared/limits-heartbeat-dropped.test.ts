// Regression test from the review of 2026-12-07 (of that day's own fixes): what the comment below describes was a bug, fixed then.
// the Redis heartbeat keeps refreshing a reservation whose settlement the failover
// backend dropped (settlement queue full: "its reservation stands until it expires"). The
// settlement never reaches RedisLimitBackend.settle, so release() is never called and the
// dropped reservation is kept alive for MAX_HELD_MS (a day) instead of expiring after the TTL.
import { afterEach, describe, expect, it } from 'vitest';
import { FailoverLimitBackend } from '../../src/shared/limits/failover-backend.js';
import { MemoryLimitBackend } from '../../src/shared/limits/memory-backend.js';
import { RedisLimitBackend } from '../../src/shared/limits/redis-backend.js';
import { blackhole } from '../helpers/blackhole.js';
import { REDIS_URL } from '../helpers/stores.js';
import { amt, counter, reserved } from './limits-contract.js';

const prefix = () => `gwtest:${Math.random().toString(36).slice(2)}:`;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('redis heartbeat and the failover settlement queue', () => {
  it('a reservation whose settlement was dropped expires after the TTL, as the queue says', async () => {
    const target = new URL(REDIS_URL);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 6379) });
    cleanups.push(() => hole.close());
    const p = prefix();
    const ttl = 600;
    const redis = new RedisLimitBackend({ url: hole.via(REDIS_URL), prefix: p, commandTimeoutMs: 200, stuckMs: 300, reservationTtlMs: ttl });
    await redis.waitReady(5000);
    const f = new FailoverLimitBackend(redis, new MemoryLimitBackend(), { maxQueued: 1 });
    cleanups.push(() => f.close());
    const check = new RedisLimitBackend({ url: REDIS_URL, prefix: p });
    await check.waitReady(5000);
    cleanups.push(() => check.close());
    const c = counter('tokens', 'total', 1_000);
    const now = Date.now();
    const b = reserved(await f.reserve('b', [c], amt(400), now));
    const d = reserved(await f.reserve('d', [c], amt(100), now));
    const e = reserved(await f.reserve('e', [c], amt(100), now));
    expect(redis.held).toBe(3);
    hole.swallow();
    await f.settle(b, amt(10), now); // times out: fallback, queued (b released from the heartbeat)
    await f.settle(d, amt(10), now); // queued without reaching redis.settle: the queue drops b's
    await f.settle(e, amt(10), now); // ... and this drops d's: d stays in the heartbeat's map
    expect(f.health().state).toBe('fallback');
    hole.heal();
    await until(() => f.health().state === 'redis', 10_000);
    // Well past the TTL: b's and d's reservations (dropped settlements) have expired; e replayed.
    await new Promise((r) => setTimeout(r, ttl * 4));
    const used = (await check.peek([c], Date.now()))[0]!.used;
    expect({ held: redis.held, used }).toEqual({ held: 0, used: 10 });
  }, 30_000);
});
