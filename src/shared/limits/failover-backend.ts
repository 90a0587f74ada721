// Redis first; when Redis is unreachable, each org's failure mode decides: 'closed' refuses
// (GatewayError 'unavailable' → 503), 'open' is served under a local MemoryLimitBackend (the
// same limits, counted by this instance from what the store knows). When Redis returns with its
// data, the settlements it missed are replayed (idempotently) and the fallback's calendar/total
// usage is added to the shared counters; when it returns empty, the store re-seeds them.
import { GatewayError, isGatewayError } from '../errors.js';
import type { Drained, MemoryLimitBackend } from './memory-backend.js';
import { type RedisLimitBackend, reservationIdFor } from './redis-backend.js';
import type { Admission, Amounts, CounterRef, CounterState, LimitBackend, Reservation, ReserveOptions } from './types.js';
import { isRolling } from './windows.js';

export type LimitState = 'redis' | 'fallback';

export interface LimitHealth {
  state: LimitState;
  redisReady: boolean;
  /** Settlements waiting for Redis to come back. */
  queuedSettlements: number;
  lastError: string | null;
}

export interface FailoverOptions {
  onStateChange?: (state: LimitState, health: LimitHealth) => void;
  /** Settlements kept for replay while Redis is down (default 100,000; the oldest are dropped past it, reported via onStateChange). */
  maxQueued?: number;
}

interface Queued {
  reservation: Reservation;
  actual: Amounts;
  now: number;
}

