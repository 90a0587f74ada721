// Counters in process memory, for a single proxy instance (and as the local fallback when Redis
// is unreachable). Check-and-add runs synchronously, with no await in between, so concurrent
// reserve() calls on one event loop are atomic: the admitted total never passes a limit.
import { GatewayError } from '../errors.js';
import { amountFor, bucketOf, calendarResetAt, counterState, denial, exceeds, minBucket, rollingEmptyAt } from './accounting.js';
import type { Admission, Amounts, CounterRef, CounterSeeder, CounterState, LimitBackend, Reservation, ReserveOptions } from './types.js';
import { BUCKET_MS, effectiveSince, isRolling, rollingFreeAt } from './windows.js';

interface Fixed {
  kind: 'fixed';
  ref: CounterRef;
  /** Start of the window these counts belong to (calendar start or reset). */
  since: number;
  used: number;
  /** What seeding put in `used` (counted elsewhere already); drain() hands over only the rest. */
  seed: number;
}

interface Rolling {
  kind: 'rolling';
  ref: CounterRef;
  /** bucket index → amount. */
  buckets: Map<number, number>;
  /** A reset made through reset(): buckets before it no longer count. */
  since: number;
  /** Σ buckets, kept as they change, so a request does not walk a minute of buckets. */
  sum: number;
  /** Lowest and highest bucket index held (null when empty). */
  oldest: number | null;
  newest: number | null;
}

const emptyRolling = (ref: CounterRef): Rolling => ({ kind: 'rolling', ref, buckets: new Map(), since: 0, sum: 0, oldest: null, newest: null });

type State = Fixed | Rolling;

/** What drain() hands over: calendar/total usage past each seed, and rolling buckets (index, amount). */
export interface Drained {
  fixed: { counter: CounterRef; since: number; used: number }[];
  rolling: { counter: CounterRef; buckets: [number, number][] }[];
}

/** Charges (see charge()) made while a counter's seed was being read: applied when that seed lands. */
type Collected = { at: number; amount: number }[];


export interface MemoryLimitOptions {
  /** Seeds a counter the first time this process sees it (restart safety); rolling windows start empty. */
  seeder?: CounterSeeder;
  /**
   * Open reservations older than this are forgotten (their amounts stay counted): a guard against
   * a reservation never settled, which in one process only a bug leaves. Default a day: a request
   * still running when its reservation is forgotten keeps its worst case on the counters instead
   * of its real usage (with 1 h, a stream over an hour was counted 100,014 micro-dollars for 19).
   */
  reservationTtlMs?: number;
}

export class MemoryLimitBackend implements LimitBackend {
  private readonly states = new Map<string, State>();
  /** Open reservations: per counter, the bucket (rolling) or window start (fixed) it was added to. */
  private readonly open = new Map<string, { at: number; slots: number[]; counters: readonly CounterRef[]; amounts: Amounts }>();
  private readonly ttl: number;
  private sweepAt = 0;
  /**
   * Per counter being seeded, one list per seed in flight: charges made since that seed started.
   * The seed read the store as of its start (the usage sink writes every earlier event first),
   * so a charge after it is in no seed and must be added when the seed becomes the state.
   */
  private readonly collecting = new Map<string, Set<Collected>>();

  constructor(private readonly opts: MemoryLimitOptions = {}) {
    this.ttl = opts.reservationTtlMs ?? 86_400_000;
  }

  reserve(requestId: string, counters: readonly CounterRef[], amounts: Amounts, now: number, opts?: ReserveOptions): Promise<Admission> {
    // Counters seen before need no seeding: no await at all on the usual path.
    for (const c of counters) {
      if (!this.states.has(c.id)) return this.seedAll(counters, now, opts?.failureMode ?? 'closed').then(() => this.reserveNow(requestId, counters, amounts, now));
    }
    try {
      return Promise.resolve(this.reserveNow(requestId, counters, amounts, now));
    } catch (err) {
      return Promise.reject(err); // a promise-returning API never throws synchronously
    }
  }

  reserveSync(requestId: string, counters: readonly CounterRef[], amounts: Amounts, now: number): Admission | null {
    for (const c of counters) if (!this.states.has(c.id)) return null;
    return this.reserveNow(requestId, counters, amounts, now);
  }

