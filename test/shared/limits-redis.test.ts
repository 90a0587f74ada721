import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FailoverLimitBackend, type LimitState } from '../../src/shared/limits/failover-backend.js';
import { MemoryLimitBackend } from '../../src/shared/limits/memory-backend.js';
import { RedisLimitBackend } from '../../src/shared/limits/redis-backend.js';
import { storeSeeder } from '../../src/shared/limits/store-seeder.js';
import { applyLimits } from '../../src/shared/services/limits.js';
import { authenticate, countersFor, loadSnapshot } from '../../src/shared/snapshot/index.js';
import { blackhole } from '../helpers/blackhole.js';
import { REDIS_URL } from '../helpers/stores.js';
import { MASTER_KEY, world } from './snapshot-fixtures.js';
import { amt, counter, limitBackendContract, reserved } from './limits-contract.js';

const prefix = () => `gwtest:${Math.random().toString(36).slice(2)}:`;

async function connected(b: RedisLimitBackend): Promise<RedisLimitBackend> {
  try {
    await b.waitReady(5000);
  } catch {
    throw new Error(`Redis is not reachable at ${REDIS_URL}: start it with 'eval "$(test/scripts/services.sh start)"'`);
  }
  return b;
}

limitBackendContract('redis (two instances on separate connections)', async (opts) => {
  const p = prefix();
  const a = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, seeder: opts?.seeder }));
  const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, seeder: opts?.seeder }));
  return {
    backends: [a, b],
    close: async () => {
      await a.close();
      await b.close();
    },
  };
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const T0 = Date.UTC(2030, 5, 10, 12);

