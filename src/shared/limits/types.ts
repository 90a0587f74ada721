// The one limit engine (DESIGN.md §4): admission reserves the worst case on every applicable
// counter atomically; settlement replaces the reservation with the real usage.
import type { Metric, ScopeType, Window } from '../services/limits.js';

/** One counter that a request touches: a limit row, or a credit balance (metric 'credits'). */
export interface CounterRef {
  /** Stable id: `${scopeType}:${scopeId}:${model}:${metric}:${window}:${limit row id}` or `credits:${scopeType}:${scopeId}`. */
  id: string;
  scopeType: ScopeType;
  scopeId: string;
  model: string;
  metric: Metric | 'credits';
  window: Window;
  /**
   * For limits, the max; for credits, everything granted to the scope (micro-dollars), with
   * `used` = everything charged, so remaining = the balance.
   */
  max: number;
  /** Start of the current calendar window or of the reset, ms; 0 for total/rolling. */
  since?: number;
}

/** What a request asks to reserve, per metric. */
export interface Amounts {
  requests: number;
  tokens: number;
  /** micro-dollars */
  cost: number;
}

export interface Denial {
  ok: false;
  code: 'rate_limit_exceeded' | 'quota_exceeded' | 'budget_exceeded' | 'insufficient_credits' | 'request_cap_exceeded';
  counter: CounterRef;
  /** What the counter holds, reservations of requests in flight included. */
  used: number;
  /** What this request needed on the counter (its worst case). */
  requested: number;
  /** When the window frees enough room, ms epoch (null for total windows and credits). */
  resetsAt: number | null;
  retryAfterSec: number | null;
}

export interface CounterState {
  counter: CounterRef;
  used: number;
  remaining: number;
  resetsAt: number | null;
}

export interface Reservation {
  ok: true;
  id: string;
  counters: readonly CounterRef[];
  reserved: Amounts;
  /** The `now` reserve() was called with: settlement charges the windows the reservation was made in. */
  reservedAt: number;
  /** The state of each counter right after reserving: feeds x-ratelimit-* headers and gateway_usage. */
  states: readonly CounterState[];
}

export type Admission = Reservation | Denial;

export interface ReserveOptions {
  /**
   * The org's failure mode, for backends that can fail (Redis): 'closed' (default) throws
   * GatewayError('unavailable') → 503; 'open' serves under the local fallback backend.
   */
  failureMode?: 'closed' | 'open';
  /** The reservation's id in shared counters (Redis); default: the request id with a random suffix. */
  reservationId?: string;
}

/** Usage already recorded in the store for a counter's current window (seeding after a restart). */
export type CounterSeeder = (counter: CounterRef, now: number) => Promise<number>;

export interface LimitBackend {
  /** Reserve `amounts` on every counter, or nothing at all. */
  reserve(
    requestId: string,
    counters: readonly CounterRef[],
    amounts: Amounts,
    now: number,
    opts?: ReserveOptions,
  ): Promise<Admission>;
  /** Replace the reservation with the actual amounts. Idempotent per reservation id. */
  settle(reservation: Reservation, actual: Amounts, now: number): Promise<readonly CounterState[]>;
  /**
   * Backends whose counters live in this process may also answer without a promise (each
   * await of an already settled promise is a turn of the microtask queue on the hot path):
   * reserve() when no counter has to be seeded first (null otherwise: take reserve()), and settle().
   */
  reserveSync?(requestId: string, counters: readonly CounterRef[], amounts: Amounts, now: number): Admission | null;
  settleSync?(reservation: Reservation, actual: Amounts, now: number): readonly CounterState[];
  /**
   * Adds usage without a check to counters a request did not reserve on: limits added while it
   * was in flight (the store counts its event against them, so the live counters must too).
   * Counters this process holds no state for are left alone (they are seeded from the store,
   * which will hold the event); counters being seeded at that moment get it once their seed
   * lands. `at` is when the request was admitted: a window that began after it is not charged.
   */
  charge?(counters: readonly CounterRef[], actual: Amounts, at: number, now: number): void | Promise<void>;
  /**
   * Forgets what is held for counters not in `ids` (the configuration's counters after a
   * reload), for backends that hold counters in this process: a limit removed, set again or
   * restarted by a quota reset is a counter that no new request touches.
   */
  retain?(ids: ReadonlySet<string>): void;
  /** Read-only view of counters (GET /v1/usage, quotas get). */
  peek(counters: readonly CounterRef[], now: number): Promise<readonly CounterState[]>;
  /** Zero a counter's window (quotas reset). */
  reset(counterId: string, now: number): Promise<void>;
  close(): Promise<void>;
}
