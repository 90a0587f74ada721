// Buffers usage records and writes them in batches off the request path. When the store is
// down the records stay in memory and are retried with backoff; nothing is ever dropped. The
// buffer has a soft bound: past it, accepting() turns false and the proxy refuses new requests
// (503) until the store is back, while records of requests already admitted are still kept.
import type { Store } from '../db/store.js';
import { GatewayError } from '../errors.js';
import type { UsageRecord, UsageSink } from './types.js';
import { type BatchWriter, batchWriter } from './write-batch.js';

export type SinkEvent =
  | { type: 'flushed'; inserted: number; duplicates: number; ms: number; pending: number }
  | { type: 'error'; error: unknown; pending: number; retryInMs: number }
  | { type: 'full'; pending: number; maxBuffer: number }
  | { type: 'recovered'; pending: number };

export interface StoreUsageSinkOptions {
  /** Recorded in usage_events.instance and as the actor of credit charges. */
  instance: string;
  /** Records per transaction (default 500). */
  batchSize?: number;
  /** Longest a record waits before a flush starts, ms (default 1000). */
  flushIntervalMs?: number;
  /** Soft bound of the buffer (default 100,000): past it accepting() is false. */
  maxBuffer?: number;
  /** First retry delay after a failed write, doubling up to maxBackoffMs (defaults 200 / 5000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long close() keeps retrying a down store before giving up (default 10,000 ms). */
  closeTimeoutMs?: number;
  /** Logs and metrics: every flush, failure, the buffer filling up, and recovery. */
  onEvent?: (e: SinkEvent) => void;
  now?: () => number;
  /** SQLite files: write batches on a thread of their own (default false: on the caller's thread; see sqlite-writer.ts). */
  writerThread?: boolean;
  /**
   * Failures that mean "try again shortly" (SQLite's SQLITE_BUSY: another connection holds the
   * write lock). A hold waits through them, for up to HOLD_PATIENCE_MS, with quick retries.
   */
  busy?: (err: unknown) => boolean;
}

/** How long a hold waits through busy failures (see StoreUsageSinkOptions.busy) before it gives up. */
export const HOLD_PATIENCE_MS = 5_000;
/** Retry delay of a busy store while a hold waits for it. */
const HOLD_RETRY_MS = 50;

/** See StoreUsageSink.hold(). */
export interface SinkHold {
  /** Resolves once every record added before hold() is in the store; rejects if a write fails first. */
  readonly ready: Promise<void>;
  /** Lets the records added after hold() be written again. Idempotent. */
  release(): void;
  /** The records added before hold() that are not in the store yet (after a failed write). */
  unwritten(): readonly UsageRecord[];
}

interface Hold {
  /** Sequence number of the first record added after hold(): writes stop short of it. */
  upTo: number;
  /** When it was taken: a hold older than MAX_HOLD_MS no longer stops writes, and one still not ready after HOLD_PATIENCE_MS gives up. */
  at: number;
  waiting: { resolve: () => void; reject: (err: unknown) => void } | null;
}

/**
 * Longest a hold keeps records back: a seed read that hangs (a stuck store) must not stop usage
 * writes for long. Past it the records are written; a read that then completes may count some of
 * them twice (more refused, never more admitted).
 */
export const MAX_HOLD_MS = 5_000;

export class StoreUsageSink implements UsageSink {
  private buffer: UsageRecord[] = [];
  /** Sequence number of buffer[0]: every record before it is in the store. */
  private written = 0;
  private readonly holds = new Set<Hold>();
  /** close() waiting for the holds to go (see close()). */
  private unheld: (() => void)[] = [];
  private writing: Promise<void> | null = null;
  private draining = false;
  /** The last write failed because the store was busy (see StoreUsageSinkOptions.busy). */
  private lastBusy = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null;
  private failures = 0;
  private retryAt = 0;
  private full = false;
  private waitingSince = 0;
  private closed = false;
  /** close() has begun: holds no longer stop writes (everything is written before exit). */
  private closing = false;
  private readonly o: Required<Omit<StoreUsageSinkOptions, 'onEvent' | 'now' | 'writerThread' | 'busy'>> & Pick<StoreUsageSinkOptions, 'onEvent' | 'busy'>;
  private readonly now: () => number;
  private readonly write: BatchWriter;

