import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/shared/db/store.js';
import { MemoryLimitBackend } from '../../src/shared/limits/memory-backend.js';
import { storeSeeder } from '../../src/shared/limits/store-seeder.js';
import { addCredits } from '../../src/shared/services/credits.js';
import { applyLimits } from '../../src/shared/services/limits.js';
import { authenticate, countersFor, loadSnapshot } from '../../src/shared/snapshot/index.js';
import { DIALECTS } from '../helpers/stores.js';
import { amt, limitBackendContract, reserved } from './limits-contract.js';
import { MASTER_KEY, world } from './snapshot-fixtures.js';

limitBackendContract('memory', async (opts) => {
  const b = new MemoryLimitBackend({ seeder: opts?.seeder });
  return { backends: [b], close: () => b.close() };
});

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe.each(DIALECTS)('memory limit backend seeded from a %s store', (dialect) => {
  it('remembers after a restart what the store says was spent today, this month, ever, and in credits', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const now = Date.now();
    const today = new Date(now).toISOString().slice(0, 10);
    const earlier = new Date(Date.UTC(2020, 0, 1)).toISOString().slice(0, 10);
    await w.store.transaction(async (tx) => {
      await applyLimits(tx, w.ctx, { type: 'key', id: w.parent.key.id }, [
        { metric: 'tokens', window: 'day', max: 10_000 },
        { metric: 'tokens', window: 'total', max: 100_000 },
        { metric: 'requests', window: 'minute', max: 5 },
      ]);
      await applyLimits(tx, w.ctx, { type: 'org', id: w.orgId }, [{ metric: 'cost', window: 'month', max: 1_000_000, model: 'openai/*' }]);
      await addCredits(tx, w.ctx, { type: 'user', id: w.userId }, 500_000, null);
      await addCredits(tx, w.ctx, { type: 'user', id: w.userId }, -120_000, 'usage', 'charge');
      const row = { orgId: w.orgId, userId: w.userId, errors: 0, promptTokens: 0, completionTokens: 0 };
      await tx.insert(w.store.t.usageDaily).values([
        // The child's usage counts against its parent's limits.
        { ...row, day: today, keyId: w.child.key.id, model: 'openai/gpt-4o', requests: 3, totalTokens: 2_500, costMicros: 40_000 },
        { ...row, day: today, keyId: w.parent.key.id, model: 'meta/llama', requests: 1, totalTokens: 500, costMicros: 1_000 },
        { ...row, day: earlier, keyId: w.child.key.id, model: 'openai/gpt-4o', requests: 9, totalTokens: 7_000, costMicros: 90_000 },
      ]);
    });
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    const auth = authenticate(snap, w.child.plaintext, now);
    if (!auth.ok) throw new Error(auth.code);
    const backend = new MemoryLimitBackend({ seeder: storeSeeder(w.store, () => snap) });
    const counters = countersFor(snap, auth, 'openai/gpt-4o', now);
    const states = await backend.peek(counters, now);
    const used = Object.fromEntries(states.map((s) => [s.counter.metric === 'credits' ? s.counter.id : s.counter.id.slice(0, s.counter.id.lastIndexOf(':')), s.used]));
    expect(used).toEqual({
      [`key:${w.parent.key.id}::tokens:day`]: 3_000,
      [`key:${w.parent.key.id}::tokens:total`]: 10_000,
      [`key:${w.parent.key.id}::requests:minute`]: 0,
      [`org:${w.orgId}:openai/*:cost:month`]: 40_000,
      [`credits:user:${w.userId}`]: 120_000,
    });
    expect(await backend.reserve('over', counters, amt(7_001), now)).toMatchObject({ ok: false, code: 'quota_exceeded' });
    reserved(await backend.reserve('fits', counters, amt(7_000), now));
  });

  it('counts only raw events after a quota reset that split the day', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const now = Date.now();
    const resetAt = now - 1_000;
    const event = (id: string, ts: number, tokens: number) => ({
      requestId: id,
      ts: new Date(ts),
      orgId: w.orgId,
      userId: null,
      keyId: w.child.key.id,
      model: 'm',
      provider: 'mock',
      promptTokens: 0,
      completionTokens: tokens,
      totalTokens: tokens,
      costMicros: 0,
      status: 200,
      errorCode: null,
      latencyMs: 1,
      ttfbMs: null,
      stream: false,
      usageSource: 'upstream',
      instance: 't',
    });
    await w.store.db.insert(w.store.t.usageEvents).values([event('before', resetAt - 1, 400), event('after', resetAt + 1, 25)]);
    const seeder = storeSeeder(w.store);
    const c = { id: 'x', scopeType: 'key' as const, scopeId: w.child.key.id, model: '', metric: 'tokens' as const, window: 'day' as const, max: 1000, since: resetAt };
    expect(await seeder(c, now)).toBe(25);
  });
});