  /** The atomic section: nothing in here awaits. */
  private reserveNow(requestId: string, counters: readonly CounterRef[], amounts: Amounts, now: number): Admission {
    // One state() per counter (it rolls windows forward), read for the check, the addition and
    // the states answered: loops over the counters, no closure or entry object per counter.
    const n = counters.length;
    const states: State[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const c = counters[i]!;
      const s = this.state(c, now);
      states[i] = s;
      const used = s.kind === 'fixed' ? s.used : s.sum;
      if (exceeds(used, amountFor(c, amounts), c.max)) return denial(c, used, amountFor(c, amounts), this.freeAt(c, amounts, now), now);
    }
    const slots: number[] = new Array(n);
    for (let i = 0; i < n; i++) slots[i] = addTo(states[i]!, counters[i]!, amountFor(counters[i]!, amounts), now);
    const views: CounterState[] = new Array(n);
    for (let i = 0; i < n; i++) views[i] = viewOf(counters[i]!, states[i]!, now);
    let id = requestId;
    for (let k = 2; this.open.has(id); k++) id = `${requestId}#${k}`;
    this.open.set(id, { at: now, slots, counters, amounts });
    this.sweep(now);
    return {
      ok: true,
      id,
      counters,
      reserved: { requests: amounts.requests, tokens: amounts.tokens, cost: amounts.cost },
      reservedAt: now,
      states: views,
    };
  }

  async settle(reservation: Reservation, actual: Amounts, now: number): Promise<readonly CounterState[]> {
    return this.settleSync(reservation, actual, now);
  }

  settleSync(reservation: Reservation, actual: Amounts, now: number): readonly CounterState[] {
    const open = this.open.get(reservation.id);
    if (open) {
      this.open.delete(reservation.id);
      reservation.counters.forEach((c, i) => {
        const delta = amountFor(c, actual) - amountFor(c, reservation.reserved);
        this.adjust(c, open.slots[i]!, delta);
      });
    }
    // A counter dropped by retain() meanwhile (its limit is gone) is not brought back unseeded.
    return reservation.counters.map((c) => (this.states.has(c.id) ? this.stateOf(c, now) : counterState(c, 0, calendarResetAt(c, now))));
  }

  charge(counters: readonly CounterRef[], actual: Amounts, at: number, now: number): void {
    for (const c of counters) {
      const amount = amountFor(c, actual);
      if (amount === 0) continue;
      const s = this.states.get(c.id);
      if (s) chargeState(this.state(c, now), c, amount, at, now);
      const lists = this.collecting.get(c.id);
      if (lists) for (const list of lists) list.push({ at, amount });
    }
  }

  retain(ids: ReadonlySet<string>): void {
    // A request admitted before still settles fine: its adjustment finds no state and is dropped
    // (settleSync answers for such a counter without creating it again).
    for (const id of this.states.keys()) if (!ids.has(id)) this.states.delete(id);
  }

  async peek(counters: readonly CounterRef[], now: number): Promise<readonly CounterState[]> {
    // A failed seed is not remembered here: the next reserve() seeds again.
    await this.seed(counters, now, 'peek');
    return counters.map((c) => (this.states.has(c.id) ? this.stateOf(c, now) : counterState(c, 0, calendarResetAt(c, now))));
  }

  async reset(counterId: string, now: number): Promise<void> {
    const s = this.states.get(counterId);
    if (!s) return;
    if (s.kind === 'rolling') {
      s.buckets.clear();
      s.since = now;
      s.sum = 0;
      s.oldest = null;
      s.newest = null;
    } else {
      s.since = Math.max(s.since, now);
      s.used = 0;
      s.seed = 0;
    }
  }

  async close(): Promise<void> {
    this.states.clear();
    this.open.clear();
  }

