// One suite every LimitBackend must pass (memory, Redis). A factory returns one or more
// backends that share their counters (two Redis connections = two proxy instances).
import { describe, expect, it } from 'vitest';
import type { Admission, Amounts, CounterRef, LimitBackend, Reservation } from '../../src/shared/limits/types.js';
import type { Metric, Window } from '../../src/shared/services/limits.js';

export interface BackendSet {
  backends: LimitBackend[];
  close(): Promise<void>;
}

export type BackendFactory = (opts?: { seeder?: (c: CounterRef, now: number) => Promise<number> }) => Promise<BackendSet>;

let seq = 0;
export function counter(metric: Metric | 'credits', window: Window, max: number, extra: Partial<CounterRef> = {}): CounterRef {
  const scopeId = `k${++seq}_${Math.random().toString(36).slice(2, 8)}`;
  return {
    id: metric === 'credits' ? `credits:key:${scopeId}` : `key:${scopeId}::${metric}:${window}`,
    scopeType: 'key',
    scopeId,
    model: '',
    metric,
    window,
    max,
    since: 0,
    ...extra,
  };
}

export const amt = (tokens: number, requests = 1, cost = 0): Amounts => ({ requests, tokens, cost });

export function reserved(a: Admission): Reservation {
  if (!a.ok) throw new Error(`expected admission, got ${a.code} on ${a.counter.id}`);
  return a;
}

const T0 = Date.UTC(2030, 5, 10, 12, 0, 0);

