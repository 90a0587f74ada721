// A streamed upstream answer through undici's dispatch() handler interface: the promise settles
// at the response headers, then the body is a single-consumer async iterator fed by onData.
// undici's request() would wrap the same bytes in an AsyncResource, a Readable and an abort
// listener, and the relay would read that Readable through Node's async iterator with its
// end-of-stream bookkeeping: ~20 µs of CPU per streamed request, none of it needed here.
// Backpressure is kept: past HIGH_WATER bytes queued, onData pauses the socket until the
// relay has taken them. Timeouts and connection errors stay the Pool's, as with request().
import { type Dispatcher, errors } from 'undici';
import type { ClientAbort } from '../client-abort.js';
import { type QueueWaiter, watchQueued } from './queue-wait.js';
import type { UpstreamResponse } from './types.js';
import { headersFrom } from './whole-response.js';

/** Queued bytes past which the upstream socket is paused (undici's Readable default). */
const HIGH_WATER = 64 * 1024;

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** The response as the relay sees it; the header object is built only if asked for (error paths). */
class Head implements UpstreamResponse {
  private parsed: Record<string, string | string[] | undefined> | null = null;

  constructor(
    readonly status: number,
    private readonly raw: Buffer[],
    readonly body: StreamHandler,
  ) {}

  get headers(): Record<string, string | string[] | undefined> {
    this.parsed ??= headersFrom(this.raw);
    return this.parsed;
  }

  discard(): void {
    this.body.discard();
  }

  ended(): boolean {
    return this.body.endedCleanly();
  }
}

class StreamHandler implements Dispatcher.DispatchHandler, AsyncIterableIterator<Buffer>, QueueWaiter {
  private abortRequest: ((err: Error) => void) | null = null;
  private resumeSocket: (() => void) | null = null;
  // Callbacks in fields of their own rather than { resolve, reject } literals: a literal site
  // V8 pretenures puts each request's promise chain behind an old-space object until the next
  // full GC (see client-abort.ts).
  private headResolve: ((r: UpstreamResponse) => void) | null;
  private headReject: ((err: Error) => void) | null;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private paused = false;
  private ended = false;
  private failure: Error | null = null;
  private discarded = false;
  private waitResolve: ((r: IteratorResult<Buffer>) => void) | null = null;
  private waitReject: ((err: Error) => void) | null = null;

  constructor(
    private readonly signal: ClientAbort,
    resolve: (r: UpstreamResponse) => void,
    reject: (err: Error) => void,
  ) {
    this.headResolve = resolve;
    this.headReject = reject;
    signal.onAbort(this.onAbort);
  }

  private readonly onAbort = () => {
    if (this.abortRequest) this.abortRequest(new errors.RequestAbortedError());
    else this.expire(new errors.RequestAbortedError()); // still waiting for a connection
  };

  onConnect(abort: (err?: Error) => void): void {
    // Failed while it waited for a connection (see queue-wait.ts): refused before a byte is sent.
    if (this.headReject === null) throw new errors.RequestAbortedError();
    if (this.signal.aborted) return void abort(new errors.RequestAbortedError());
    this.abortRequest = abort;
  }

  waiting(): boolean {
    return this.abortRequest === null && this.headReject !== null;
  }

  expire(err: Error): void {
    const reject = this.headReject;
    if (reject === null || this.abortRequest !== null) return;
    this.headResolve = null;
    this.headReject = null;
    this.ended = true; // nothing to iterate; undici's onError for the refused request is ignored
    this.signal.offAbort(this.onAbort);
    reject(err);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // 1xx: the real answer follows
    this.resumeSocket = resume;
    const resolve = this.headResolve;
    this.headResolve = null;
    this.headReject = null;
    resolve?.(new Head(status, raw, this));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarded) return true;
    const w = this.takeWaiter();
    if (w) {
      w({ value: chunk, done: false });
      return true;
    }
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued < HIGH_WATER) return true;
    this.paused = true;
    return false;
  }

  onComplete(): void {
    this.ended = true;
    this.signal.offAbort(this.onAbort);
    this.takeWaiter()?.(DONE);
  }

  onError(err: Error): void {
    this.signal.offAbort(this.onAbort);
    const headReject = this.headReject;
    if (headReject) {
      this.headResolve = null;
      this.headReject = null;
      headReject(err);
      return;
    }
    if (this.discarded || this.ended) return;
    this.failure = err;
    const reject = this.waitReject;
    this.waitResolve = null;
    this.waitReject = null;
    if (reject) {
      reject(err);
      this.ended = true; // the error was delivered: the iterator is finished
    }
  }

  /** The waiting next()'s resolve, taken (its reject goes with it), or null. */
  private takeWaiter(): ((r: IteratorResult<Buffer>) => void) | null {
    const resolve = this.waitResolve;
    this.waitResolve = null;
    this.waitReject = null;
    return resolve;
  }

  /** The upstream finished without error and the relay has taken every chunk. */
  endedCleanly(): boolean {
    return this.ended && this.failure === null && !this.discarded && this.queue.length === 0;
  }

  /** Stops reading: the request is aborted, the connection released, and iteration ends. */
  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    this.queue.length = 0;
    this.queued = 0;
    this.signal.offAbort(this.onAbort);
    if (!this.ended) this.abortRequest?.(new errors.RequestAbortedError());
    this.takeWaiter()?.(DONE);
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.queue.length > 0) {
      const chunk = this.queue.shift()!;
      this.queued -= chunk.length;
      if (this.paused && this.queued < HIGH_WATER) {
        this.paused = false;
        this.resumeSocket?.();
      }
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.failure && !this.ended) {
      // Bytes that arrived before the failure went out first; now the failure itself.
      this.ended = true;
      return Promise.reject(this.failure);
    }
    if (this.ended || this.discarded) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.waitResolve = resolve;
      this.waitReject = reject;
    });
  }

  /** A consumer that stops early (break, return, throw in a for-await) discards the rest. */
  return(): Promise<IteratorResult<Buffer>> {
    this.discard();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this;
  }
}

/**
 * Sends one request on `dispatcher`; resolves at the response headers with a body to iterate
 * once. A failure before the headers rejects with undici's error, or what `mapError` makes of it.
 * `queueMs` > 0: a request still waiting for a free connection after that long is failed with a
 * 503 (see queue-wait.ts).
 */
export function requestStream(
  dispatcher: Dispatcher,
  opts: Dispatcher.DispatchOptions,
  signal: ClientAbort,
  mapError?: (err: Error) => Error,
  queueMs = 0,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const fail = mapError ? (err: Error) => reject(mapError(err)) : reject;
    if (signal.aborted) return fail(new errors.RequestAbortedError());
    const handler = new StreamHandler(signal, resolve, fail);
    // false: the pool has no free connection left, and this request may be waiting for one.
    if (!dispatcher.dispatch(opts, handler)) watchQueued(handler, opts, queueMs);
  });
}
