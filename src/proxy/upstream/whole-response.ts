// A non-streaming upstream answer read into one buffer through undici's dispatch() handler
// interface, instead of request(): that API wraps every answer in an AsyncResource, a Readable
// body and an abort listener, then the relay iterates it with an async iterator, all to collect
// the one or two chunks of a JSON completion (~20 µs of CPU a request in the profile).
// Timeouts, keep-alive and connection errors stay the Pool's, exactly as with request().
import { type Dispatcher, errors } from 'undici';
import type { ClientAbort } from '../client-abort.js';
import { type QueueWaiter, watchQueued } from './queue-wait.js';
import type { UpstreamWhole } from './types.js';

type Headers = Record<string, string | string[] | undefined>;

/** Raw header pairs → lower-cased names; a repeated name becomes an array, as undici's request() does. */
export function headersFrom(raw: readonly Buffer[] | readonly string[]): Headers {
  const out: Headers = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

/** The value of one header (the first, if repeated) among raw pairs; the name must be lower case. */
export function rawHeader(raw: readonly Buffer[] | readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toString('latin1').toLowerCase() === name) return raw[i + 1]!.toString('latin1');
  }
  return undefined;
}

/** A whole answer whose header object is built only if asked for (error paths); content-type is read at once. */
class Whole implements UpstreamWhole {
  private parsed: Headers | null = null;
  readonly contentType: string | undefined;

  constructor(
    readonly status: number,
    private readonly raw: Buffer[],
    readonly body: Buffer,
    readonly headersAt: number,
  ) {
    this.contentType = rawHeader(raw, 'content-type');
  }

  get headers(): Headers {
    this.parsed ??= headersFrom(this.raw);
    return this.parsed;
  }
}

class WholeHandler implements Dispatcher.DispatchHandler, QueueWaiter {
  private status = 0;
  private raw: Buffer[] = [];
  private headersAt = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private abortRequest: ((err: Error) => void) | null = null;
  private done = false;

  constructor(
    private readonly signal: ClientAbort,
    private readonly resolve: (w: UpstreamWhole) => void,
    private readonly reject: (err: Error) => void,
  ) {
    signal.onAbort(this.onAbort);
  }

  private readonly onAbort = () => {
    if (this.abortRequest) this.abortRequest(new errors.RequestAbortedError());
    else this.expire(new errors.RequestAbortedError()); // still waiting for a connection
  };

  onConnect(abort: (err?: Error) => void): void {
    // Ended while it waited for a connection (see queue-wait.ts): refused before a byte is sent.
    if (this.done) throw new errors.RequestAbortedError();
    if (this.signal.aborted) return void abort(new errors.RequestAbortedError());
    this.abortRequest = abort;
  }

  waiting(): boolean {
    return this.abortRequest === null && !this.done;
  }

  expire(err: Error): void {
    if (!this.waiting()) return;
    this.done = true;
    this.signal.offAbort(this.onAbort);
    this.reject(err);
  }

  onHeaders(status: number, raw: Buffer[]): boolean {
    if (status < 200) return true; // 1xx: the real answer follows
    this.status = status;
    this.raw = raw;
    this.headersAt = performance.now();
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    this.signal.offAbort(this.onAbort);
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.resolve(new Whole(this.status, this.raw, body, this.headersAt));
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.signal.offAbort(this.onAbort);
    this.reject(err);
  }
}

/**
 * Sends one request on `dispatcher` and resolves with the whole answer; rejects with undici's
 * error, or what `mapError` makes of it (so a caller need not wrap the promise to translate).
 * `queueMs` > 0: a request still waiting for a free connection after that long is failed with a
 * 503 (see queue-wait.ts).
 */
export function requestWhole(
  dispatcher: Dispatcher,
  opts: Dispatcher.DispatchOptions,
  signal: ClientAbort,
  mapError?: (err: Error) => Error,
  queueMs = 0,
): Promise<UpstreamWhole> {
  return new Promise((resolve, reject) => {
    const fail = mapError ? (err: Error) => reject(mapError(err)) : reject;
    if (signal.aborted) return fail(new errors.RequestAbortedError());
    const handler = new WholeHandler(signal, resolve, fail);
    // false: the pool has no free connection left, and this request may be waiting for one.
    if (!dispatcher.dispatch(opts, handler)) watchQueued(handler, opts, queueMs);
  });
}
