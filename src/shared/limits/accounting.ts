// The rules both backends share: which amount a counter takes, when it refuses, what code and
// reset time a refusal carries.
import type { Amounts, CounterRef, CounterState, Denial } from './types.js';
import { BUCKET_MS, calendarEnd, isRolling, ROLLING_MS } from './windows.js';

export function amountFor(counter: CounterRef, amounts: Amounts): number {
  if (counter.metric === 'requests') return amounts.requests;
  if (counter.metric === 'tokens') return amounts.tokens;
  return amounts.cost;
}

/** A counter refuses when the request would pass its max, or when it is already spent. */
export function exceeds(used: number, amount: number, max: number): boolean {
  return used + amount > max || used >= max;
}

export function denialCode(c: CounterRef): Denial['code'] {
  if (c.metric === 'credits') return 'insufficient_credits';
  if (c.metric === 'cost') return 'budget_exceeded';
  if (c.metric === 'requests') return c.window === 'total' ? 'request_cap_exceeded' : 'rate_limit_exceeded';
  return isRolling(c.window) ? 'rate_limit_exceeded' : 'quota_exceeded';
}

export function denial(counter: CounterRef, used: number, requested: number, resetsAt: number | null, now: number): Denial {
  return {
    ok: false,
    code: denialCode(counter),
    counter,
    used,
    requested,
    resetsAt,
    retryAfterSec: resetsAt === null ? null : Math.max(1, Math.ceil((resetsAt - now) / 1000)),
  };
}

/** When a non-rolling counter starts afresh: the end of its calendar window; never for total and credits. */
export function calendarResetAt(counter: CounterRef, now: number): number | null {
  return counter.metric === 'credits' ? null : calendarEnd(counter.window, now);
}

/** A rolling counter is back to empty one window after its newest bucket. */
export function rollingEmptyAt(counter: CounterRef, newestBucket: number | null): number | null {
  if (newestBucket === null) return null;
  return (newestBucket + 1) * BUCKET_MS[counter.window]! + ROLLING_MS[counter.window]!;
}

export function counterState(counter: CounterRef, used: number, resetsAt: number | null): CounterState {
  return { counter, used, remaining: Math.max(0, counter.max - used), resetsAt };
}

/** Lowest bucket index still inside a rolling window at `now`, also excluding buckets before `since`. */
export function minBucket(counter: CounterRef, now: number): number {
  const width = BUCKET_MS[counter.window]!;
  const byWindow = Math.floor((now - ROLLING_MS[counter.window]!) / width);
  return Math.max(byWindow, Math.ceil((counter.since ?? 0) / width));
}

export const bucketOf = (counter: CounterRef, at: number): number => Math.floor(at / BUCKET_MS[counter.window]!);