describe('memory limit backend', () => {
  it('keeps the reservation id unique when a request id is reused', async () => {
    const b = new MemoryLimitBackend();
    const c = { id: 'c', scopeType: 'key' as const, scopeId: 'k', model: '', metric: 'tokens' as const, window: 'total' as const, max: 100 };
    const r1 = reserved(await b.reserve('same', [c], amt(10), 0));
    const r2 = reserved(await b.reserve('same', [c], amt(10), 0));
    expect(r1.id).not.toBe(r2.id);
    await b.settle(r1, amt(0), 1);
    await b.settle(r2, amt(5), 1);
    expect((await b.peek([c], 2))[0]!.used).toBe(5);
  });

  it('seeds again what a drain() cleared while a reservation was waiting for its seed', async () => {
    const counter = (id: string) => ({ id, scopeType: 'key' as const, scopeId: id, model: '', metric: 'tokens' as const, window: 'total' as const, max: 1_000 });
    const [known, fresh] = [counter('known'), counter('fresh')];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seeded: string[] = [];
    const b = new MemoryLimitBackend({
      seeder: async (c) => {
        seeded.push(c.id);
        if (c.id === 'fresh' && seeded.length === 2) await gate; // the first seed of 'fresh' is slow
        return 100;
      },
    });
    await b.peek([known], 0);
    const pending = b.reserve('r', [known, fresh], amt(1), 0, { failureMode: 'closed' });
    await new Promise((r) => setImmediate(r));
    expect(b.drain()).toEqual({ fixed: [], rolling: [] }); // Redis came back: local state is handed over and forgotten
    release();
    const r = reserved(await pending);
    // 'known' was seeded again (100 used before), not started from zero.
    expect(r.states.map((s) => [s.counter.id, s.used])).toEqual([['known', 101], ['fresh', 101]]);
    expect(seeded.filter((id) => id === 'known')).toHaveLength(2);
  });
});

describe('memory limit backend: charges while two seeds of one counter are read', () => {
  it.each(['first', 'second'])('counts each charge once when the %s seed lands first', async (winner) => {
    const opens: ((n: number) => void)[] = [];
    const b = new MemoryLimitBackend({ seeder: () => new Promise<number>((r) => opens.push(r)) });
    const c = { id: 'key:k::tokens:day', scopeType: 'key' as const, scopeId: 'k', model: '', metric: 'tokens' as const, window: 'day' as const, max: 10_000, since: 0 };
    const now = Date.UTC(2030, 0, 2, 12);
    const a = b.reserve('a', [c], amt(0, 0), now);
    await new Promise((r) => setTimeout(r, 5));
    b.charge([c], amt(30), now, now); // after seed A started: in no store read of A
    const second = b.reserve('b', [c], amt(0, 0), now);
    await new Promise((r) => setTimeout(r, 5));
    b.charge([c], amt(7), now, now); // after both started
    expect(opens).toHaveLength(2);
    // Seed A read 500; seed B started later and read the 30 in the store too.
    if (winner === 'first') {
      opens[0]!(500);
      await a;
      opens[1]!(530);
    } else {
      opens[1]!(530);
      await second;
      opens[0]!(500);
    }
    await Promise.all([a, second]);
    const [s] = await b.peek([c], now);
    expect(s!.used).toBe(537);
  });
});

describe('memory limit backend: retain()', () => {
  it('forgets counters the configuration no longer has; a request admitted on one still settles, and a counter seen again is seeded again', async () => {
    let seeds = 0;
    const b = new MemoryLimitBackend({
      seeder: async () => {
        seeds++;
        return 10;
      },
    });
    const now = Date.UTC(2030, 0, 2, 12);
    const mk = (id: string) => ({ id, scopeType: 'key' as const, scopeId: 'k', model: '', metric: 'tokens' as const, window: 'day' as const, max: 1_000, since: 0 });
    const kept = mk('key:k::tokens:day:lim_a');
    const gone = mk('key:k::tokens:day:lim_b');
    const r = reserved(await b.reserve('r', [kept, gone], amt(100), now));
    b.retain(new Set([kept.id]));
    const states = b.settleSync(r, amt(40), now);
    expect(states.map((s) => s.used)).toEqual([10 + 40, 0]);
    // The settle does not bring the dropped counter back unseeded (no second retain() in between).
    expect(seeds).toBe(2);
    const [again] = await b.peek([gone], now);
    expect(again!.used).toBe(10);
    expect(seeds).toBe(3);
  });
});

describe('memory limit backend with an unreachable store', () => {
  it('refuses closed orgs with store_unavailable, serves open orgs from zero, and seeds once the store is back', async () => {
    let down = true;
    const b = new MemoryLimitBackend({
      seeder: async () => {
        if (down) throw new Error('connection refused');
        return 90;
      },
    });
    const c = { id: 'c', scopeType: 'key' as const, scopeId: 'k', model: '', metric: 'tokens' as const, window: 'total' as const, max: 100 };
    await expect(b.reserve('a', [c], amt(10), 0)).rejects.toMatchObject({ code: 'store_unavailable' });
    expect((await b.peek([c], 0))[0]!.used).toBe(0);
    down = false;
    expect((await b.peek([c], 0))[0]!.used).toBe(90);
    expect((await b.reserve('b', [c], amt(11), 0)).ok).toBe(false);
    const other = { ...c, id: 'd' };
    down = true;
    reserved(await b.reserve('c', [other], amt(10), 0, { failureMode: 'open' }));
  });
});