export function limitBackendContract(name: string, factory: BackendFactory): void {
  describe(`${name} limit backend contract`, () => {
    it('never admits more than the limit when 200 concurrent reservations race for the last 1,000 tokens', async () => {
      const set = await factory();
      try {
        const c = counter('tokens', 'day', 10_000);
        const first = reserved(await set.backends[0]!.reserve('warm', [c], amt(9_000), T0));
        await set.backends[0]!.settle(first, amt(9_000), T0);
        const sizes = Array.from({ length: 200 }, (_, i) => 1 + ((i * 37) % 50));
        const started = performance.now();
        const results = await Promise.all(
          sizes.map((n, i) => set.backends[i % set.backends.length]!.reserve(`r${i}`, [c], amt(n), T0 + 1)),
        );
        const ms = performance.now() - started;
        const admitted = results.reduce((s, r, i) => s + (r.ok ? sizes[i]! : 0), 0);
        const denied = results.filter((r) => !r.ok).length;
        console.log(`[limits] ${name}: admitted ${admitted} of the last 1000 tokens, ${denied} of 200 refused, 200 reserves in ${ms.toFixed(1)} ms`);
        expect(admitted).toBeLessThanOrEqual(1_000);
        expect(admitted).toBeGreaterThan(950);
        const [state] = await set.backends[0]!.peek([c], T0 + 2);
        expect(state!.used).toBe(9_000 + admitted);
      } finally {
        await set.close();
      }
    });

    it('refuses with nothing reserved when any counter would pass its limit', async () => {
      const set = await factory();
      try {
        const [b] = set.backends;
        const roomy = counter('tokens', 'day', 1_000_000);
        const tight = counter('requests', 'minute', 1);
        reserved(await b!.reserve('a', [roomy, tight], amt(100), T0));
        const d = await b!.reserve('b', [roomy, tight], amt(100), T0 + 1000);
        expect(d).toMatchObject({ ok: false, code: 'rate_limit_exceeded', used: 1 });
        expect(d.ok === false && d.counter.id).toBe(tight.id);
        const [r] = await b!.peek([roomy], T0 + 1000);
        expect(r!.used).toBe(100);
      } finally {
        await set.close();
      }
    });

    it('names the code, counter, usage, reset time and Retry-After of a refusal', async () => {
      const set = await factory();
      try {
        const [b] = set.backends;
        const cases: [CounterRef, Amounts, string, number | null][] = [
          [counter('requests', 'minute', 0), amt(1), 'rate_limit_exceeded', null],
          [counter('tokens', 'minute', 10), amt(11), 'rate_limit_exceeded', null],
          [counter('tokens', 'day', 10), amt(11), 'quota_exceeded', Date.UTC(2030, 5, 11)],
          [counter('tokens', 'month', 10), amt(11), 'quota_exceeded', Date.UTC(2030, 6, 1)],
          [counter('tokens', 'total', 10), amt(11), 'quota_exceeded', null],
          [counter('requests', 'total', 0), amt(1), 'request_cap_exceeded', null],
          [counter('cost', 'month', 100), amt(1, 1, 101), 'budget_exceeded', Date.UTC(2030, 6, 1)],
          [counter('credits', 'total', 100), amt(1, 1, 101), 'insufficient_credits', null],
        ];
        for (const [c, a, code, resetsAt] of cases) {
          const d = await b!.reserve(`d-${c.id}`, [c], a, T0);
          expect(d, c.id).toMatchObject({ ok: false, code, resetsAt });
          if (!d.ok && resetsAt !== null) expect(d.retryAfterSec).toBe(Math.ceil((resetsAt - T0) / 1000));
        }
        const rpm = counter('requests', 'minute', 2);
        reserved(await b!.reserve('m1', [rpm], amt(1), T0));
        reserved(await b!.reserve('m2', [rpm], amt(1), T0 + 20_000));
        const d = await b!.reserve('m3', [rpm], amt(1), T0 + 30_000);
        // The oldest request leaves the window 60 s (plus one 1 s bucket) after it came.
        expect(d).toMatchObject({ ok: false, code: 'rate_limit_exceeded', used: 2, resetsAt: T0 + 61_000, retryAfterSec: 31 });
      } finally {
        await set.close();
      }
    });

    it('rolls minute, hour, day and month windows over by the clock', async () => {
      const set = await factory();
      try {
        const [b] = set.backends;
        const rpm = counter('requests', 'minute', 1);
        const tph = counter('tokens', 'hour', 100);
        const day = counter('tokens', 'day', 100);
        const month = counter('tokens', 'month', 100);
        const late = Date.UTC(2030, 5, 30, 23, 59, 30);
        reserved(await b!.reserve('w1', [rpm, tph, day, month], amt(100), late));
        expect((await b!.reserve('w2', [rpm], amt(1), late + 59_000)).ok).toBe(false);
        expect((await b!.reserve('w3', [rpm], amt(1), late + 61_000)).ok).toBe(true);
        // Midnight (and a new month) passed: calendar windows are fresh, the rolling hour is not.
        expect((await b!.reserve('w4', [day, month], amt(100), late + 61_000)).ok).toBe(true);
        expect((await b!.reserve('w5', [tph], amt(1), late + 61_000)).ok).toBe(false);
        expect((await b!.reserve('w6', [tph], amt(100), late + 3_611_000)).ok).toBe(true);
      } finally {
        await set.close();
      }
    });

    it('replaces a reservation with the actual usage on settle, once', async () => {
      const set = await factory();
      try {
        const [b] = set.backends;
        const c = counter('tokens', 'day', 10_000);
        const cost = counter('cost', 'total', 1_000_000);
        const tpm = counter('tokens', 'minute', 10_000);
        const r = reserved(await b!.reserve('s1', [c, cost, tpm], amt(4_000, 1, 900), T0));
        expect(r.states.map((s) => s.used)).toEqual([4_000, 900, 4_000]);
        const after = await b!.settle(r, amt(1_234, 1, 321), T0 + 5_000);
        expect(after.map((s) => s.used)).toEqual([1_234, 321, 1_234]);
        expect(after[0]!.remaining).toBe(10_000 - 1_234);
        await b!.settle(r, amt(1_234, 1, 321), T0 + 6_000);
        const again = await b!.peek([c, cost, tpm], T0 + 7_000);
        expect(again.map((s) => s.used)).toEqual([1_234, 321, 1_234]);
      } finally {
        await set.close();
      }
    });

    it('settle answers the counters as a peek right after it would: other requests in flight, rolling buckets aged out, a window passed since admission', async () => {
      const set = await factory({ seeder: async () => 0 });
      try {
        const [a, b] = [set.backends[0]!, set.backends[set.backends.length - 1]!];
        const day = counter('tokens', 'day', 100_000);
        const tpm = counter('tokens', 'minute', 100_000);
        const rpd = counter('requests', 'day', 1_000);
        const cost = counter('cost', 'total', 1_000_000);
        const all = [day, tpm, rpd, cost];
        const late = Date.UTC(2030, 5, 30, 23, 59, 40);
        const old = reserved(await b.reserve('p0', all, amt(300, 1, 30), late - 50_000));
        await b.settle(old, amt(250, 1, 25), late - 49_000);
        const mine = reserved(await a.reserve('p1', all, amt(1_000, 1, 90), late));
        // Another instance's request in flight, before and after midnight.
        reserved(await b.reserve('p2', all, amt(2_000, 1, 70), late + 1_000));
        const midnight = late + 20_000;
        reserved(await b.reserve('p3', all, amt(3_000, 1, 50), midnight + 5_000));
        // Settled 50 s later: past midnight, and the minute window has left p0's bucket behind.
        const after = await a.settle(mine, amt(600, 1, 60), late + 50_000);
        const peek = await a.peek(all, late + 50_000);
        expect(after.map((s) => [s.counter.id, s.used, s.remaining, s.resetsAt])).toEqual(peek.map((s) => [s.counter.id, s.used, s.remaining, s.resetsAt]));
        // The new day holds only p3; the total holds everything settled or in flight.
        expect(after.map((s) => s.used)).toEqual([3_000, 600 + 2_000 + 3_000, 1, 25 + 60 + 70 + 50]);
        // Settling again changes nothing and answers the same.
        const twice = await a.settle(mine, amt(600, 1, 60), late + 50_000);
        expect(twice.map((s) => s.used)).toEqual(after.map((s) => s.used));
      } finally {
        await set.close();
      }
    });

    it('starts a window afresh after reset() and after a quota reset moves since', async () => {
      const set = await factory();
      try {
        const [b] = set.backends;
        const c = counter('tokens', 'day', 100);
        reserved(await b!.reserve('x1', [c], amt(100), T0));
        expect((await b!.reserve('x2', [c], amt(1), T0 + 1)).ok).toBe(false);
        expect((await b!.reserve('x3', [{ ...c, since: T0 + 2 }], amt(60), T0 + 3)).ok).toBe(true);
        await b!.reset(c.id, T0 + 4);
        expect((await b!.reserve('x4', [{ ...c, since: T0 + 2 }], amt(100), T0 + 5)).ok).toBe(true);
      } finally {
        await set.close();
      }
    });

    it('seeds a counter it has never seen from the seeder, once', async () => {
      let calls = 0;
      const set = await factory({
        seeder: async (c) => {
          calls++;
          return c.metric === 'credits' ? 900 : 70;
        },
      });
      try {
        const [b] = set.backends;
        const c = counter('tokens', 'month', 100);
        const credits = counter('credits', 'total', 1_000);
        const [s] = await b!.peek([c], T0);
        expect(s!.used).toBe(70);
        expect((await b!.reserve('z1', [c], amt(31), T0)).ok).toBe(false);
        reserved(await b!.reserve('z2', [c], amt(30), T0));
        expect(await b!.reserve('z3', [credits], amt(1, 1, 101), T0)).toMatchObject({ ok: false, code: 'insufficient_credits', used: 900 });
        expect(calls).toBe(2);
      } finally {
        await set.close();
      }
    });

    it('charge(): adds a request to a limit it did not reserve on, in the window it was admitted in', async () => {
      const set = await factory({ seeder: async () => 40 });
      try {
        const [b, other] = [set.backends[0]!, set.backends[set.backends.length - 1]!];
        const day = counter('tokens', 'day', 1_000);
        const total = counter('requests', 'total', 100);
        const unseen = counter('tokens', 'month', 1_000);
        // Seeded (40 each), then charged: a request admitted today, and one admitted yesterday
        // (the store dates its event yesterday, so today's window does not count it).
        await b.peek([day, total], T0);
        await b.charge!([day, total, unseen], amt(25), T0 - 1_000, T0);
        await b.charge!([day, total], amt(7), T0 - 86_400_000, T0);
        const [d, t] = await other.peek([day, total], T0 + 1);
        expect(d!.used).toBe(40 + 25);
        expect(t!.used).toBe(40 + 1 + 1);
        // Not seen before: left to its seed (which reads the store, where the event is).
        const [u] = await b.peek([unseen], T0 + 2);
        expect(u!.used).toBe(40);
        expect((await other.reserve('c1', [day], amt(1_000 - 65), T0 + 3)).ok).toBe(true);
        expect((await other.reserve('c2', [day], amt(1), T0 + 3)).ok).toBe(false);
      } finally {
        await set.close();
      }
    });

    it('charge(): a rolling window takes a late request in the bucket it was admitted in, while that bucket is in the window', async () => {
      const set = await factory();
      try {
        const [b, other] = [set.backends[0]!, set.backends[set.backends.length - 1]!];
        const minute = counter('tokens', 'minute', 1_000);
        const unseen = counter('tokens', 'hour', 1_000);
        reserved(await b.reserve('m1', [minute], amt(100), T0));
        // A request admitted 20 s ago (still in the minute), and one admitted 2 min ago (gone).
        await b.charge!([minute, unseen], amt(30), T0 - 20_000, T0);
        await b.charge!([minute], amt(500), T0 - 120_000, T0);
        const [m, u] = await other.peek([minute, unseen], T0 + 1);
        expect(m!.used).toBe(100 + 30);
        // Nobody reserved on it: left alone (a rolling window starts empty).
        expect(u!.used).toBe(0);
        expect((await other.reserve('m2', [minute], amt(1_000 - 130), T0 + 2)).ok).toBe(true);
        expect((await other.reserve('m3', [minute], amt(1), T0 + 2)).ok).toBe(false);
      } finally {
        await set.close();
      }
    });

    it('charge(): a charge made while the counter is being seeded is added once its seed lands, once', async () => {
      let open: (n: number) => void = () => {};
      let seeds = 0;
      const set = await factory({
        seeder: () => {
          seeds++;
          return new Promise<number>((r) => {
            open = r;
          });
        },
      });
      try {
        const b = set.backends[0]!;
        const c = counter('tokens', 'day', 1_000);
        const first = b.reserve('s1', [c], amt(100), T0);
        await new Promise((r) => setTimeout(r, 20));
        expect(seeds).toBe(1);
        // Settled after the seed started reading: the seed cannot hold it.
        await b.charge!([c], amt(30), T0, T0);
        open(500);
        reserved(await first);
        const [s] = await b.peek([c], T0 + 1);
        expect(s!.used).toBe(500 + 30 + 100);
      } finally {
        await set.close();
      }
    });
  });
}
