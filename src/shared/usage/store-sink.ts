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
}

export class StoreUsageSink implements UsageSink {
  private buffer: UsageRecord[] = [];
  private writing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null;
  private failures = 0;
  private retryAt = 0;
  private full = false;
  private waitingSince = 0;
  private closed = false;
  private readonly o: Required<Omit<StoreUsageSinkOptions, 'onEvent' | 'now' | 'writerThread'>> & Pick<StoreUsageSinkOptions, 'onEvent'>;
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

  /** False while the buffer is past its bound: the proxy should refuse new requests with 503. */
  accepting(): boolean {
    return !this.full;
  }

  pending(): number {
    return this.buffer.length;
  }

  /** Writes everything buffered now; rejects with store_unavailable if the store fails (records are kept). */
  flush(): Promise<void> {
    // One drain at a time; it loops until the buffer is empty, so records added meanwhile are included.
    if (!this.writing) {
      this.writing = this.drain().finally(() => {
        this.writing = null;
      });
    }
    return this.writing;
  }

  private async drain(): Promise<void> {
    while (this.buffer.length) await this.writeOne();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
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
      this.closed = true;
      await this.write.close?.();
    }
  }

  private tick(): void {
    if (this.closed || !this.buffer.length || this.writing || this.now() < this.retryAt) return;
    if (this.buffer.length >= this.o.batchSize || this.failures > 0 || this.now() - this.waitingSince >= this.o.flushIntervalMs) this.kick();
  }

  private kick(): void {
    if (this.writing || this.now() < this.retryAt) return;
    this.flush().catch(() => {
      // Reported through onEvent; the records stay buffered for the next attempt.
    });
  }

  private async writeOne(): Promise<void> {
    const batch = this.buffer.slice(0, this.o.batchSize);
    const start = performance.now();
    try {
      const result = await this.write(batch, this.o.instance, new Date(this.now()));
      // Records added meanwhile were appended, so the batch is still the buffer's head.
      this.buffer.splice(0, batch.length);
      this.waitingSince = this.now();
      if (this.failures > 0) this.o.onEvent?.({ type: 'recovered', pending: this.buffer.length });
      this.failures = 0;
      this.retryAt = 0;
      if (this.full && this.buffer.length < this.o.maxBuffer * 0.9) this.full = false;
      this.o.onEvent?.({ type: 'flushed', ...result, ms: performance.now() - start, pending: this.buffer.length });
    } catch (error) {
      this.failures++;
      const retryInMs = this.backoff();
      this.retryAt = this.now() + retryInMs;
      this.o.onEvent?.({ type: 'error', error, pending: this.buffer.length, retryInMs });
      throw new GatewayError('store_unavailable', 'usage events could not be written to the store', { cause: error });
    }
  }

  private backoff(): number {
    return Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.max(0, this.failures - 1));
  }
}