describe('redis limit backend', () => {
  it('stops counting a reservation that is never settled once it expires', async () => {
    const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: prefix(), reservationTtlMs: 1000 }));
    cleanups.push(() => b.close());
    const c = counter('tokens', 'total', 1000);
    reserved(await b.reserve('crashed', [c], amt(800), T0));
    expect((await b.reserve('blocked', [c], amt(800), T0 + 500)).ok).toBe(false);
    reserved(await b.reserve('later', [c], amt(800), T0 + 1001));
  });

  it('keeps the reservation of a running request past the TTL (its instance refreshes it), and lets it expire once the instance is gone', async () => {
    const p = prefix();
    const a = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, reservationTtlMs: 600 }));
    const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, reservationTtlMs: 600 }));
    cleanups.push(() => b.close());
    const c = counter('tokens', 'total', 1000);
    const long = reserved(await a.reserve('long-stream', [c], amt(800), Date.now()));
    expect(a.held).toBe(1);
    // Three TTLs later the request still runs: its room is still taken, for every instance.
    await new Promise((r) => setTimeout(r, 1_800));
    expect((await b.reserve('other', [c], amt(800), Date.now())).ok).toBe(false);
    await a.settle(long, amt(100), Date.now());
    expect(a.held).toBe(0);
    reserved(await b.reserve('after', [c], amt(800), Date.now()));
    // A reservation whose instance is gone (closed, as a crashed one stops refreshing) expires.
    const d = counter('tokens', 'total', 1000);
    reserved(await a.reserve('orphan', [d], amt(800), Date.now()));
    await a.close();
    expect((await b.reserve('blocked', [d], amt(800), Date.now())).ok).toBe(false);
    await new Promise((r) => setTimeout(r, 700));
    reserved(await b.reserve('freed', [d], amt(800), Date.now()));
  });

  it('seeds an absent counter key from the store rollups, once for all instances', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    const now = Date.now();
    await applyLimits(w.store.db, w.ctx, { type: 'org', id: w.orgId }, [{ metric: 'tokens', window: 'day', max: 1_000 }]);
    await w.store.db.insert(w.store.t.usageDaily).values({
      day: new Date(now).toISOString().slice(0, 10),
      orgId: w.orgId,
      keyId: w.child.key.id,
      userId: w.userId,
      model: 'm',
      requests: 2,
      errors: 0,
      promptTokens: 0,
      completionTokens: 0,
      totalTokens: 600,
      costMicros: 0,
    });
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    const auth = authenticate(snap, w.child.plaintext, now);
    if (!auth.ok) throw new Error(auth.code);
    const p = prefix();
    const seeder = storeSeeder(w.store, () => snap);
    const a = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, seeder }));
    const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, seeder }));
    cleanups.push(() => a.close(), () => b.close());
    const counters = countersFor(snap, auth, 'm', now);
    expect(await a.reserve('r1', counters, amt(401), now)).toMatchObject({ ok: false, code: 'quota_exceeded', used: 600 });
    reserved(await b.reserve('r2', counters, amt(400), now));
    expect((await a.peek(counters, now))[0]!.used).toBe(1_000);
  });

  it('settles once even when both instances settle the same reservation', async () => {
    const p = prefix();
    const a = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p }));
    const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p }));
    cleanups.push(() => a.close(), () => b.close());
    const c = counter('cost', 'month', 1_000_000);
    const r = reserved(await a.reserve('req', [c], amt(1, 1, 5000), T0));
    await a.settle(r, amt(1, 1, 1234), T0 + 10);
    await b.settle(r, amt(1, 1, 1234), T0 + 20);
    expect((await b.peek([c], T0 + 30))[0]!.used).toBe(1234);
  });

  it('settle on a counter whose key Redis lost answers from a fresh seed plus its own usage, not from nothing', async () => {
    const p = prefix();
    let seeds = 0;
    const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, seeder: async () => (++seeds === 1 ? 100 : 900) }));
    cleanups.push(() => b.close());
    const c = counter('tokens', 'day', 10_000);
    const r = reserved(await b.reserve('lost', [c], amt(50), T0));
    expect(r.states[0]!.used).toBe(150);
    // Redis emptied (restarted without persistence, flushed): the store now holds 900, but not
    // this request, whose usage event is recorded only once its settlement returns (billing.ts):
    // the settlement adds its 40 after the fresh seed.
    const keys = await b.client.keys(`${p}*`);
    await b.client.del(...keys);
    const after = await b.settle(r, amt(40), T0 + 10);
    expect(seeds).toBe(2);
    expect(after[0]!.used).toBe(940);
    expect(Number(await b.client.get(keys.find((k) => k.startsWith(`${p}c:`))!))).toBe(940);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new RedisLimitBackend({ url: `redis://127.0.0.1:${port}` });
  try {
    await probe.waitReady(5000);
  } finally {
    await probe.close();
  }
  return proc;
}

async function stop(proc: ChildProcess): Promise<void> {
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('redis limit backend on a connection that stops answering (a partition, a frozen server)', () => {
  it('a timed-out command starts a new connection, a handshake that hears nothing is started over, and nothing is sent twice', async () => {
    const target = new URL(REDIS_URL);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 6379) });
    cleanups.push(() => hole.close());
    const p = prefix();
    const b = await connected(new RedisLimitBackend({ url: hole.via(REDIS_URL), prefix: p, commandTimeoutMs: 200, stuckMs: 300 }));
    cleanups.push(() => b.close());
    const check = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p }));
    cleanups.push(() => check.close());
    const c = counter('tokens', 'total', 1_000_000);
    const r = reserved(await b.reserve('before', [c], amt(10), T0));
    await b.settle(r, amt(10), T0);

    hole.swallow();
    // Sent into the void: fails after the command timeout (unavailable), and is not sent again
    // by ioredis on the next connection (the failover backend replays settlements itself).
    await expect(b.reserve('lost', [c], amt(100), T0)).rejects.toMatchObject({ code: 'unavailable' });
    // The new connection connects (TCP) and then hears nothing: without the watchdog it would
    // wait in 'connect' for ever, even after the network heals.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(b.ready()).toBe(false);
    hole.heal();
    const t0 = performance.now();
    await b.waitReady(5_000);
    expect(performance.now() - t0).toBeLessThan(3_000);
    await new Promise((r) => setTimeout(r, 300));
    const [state] = await check.peek([c], T0);
    expect(state!.used).toBe(10);
  });
});