export class FailoverLimitBackend implements LimitBackend {
  private state: LimitState;
  /**
   * Reservations the fallback admitted, with the fallback period they belong to: a drain() (Redis
   * back) ends the period, and a request of an ended period still running settles on the shared
   * counters (its reservation was left out of the handover).
   */
  private readonly viaFallback = new Map<string, number>();
  private period = 0;
  private queue: Queued[] = [];
  private lastError: string | null = null;
  private reconciling: Promise<void> | null = null;
  /** Fallback usage drained but not yet taken by Redis (its handover failed). */
  private handover: Drained | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly redis: RedisLimitBackend,
    private readonly fallback: MemoryLimitBackend,
    private readonly opts: FailoverOptions = {},
  ) {
    this.state = redis.ready() ? 'redis' : 'fallback';
    this.unsubscribe = redis.onStateChange((ready) => {
      if (ready) void this.reconcile();
      else this.setState('fallback', 'Redis connection lost');
    });
  }

  health(): LimitHealth {
    return { state: this.state, redisReady: this.redis.ready(), queuedSettlements: this.queue.length, lastError: this.lastError };
  }

  // While a reconciliation runs, calls that would use the fallback wait for it (a few Redis round
  // trips; no await at all in the 'redis' state): a request counted in the fallback after its
  // counters were handed over would be lost to the shared counters, and a counter seeded again
  // meanwhile would start a second fallback period nobody hands over (one request per
  // reconnection missing in Redis, in the chaos probe).

  async reserve(requestId: string, counters: readonly CounterRef[], amounts: Amounts, now: number, opts?: ReserveOptions): Promise<Admission> {
    if (this.state === 'fallback') {
      // A timeout can switch to the fallback without the connection ever dropping: retry lazily.
      if (this.redis.ready()) void this.reconcile();
      if (this.state === 'fallback' && this.reconciling) await this.reconciling;
    }
    if (this.state === 'redis') {
      const reservationId = reservationIdFor(requestId);
      try {
        return await this.redis.reserve(requestId, counters, amounts, now, { ...opts, reservationId });
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        this.setState('fallback', errorText(err));
        // The reserve may have reached Redis before its answer was lost (sent just before a
        // partition, or Redis only slow): its reservation would stand there, counted, until it
        // expires (15 min), while this request is served by the fallback or refused. It is
        // released with the replayed settlements (as settled at 0: a reservation that is not
        // there is left alone). Rolling windows are left out: their reservation is in the bucket
        // itself, and taking it out when it never went in would count less than was used.
        const calendar = counters.filter((c) => !isRolling(c.window));
        if (calendar.length) {
          const reservation: Reservation = { ok: true, id: reservationId, counters: calendar, reserved: amounts, reservedAt: now, states: [] };
          this.enqueue({ reservation, actual: NOTHING, now });
        }
      }
    }
    if ((opts?.failureMode ?? 'closed') === 'closed') {
      throw new GatewayError('unavailable', 'rate limits cannot be checked right now (shared counters unreachable); try again shortly');
    }
    const admission = await this.fallback.reserve(requestId, counters, amounts, now, opts);
    if (admission.ok) this.viaFallback.set(admission.id, this.period);
    return admission;
  }

  async settle(reservation: Reservation, actual: Amounts, now: number): Promise<readonly CounterState[]> {
    const period = this.viaFallback.get(reservation.id);
    if (period !== undefined) {
      this.viaFallback.delete(reservation.id);
      if (period === this.period) return this.fallback.settle(reservation, actual, now);
      // Admitted by a fallback period that has ended while the request ran: its reservation
      // was left out of the handover, so its real usage goes to the shared counters now, in the
      // windows it was admitted in (or to the fallback, should Redis be gone again).
      await this.charge(reservation.counters, actual, reservation.reservedAt, now);
      return reservation.states;
    }
    if (this.state === 'fallback' && this.reconciling) await this.reconciling;
    if (this.state === 'redis') {
      try {
        return await this.redis.settle(reservation, actual, now);
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        this.setState('fallback', errorText(err));
      }
    }
    this.enqueue({ reservation, actual, now });
    return reservation.states;
  }

  async charge(counters: readonly CounterRef[], actual: Amounts, at: number, now: number): Promise<void> {
    if (this.state === 'fallback' && this.reconciling) await this.reconciling;
    if (this.state === 'redis') {
      // A charge Redis could not take is not moved to the fallback: by then (after an await) a
      // fallback seed may have read the event and be collecting the charge too, and Redis may
      // have taken part of it for a seed of its own. The store holds the event for any seed.
      try {
        await this.redis.charge(counters, actual, at, now);
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        this.setState('fallback', errorText(err));
      }
      return;
    }
    // The fallback's calendar and total counts are handed to Redis when it returns.
    this.fallback.charge(counters, actual, at, now);
  }

  retain(ids: ReadonlySet<string>): void {
    this.fallback.retain(ids);
  }

  async peek(counters: readonly CounterRef[], now: number): Promise<readonly CounterState[]> {
    if (this.state === 'fallback' && this.reconciling) await this.reconciling;
    if (this.state === 'redis') {
      try {
        return await this.redis.peek(counters, now);
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        this.setState('fallback', errorText(err));
      }
    }
    return this.fallback.peek(counters, now);
  }

  async reset(counterId: string, now: number): Promise<void> {
    await this.fallback.reset(counterId, now);
    await this.redis.reset(counterId, now);
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.reconciling?.catch(() => {});
    await this.redis.close();
    await this.fallback.close();
  }

  /** Replays missed settlements and hands the fallback's usage to Redis, then switches back. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.doReconcile().finally(() => {
      this.reconciling = null;
    });
    return this.reconciling;
  }

  private async doReconcile(): Promise<void> {
    try {
      if (this.redis.seeded && (await this.redis.epochChanged())) {
        // Redis came back empty: its counters are seeded again from the store, which holds the
        // missed settlements and the fallback's requests (once flushed). Adding them would count twice.
        this.queue = [];
        this.fallback.drain();
        this.period++;
        this.handover = null;
        this.setState('redis', null);
        return;
      }
      while (this.queue.length) {
        const q = this.queue[0]!;
        await this.redis.settle(q.reservation, q.actual, q.now);
        this.queue.shift();
      }
      // Kept until Redis has taken it: a handover that fails is tried again at the next
      // reconciliation, with whatever the fallback counted meanwhile.
      const drained = this.fallback.drain();
      this.period++;
      const h = this.handover ?? { fixed: [], rolling: [] };
      h.fixed.push(...drained.fixed);
      h.rolling.push(...drained.rolling);
      this.handover = h;
      await this.redis.addRolling(h.rolling, Date.now());
      h.rolling = [];
      await this.redis.addIfExists(h.fixed);
      this.handover = null;
      this.setState('redis', null);
    } catch (err) {
      this.lastError = errorText(err);
    }
  }

  private enqueue(q: Queued): void {
    this.redis.release(q.reservation.id); // replayed or dropped, it is no longer refreshed
    this.queue.push(q);
    const max = this.opts.maxQueued ?? 100_000;
    if (this.queue.length > max) {
      this.queue.shift();
      this.lastError = `settlement queue full (${max}): the oldest settlement was dropped, its reservation stands until it expires`;
      this.opts.onStateChange?.(this.state, this.health());
    }
  }

  private setState(state: LimitState, error: string | null): void {
    if (error !== null) this.lastError = error;
    if (state === 'redis') this.lastError = null;
    if (this.state === state) return;
    this.state = state;
    this.opts.onStateChange?.(state, this.health());
  }
}

const NOTHING: Amounts = { requests: 0, tokens: 0, cost: 0 };
const isUnavailable = (err: unknown) => isGatewayError(err) && err.code === 'unavailable';
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