  /**
   * Hands over and forgets what the counters hold, so a fallback period can be added to the
   * shared counters when Redis returns: calendar, total and credit counters past their seed, and
   * the buckets of rolling windows still in their window at `now` (they start empty, so all of
   * them is this instance's). Only settled usage: the worst case reserved by requests still
   * running is left out (handed over, it would stay on the shared counters for the rest of the
   * window; their real usage reaches them when they settle, see FailoverLimitBackend), and those
   * reservations are forgotten too.
   */
  drain(now: number = Date.now()): Drained {
    // What the requests still running hold, per counter and slot (window start or bucket).
    const held = new Map<string, Map<number, number>>();
    for (const r of this.open.values()) {
      r.counters.forEach((c, i) => {
        const amount = amountFor(c, r.amounts);
        if (amount === 0) return;
        let slots = held.get(c.id);
        if (!slots) {
          slots = new Map();
          held.set(c.id, slots);
        }
        slots.set(r.slots[i]!, (slots.get(r.slots[i]!) ?? 0) + amount);
      });
    }
    const fixed: Drained['fixed'] = [];
    const rolling: Drained['rolling'] = [];
    for (const s of this.states.values()) {
      const slots = held.get(s.ref.id);
      if (s.kind === 'fixed') {
        const used = s.used - s.seed - (slots?.get(s.since) ?? 0);
        if (used > 0) fixed.push({ counter: s.ref, since: s.since, used });
        continue;
      }
      const min = Math.max(minBucket(s.ref, now), Math.ceil(s.since / BUCKET_MS[s.ref.window]!));
      const buckets: [number, number][] = [];
      for (const [idx, amount] of s.buckets) {
        const settled = amount - (slots?.get(idx) ?? 0);
        if (idx >= min && settled > 0) buckets.push([idx, settled]);
      }
      if (buckets.length) rolling.push({ counter: s.ref, buckets });
    }
    this.states.clear();
    this.open.clear();
    return { fixed, rolling };
  }

  /**
   * Seeds until every counter is present: a drain() (Redis came back) while a seed was awaited
   * clears counters that were present before, and those must be seeded again, not start at 0.
   */
  private async seedAll(counters: readonly CounterRef[], now: number, failureMode: 'closed' | 'open'): Promise<void> {
    do await this.seed(counters, now, failureMode);
    while (counters.some((c) => !this.states.has(c.id)));
  }

  private async seed(counters: readonly CounterRef[], now: number, failureMode: 'closed' | 'open' | 'peek'): Promise<void> {
    const { seeder } = this.opts;
    const missing = counters.filter((c) => !this.states.has(c.id));
    if (!missing.length) return;
    // Collecting starts in the same turn as the seeder's read (no settlement in between).
    const lists = missing.map((c) => this.collect(c.id));
    let seeds: (number | null)[];
    try {
      seeds = await Promise.all(
        missing.map(async (c) => {
          if (!seeder || isRolling(c.window)) return 0;
          try {
            return await seeder(c, now);
          } catch (cause) {
            // Open orgs are served from zero rather than refused; closed ones get 503.
            if (failureMode === 'open') return 0;
            if (failureMode === 'peek') return null;
            throw new GatewayError('store_unavailable', 'usage counters cannot be loaded: the store is unreachable', { cause });
          }
        }),
      );
    } finally {
      missing.forEach((c, i) => {
        this.uncollect(c.id, lists[i]!);
      });
    }
    // Another reserve() may have created the state while we awaited: first one wins (SET NX).
    missing.forEach((c, i) => {
      if (this.states.has(c.id) || seeds[i] === null) return;
      const s: State = isRolling(c.window) ? emptyRolling(c) : { kind: 'fixed', ref: c, since: effectiveSince(c.window, c.since, now), used: seeds[i]!, seed: seeds[i]! };
      this.states.set(c.id, s);
      const late = lists[i]!;
      if (late.length) {
        const rolled = this.state(c, now);
        for (const x of late) chargeState(rolled, c, x.amount, x.at, now);
      }
    });
  }

  private collect(id: string): Collected {
    const list: Collected = [];
    let lists = this.collecting.get(id);
    if (!lists) {
      lists = new Set();
      this.collecting.set(id, lists);
    }
    lists.add(list);
    return list;
  }

  private uncollect(id: string, list: Collected): void {
    const lists = this.collecting.get(id);
    if (!lists) return;
    lists.delete(list);
    if (lists.size === 0) this.collecting.delete(id);
  }