describe('redis limit backend on a slow Redis', () => {
  it('a command that times out behind a slow one does not cost the connection: Redis still answers', async () => {
    const p = prefix();
    const b = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, commandTimeoutMs: 200 }));
    cleanups.push(() => b.close());
    const other = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p }));
    cleanups.push(() => other.close());
    const drops: boolean[] = [];
    b.onStateChange((ready) => drops.push(ready));
    const c = counter('tokens', 'total', 1_000_000);
    reserved(await b.reserve('warm', [c], amt(1), T0));
    // A script that keeps the (single-threaded) server busy for 350 ms.
    const busy = other.client.eval(
      "local s = redis.call('TIME') local t0 = s[1] * 1e6 + s[2] while true do local n = redis.call('TIME') if n[1] * 1e6 + n[2] - t0 > 350000 then break end end return 1",
      0,
    );
    await new Promise((r) => setTimeout(r, 20));
    await expect(b.reserve('slow', [c], amt(1), T0)).rejects.toMatchObject({ code: 'unavailable' });
    await busy;
    await new Promise((r) => setTimeout(r, 300));
    expect(drops).toEqual([]);
    expect(b.ready()).toBe(true);
    reserved(await b.reserve('after', [c], amt(1), T0));
  });
});

describe('redis failover', () => {
  it('refuses closed orgs, serves open orgs locally while Redis is down, and reconciles when it returns', async () => {
    const port = await freePort();
    let proc = await startRedis(port);
    cleanups.push(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });
    const redis = await connected(new RedisLimitBackend({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300 }));
    const states: LimitState[] = [];
    const f = new FailoverLimitBackend(redis, new MemoryLimitBackend(), { onStateChange: (s) => states.push(s) });
    cleanups.push(() => f.close());
    const c = counter('tokens', 'total', 1000);

    const before = reserved(await f.reserve('r1', [c], amt(100), T0));
    await stop(proc);
    await until(() => !redis.ready());
    await expect(redis.reserve('direct', [c], amt(1), T0)).rejects.toMatchObject({ code: 'unavailable' });
    const started = Date.now();
    await expect(f.reserve('closed', [c], amt(1), T0)).rejects.toMatchObject({ code: 'unavailable' });
    expect(Date.now() - started).toBeLessThan(1000);
    const local = reserved(await f.reserve('open', [c], amt(200), T0, { failureMode: 'open' }));
    await f.settle(local, amt(150), T0 + 1);
    await f.settle(before, amt(80), T0 + 2);
    expect(f.health()).toMatchObject({ state: 'fallback', redisReady: false, queuedSettlements: 1 });

    proc = await startRedis(port);
    await until(() => f.health().state === 'redis');
    expect(states).toEqual(['fallback', 'redis']);
    expect(f.health()).toMatchObject({ queuedSettlements: 0, lastError: null });
    // The missed settlement (80) and the fallback period (150) both reached the shared counter.
    expect((await f.peek([c], T0 + 3))[0]!.used).toBe(230);
    reserved(await f.reserve('after', [c], amt(770), T0 + 4));
    expect((await f.reserve('over', [c], amt(1), T0 + 5)).ok).toBe(false);
  });
});