  constructor(store: Store, opts: StoreUsageSinkOptions) {
    this.o = {
      batchSize: 500,
      flushIntervalMs: 1000,
      maxBuffer: 100_000,
      minBackoffMs: 200,
      maxBackoffMs: 5000,
      closeTimeoutMs: 10_000,
      ...opts,
    };
    this.now = opts.now ?? Date.now;
    this.write = batchWriter(store, { thread: opts.writerThread ?? false });
    this.timer = setInterval(() => this.tick(), Math.min(this.o.flushIntervalMs, 250));
    this.timer.unref();
  }

  add(record: UsageRecord): void {
    if (!this.buffer.length) this.waitingSince = this.now();
    this.buffer.push(record);
    if (!this.full && this.buffer.length >= this.o.maxBuffer) {
      this.full = true;
      this.o.onEvent?.({ type: 'full', pending: this.buffer.length, maxBuffer: this.o.maxBuffer });
    }
    if (this.buffer.length >= this.o.batchSize && !this.closed) this.kick();
  }

  /**
   * A cut in the stream of records for someone reading the store: the records added before the
   * call are written (ready), the ones added after it are not written until release(). In between,
   * the store holds exactly this process's records from before the cut. A limit counter seeded
   * from the store while a hold stands, and charged live with every request settled after the
   * cut, counts each request once: the seed of a counter used to miss the buffered records of
   * the last flush interval (up to a second of traffic) when a limit was added under load.
   */
  hold(): SinkHold {
    const h: Hold = { upTo: this.written + this.buffer.length, at: this.now(), waiting: null };
    this.holds.add(h);
    let ready: Promise<void>;
    if (this.written >= h.upTo) ready = Promise.resolve();
    else if (this.closed) ready = Promise.reject(new GatewayError('store_unavailable', 'the usage sink is closed; its last records could not be written'));
    else if (this.failures > 0 && this.now() < this.retryAt && !this.lastBusy) {
      ready = Promise.reject(new GatewayError('store_unavailable', 'usage events cannot be written to the store right now'));
    } else {
      ready = new Promise<void>((resolve, reject) => {
        h.waiting = { resolve, reject };
      });
      // A busy store is retried soon for it rather than after the backoff.
      if (this.lastBusy) this.retrySoon();
      else this.kick();
    }
    // A hold given up before it was ready (release() rejects it) is no unhandled rejection.
    ready.catch(() => {});
    return {
      ready,
      unwritten: () => this.buffer.slice(0, Math.max(0, h.upTo - this.written)),
      release: () => {
        if (!this.holds.delete(h)) return;
        h.waiting?.reject(new GatewayError('store_unavailable', 'released before the usage events were written'));
        h.waiting = null;
        // Another hold waiting for records this one kept back is written for at once (a seed
        // waits on it), not at the next flush interval; otherwise they may be overdue by now.
        if ([...this.holds].some((other) => other.waiting !== null)) this.kick();
        else this.tick();
        if (this.holds.size === 0) for (const wake of this.unheld.splice(0)) wake();
      },
    };
  }

  /** Sequence number writes must stop short of (a hold's cut), or Infinity. */
  private limit(): number {
    if (this.closing || this.holds.size === 0) return Number.POSITIVE_INFINITY;
    let min = Number.POSITIVE_INFINITY;
    const stale = this.now() - MAX_HOLD_MS;
    for (const h of this.holds) if (h.upTo < min && h.at > stale) min = h.upTo;
    return min;
  }

  /**
   * Settles the holds waiting for writes: ready once written up to their cut; after a failure,
   * rejected, unless the store is only busy and they have waited less than HOLD_PATIENCE_MS.
   */
  private wakeHolds(err?: unknown, busy = false): void {
    const patient = this.now() - HOLD_PATIENCE_MS;
    let waiting = false;
    for (const h of this.holds) {
      if (!h.waiting) continue;
      if (err === undefined && this.written >= h.upTo) h.waiting.resolve();
      else if (err !== undefined && !(busy && h.at > patient)) h.waiting.reject(err);
      else {
        waiting = true;
        continue;
      }
      h.waiting = null;
    }
    if (waiting && err !== undefined) this.retrySoon();
  }