  private state(c: CounterRef, now: number): State {
    let s = this.states.get(c.id);
    if (!s) {
      s = isRolling(c.window) ? emptyRolling(c) : { kind: 'fixed', ref: c, since: effectiveSince(c.window, c.since, now), used: 0, seed: 0 };
      this.states.set(c.id, s);
    }
    if (s.kind === 'fixed') {
      const since = effectiveSince(c.window, c.since, now);
      // A new day or month, or a quota reset: the window starts afresh.
      if (since > s.since) {
        s.since = since;
        s.used = 0;
        s.seed = 0;
      }
      s.ref = c;
    } else {
      const min = Math.max(minBucket(c, now), Math.ceil(s.since / BUCKET_MS[c.window]!));
      if (s.oldest !== null && s.oldest < min) prune(s, min);
      s.ref = c;
    }
    return s;
  }

  /** Applies a settlement delta to the window the reservation went into, if that window still exists. */
  private adjust(c: CounterRef, slot: number, delta: number): void {
    const s = this.states.get(c.id);
    if (!s || delta === 0) return;
    if (s.kind === 'fixed') {
      if (s.since === slot) s.used = Math.max(0, s.used + delta);
      return;
    }
    const cur = s.buckets.get(slot);
    if (cur === undefined) return;
    const next = Math.max(0, cur + delta);
    s.buckets.set(slot, next);
    s.sum += next - cur;
  }

  private stateOf(c: CounterRef, now: number): CounterState {
    return viewOf(c, this.state(c, now), now);
  }

  private freeAt(c: CounterRef, amounts: Amounts, now: number): number | null {
    const s = this.states.get(c.id)!;
    if (s.kind === 'fixed') return calendarResetAt(c, now);
    const min = minBucket(c, now);
    const buckets = [...s.buckets].filter(([idx]) => idx >= min).sort((a, b) => a[0] - b[0]);
    return rollingFreeAt(buckets, 0, amountFor(c, amounts), c.max, c.window);
  }

  private sweep(now: number): void {
    if (now < this.sweepAt) return;
    this.sweepAt = now + 60_000;
    for (const [id, r] of this.open) if (now - r.at > this.ttl) this.open.delete(id);
  }
}

/** Adds `amount` to a counter's state (already rolled to `now`); returns the slot it went into. */
function addTo(s: State, c: CounterRef, amount: number, now: number): number {
  if (s.kind === 'fixed') {
    s.used += amount;
    return s.since;
  }
  const idx = bucketOf(c, now);
  s.buckets.set(idx, (s.buckets.get(idx) ?? 0) + amount);
  s.sum += amount;
  if (s.oldest === null || idx < s.oldest) s.oldest = idx;
  if (s.newest === null || idx > s.newest) s.newest = idx;
  return idx;
}

/**
 * Adds a charge made at `at` (admission) to a counter's state (already rolled to `now`): into the
 * calendar window if `at` is in it, into at's bucket if that bucket still counts.
 */
function chargeState(s: State, c: CounterRef, amount: number, at: number, now: number): void {
  if (s.kind === 'fixed') {
    if (at >= s.since) s.used += amount;
    return;
  }
  const idx = bucketOf(c, at);
  if (idx < Math.max(minBucket(c, now), Math.ceil(s.since / BUCKET_MS[c.window]!))) return;
  s.buckets.set(idx, (s.buckets.get(idx) ?? 0) + amount);
  s.sum += amount;
  if (s.oldest === null || idx < s.oldest) s.oldest = idx;
  if (s.newest === null || idx > s.newest) s.newest = idx;
}

/** What a counter holds and when it resets, from its state (already rolled to `now`). */
function viewOf(c: CounterRef, s: State, now: number): CounterState {
  if (s.kind === 'fixed') return counterState(c, s.used, calendarResetAt(c, now));
  return counterState(c, s.sum, rollingEmptyAt(c, s.newest));
}

/** Drops the buckets of a rolling window below `min`, keeping its sum and bounds exact. */
function prune(s: Rolling, min: number): void {
  let oldest: number | null = null;
  let newest: number | null = null;
  for (const [idx, a] of s.buckets) {
    if (idx < min) {
      s.buckets.delete(idx);
      s.sum -= a;
    } else {
      if (oldest === null || idx < oldest) oldest = idx;
      if (newest === null || idx > newest) newest = idx;
    }
  }
  s.oldest = oldest;
  s.newest = newest;
  if (s.buckets.size === 0) s.sum = 0; // no floating drift: amounts are integers, but be exact anyway
}
