// A deadline for requests waiting for a free upstream connection.
//
// undici's Pool queues a request while every one of its `connections` is busy, and its headers
// and body timeouts start only once the request is on a socket: behind stalled streams a request
// would wait as long as they stall (up to the body timeout each), and its client with it.
//
// Nothing is paid by a request that gets a connection at once: Pool.dispatch() returns false
// only when the pool has no free connection left, and a request that took the last one is
// already on its socket (its handler connected) when dispatch() returns. Only a request still
// waiting then is watched: one small entry in slots of an array that one sweep every SWEEP_MS
// checks (no timer per request, as with request bodies in http-io.ts). The sweep forgets entries
// whose request got its connection (or ended) meanwhile, and expires those past their deadline:
// the handler fails the request with a 503 at once (nothing was sent, nothing is billed).
//
// undici's queue cannot give an item back, so an expired request stays in it until a connection
// frees, without its body (dropped here). Its handler then refuses it in onConnect by throwing:
// undici drops a request whose onConnect throws before writing a byte and keeps the connection
// for the next one (calling the abort function it passes would destroy the socket).
import type { Dispatcher } from 'undici';
import { GatewayError } from '../../shared/errors.js';

/** What a dispatch handler offers the sweep. */
export interface QueueWaiter {
  /** Not on a connection yet, and not ended. */
  waiting(): boolean;
  /** Fails the request with `err`; when undici later offers it a connection, it refuses it. */
  expire(err: Error): void;
}

interface Entry {
  waiter: QueueWaiter;
  opts: Dispatcher.DispatchOptions;
  deadline: number;
  ms: number;
}

const SWEEP_MS = 100;
const slots: Array<Entry | null> = [];
const freeSlots: number[] = [];
let watching = 0;
let sweeper: NodeJS.Timeout | null = null;

function release(i: number): void {
  slots[i] = null;
  freeSlots.push(i);
  watching--;
}

function sweep(): void {
  const now = performance.now();
  for (let i = 0; i < slots.length; i++) {
    const e = slots[i];
    if (!e) continue;
    if (!e.waiter.waiting()) release(i);
    else if (now >= e.deadline) {
      release(i);
      e.opts.body = null;
      e.waiter.expire(queueTimeout(e.ms));
    }
  }
  if (watching === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

/**
 * Called after Pool.dispatch() returned false (no free connection left): watches the request if
 * its handler is still waiting for a connection. `ms` 0 means no deadline.
 */
export function watchQueued(waiter: QueueWaiter, opts: Dispatcher.DispatchOptions, ms: number): void {
  if (ms <= 0 || !waiter.waiting()) return;
  const slot = freeSlots.length > 0 ? freeSlots.pop()! : slots.length;
  slots[slot] = { waiter, opts, deadline: performance.now() + ms, ms };
  watching++;
  if (!sweeper) {
    sweeper = setInterval(sweep, SWEEP_MS);
    sweeper.unref();
  }
}

/** Requests watched right now, including ones that got a connection since the last sweep (tests). */
export function requestsWatched(): number {
  return watching;
}

/**
 * 503 with Retry-After (errors.ts adds it to every 503): the upstream never saw the request, so a
 * retry is safe, and clients (OpenAI's SDKs among them) retry a 503 after the time it names.
 */
function queueTimeout(ms: number): GatewayError {
  return new GatewayError(
    'unavailable',
    `Every connection to the upstream stayed busy for ${ms} ms, so the request was not sent upstream. Retry shortly.`,
  );
}