describe('redis failover: the fallback period handed over', () => {
  it('adds the minute and hour windows the fallback counted to the shared ones, not only calendar counters', async () => {
    const target = new URL(REDIS_URL);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 6379) });
    cleanups.push(() => hole.close());
    const p = prefix();
    const redis = await connected(new RedisLimitBackend({ url: hole.via(REDIS_URL), prefix: p, commandTimeoutMs: 200, stuckMs: 300 }));
    const f = new FailoverLimitBackend(redis, new MemoryLimitBackend());
    cleanups.push(() => f.close());
    const check = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p }));
    cleanups.push(() => check.close());
    const rpm = counter('requests', 'minute', 100);
    const tpm = counter('tokens', 'hour', 10_000);
    const now = Date.now();
    await f.settle(reserved(await f.reserve('a', [rpm, tpm], amt(10), now)), amt(10), now);
    hole.swallow();
    await f.settle(reserved(await f.reserve('b', [rpm, tpm], amt(20), now + 1, { failureMode: 'open' })), amt(20), now + 1);
    await f.settle(reserved(await f.reserve('c', [rpm, tpm], amt(30), now + 2, { failureMode: 'open' })), amt(30), now + 2);
    expect(f.health().state).toBe('fallback');
    hole.heal();
    await until(() => f.health().state === 'redis', 10_000);
    // Before, the fallback's rolling windows were dropped: Redis knew 1 request and 10 tokens.
    const [r, t] = await check.peek([rpm, tpm], Date.now());
    expect(r!.used).toBe(3);
    expect(t!.used).toBe(60);
  });
});

describe('redis failover: a reserve that timed out but reached Redis', () => {
  it('is released when Redis answers again, so the shared counter holds only what was used', async () => {
    const p = prefix();
    const redis = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p, commandTimeoutMs: 200 }));
    const f = new FailoverLimitBackend(redis, new MemoryLimitBackend());
    cleanups.push(() => f.close());
    const other = await connected(new RedisLimitBackend({ url: REDIS_URL, prefix: p }));
    cleanups.push(() => other.close());
    const c = counter('tokens', 'total', 1_000_000);
    await f.settle(reserved(await f.reserve('w', [c], amt(10), T0)), amt(10), T0);
    // Redis busy for 350 ms: the reserve times out here, and runs there once the script is done.
    const busy = other.client.eval(
      "local s = redis.call('TIME') local t0 = s[1] * 1e6 + s[2] while true do local n = redis.call('TIME') if n[1] * 1e6 + n[2] - t0 > 350000 then break end end return 1",
      0,
    );
    await new Promise((r) => setTimeout(r, 20));
    const slow = reserved(await f.reserve('slow', [c], amt(100), T0, { failureMode: 'open' }));
    expect(f.health().state).toBe('fallback');
    await f.settle(slow, amt(40), T0);
    await busy;
    await new Promise((r) => setTimeout(r, 100));
    // The next request finds Redis answering: reconciliation, then Redis again.
    await f.settle(reserved(await f.reserve('next', [c], amt(1), T0, { failureMode: 'open' })), amt(1), T0);
    await until(() => f.health().state === 'redis');
    // Before, the timed-out reservation (100) stood in Redis until it expired (15 min).
    expect((await other.peek([c], T0))[0]!.used).toBe(10 + 40 + 1);
  });
});

describe('redis limit backend: charges while two seeds of one counter are read', () => {
  it('a charge collected by both is added once, also when the first seed fails', async () => {
    const calls: { resolve: (n: number) => void; reject: (e: unknown) => void }[] = [];
    const b = new RedisLimitBackend({
      url: REDIS_URL,
      prefix: prefix(),
      seeder: () => new Promise<number>((resolve, reject) => calls.push({ resolve, reject })),
    });
    await b.waitReady(5000);
    try {
      const T = Date.UTC(2030, 5, 10, 12);
      const c = counter('tokens', 'day', 10_000);
      const p1 = b.reserve('a', [c], amt(0, 0), T, { failureMode: 'closed' });
      const p2 = b.reserve('b', [c], amt(0, 0), T, { failureMode: 'closed' });
      while (calls.length < 2) await new Promise((r) => setTimeout(r, 5));
      // Settled while both seeds read: in neither read.
      await b.charge([c], amt(30), T, T);
      calls[0]!.reject(new Error('transient store read error'));
      await expect(p1).rejects.toBeTruthy();
      calls[1]!.resolve(500);
      expect((await p2).ok).toBe(true);
      const [s] = await b.peek([c], T + 1);
      expect(s!.used).toBe(530);
    } finally {
      await b.close();
    }
  });
});