  /** A write attempt in HOLD_RETRY_MS (a hold is waiting for a busy store). */
  private retrySoon(): void {
    if (this.retryTimer || this.closed) return;
    this.retryAt = Math.min(this.retryAt, this.now() + HOLD_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAt = 0;
      this.kick();
    }, HOLD_RETRY_MS);
    this.retryTimer.unref();
  }

  /** False while the buffer is past its bound: the proxy should refuse new requests with 503. */
  accepting(): boolean {
    return !this.full;
  }

  pending(): number {
    return this.buffer.length;
  }

  /** The records not in the store yet, oldest first (a copy): what a close() that failed leaves. */
  unwritten(): UsageRecord[] {
    return this.buffer.slice();
  }

  /**
   * Writes everything buffered now, short of a standing hold's cut (see hold(): those records
   * are written once it is released, or by close()); rejects with store_unavailable if the
   * store fails (records are kept).
   */
  flush(): Promise<void> {
    // One drain at a time; it loops until the buffer is empty, so records added meanwhile are included.
    // `draining`, not `writing`, says whether that drain is still running: a drain stopped at a
    // hold's cut has returned, while its promise's callbacks have not run yet.
    if (!this.draining || !this.writing) this.writing = this.drain();
    return this.writing;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (;;) {
        // A hold stops the drain at its cut; its release starts another.
        const room = Math.min(this.buffer.length, this.limit() - this.written);
        if (room <= 0) return;
        await this.writeOne(room);
      }
    } finally {
      this.draining = false;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // A seed reading the store behind a hold would count the records past its cut once they
    // are written: let it finish first (briefly: reads take milliseconds, and a stuck one is
    // given up on as writes would be). A hold still waiting for a busy store keeps being retried
    // meanwhile (its seed cannot release it before), and this wait keeps the process alive:
    // records are still buffered.
    if (this.holds.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, MAX_HOLD_MS);
        this.unheld.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closing = true;
    const deadline = this.now() + this.o.closeTimeoutMs;
    try {
      for (;;) {
        try {
          await this.flush();
          break;
        } catch (err) {
          if (this.now() >= deadline) {
            throw new GatewayError('store_unavailable', `the store is unreachable: ${this.buffer.length} usage events could not be written`, { cause: err });
          }
          await new Promise((r) => setTimeout(r, this.backoff()));
        }
      }
    } finally {
      // Nothing is written after this, whatever calls in later (a late seed's hold): the
      // writer is closed, and a record still here was reported in the error above.
      this.closed = true;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      await this.write.close?.();
    }
  }

  private tick(): void {
    if (this.closed || !this.buffer.length || this.draining || this.now() < this.retryAt) return;
    if (this.buffer.length >= this.o.batchSize || this.failures > 0 || this.now() - this.waitingSince >= this.o.flushIntervalMs) this.kick();
  }

  private kick(): void {
    if (this.closed || this.draining || this.now() < this.retryAt) return;
    this.flush().catch(() => {
      // Reported through onEvent; the records stay buffered for the next attempt.
    });
  }

  private async writeOne(room: number): Promise<void> {
    const batch = this.buffer.slice(0, Math.min(this.o.batchSize, room));
    const start = performance.now();
    try {
      const result = await this.write(batch, this.o.instance, new Date(this.now()));
      // Records added meanwhile were appended, so the batch is still the buffer's head.
      this.buffer.splice(0, batch.length);
      this.written += batch.length;
      this.lastBusy = false;
      this.wakeHolds();
      this.waitingSince = this.now();
      if (this.failures > 0) this.o.onEvent?.({ type: 'recovered', pending: this.buffer.length });
      this.failures = 0;
      this.retryAt = 0;
      if (this.full && this.buffer.length < this.o.maxBuffer * 0.9) this.full = false;
      this.o.onEvent?.({ type: 'flushed', ...result, ms: performance.now() - start, pending: this.buffer.length });
    } catch (error) {
      this.failures++;
      this.lastBusy = this.o.busy?.(error) === true;
      const retryInMs = this.backoff();
      this.retryAt = this.now() + retryInMs;
      this.o.onEvent?.({ type: 'error', error, pending: this.buffer.length, retryInMs });
      const failed = new GatewayError('store_unavailable', 'usage events could not be written to the store', { cause: error });
      this.wakeHolds(failed, this.lastBusy);
      throw failed;
    }
  }

  private backoff(): number {
    return Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.max(0, this.failures - 1));
  }
}
