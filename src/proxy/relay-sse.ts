// Streaming relay: upstream bytes go to the client as they arrive (one write per upstream chunk,
// never a whole response), while an observer reads usage on the side and a rewriter keeps the
// usage chunk only for clients that asked for it (DESIGN §6). Nothing here settles money: the
// caller gets an outcome and the reason the stream ended.
import type { ServerResponse } from 'node:http';
import { CR, LF } from './sse-framer.js';
import { createSseTap, formatSseError, SSE_DONE, type SseObservation, type SseTap } from './sse-usage.js';
import type { UpstreamResponse } from './upstream/types.js';

export type StreamEnd =
  | { kind: 'complete' }
  | { kind: 'client_gone' }
  | { kind: 'upstream_failed'; code: 'upstream_error' | 'upstream_timeout' }
  | { kind: 'cut'; code: string };

export interface Refusal {
  message: string;
  type: string;
  code: string;
}

export interface StreamWatch {
  /**
   * Called after each forwarded event with the observation so far; a refusal ends the stream.
   * A plain value when it can tell at once (the usual case: the stream is within its
   * reservation), so an event costs no promise and no turn of the microtask queue.
   */
  check(state: Readonly<SseObservation>): Refusal | null | Promise<Refusal | null>;
}

export interface StreamResult {
  end: StreamEnd;
  state: Readonly<SseObservation>;
  /** performance.now() of the first byte written to the client, or null. */
  firstByteAt: number | null;
}

export interface RelayOptions {
  includeUsage: boolean;
  /** Response headers; relaySse adds its own to this object. */
  headers: Record<string, string>;
  clientGone: () => boolean;
  watch: StreamWatch | null;
  /** Longest the client may refuse more bytes; then it is dropped (see ProxyConfig.clientWriteTimeoutMs). */
  writeTimeoutMs: number;
  /**
   * Receives the function to call when the client hangs up: it answers whether the relay goes
   * on reading the upstream for its usage (the completion has finished, its usage has not come
   * yet), in which case the caller delays aborting the upstream (ProxyConfig.disconnectUsageWaitMs).
   */
  onGone?: (keepReading: () => boolean) => void;
  /**
   * For an unwatched stream: a watch that takes over once the stream looks like more than its
   * reservation (an upstream ignoring max_tokens). Checked cheaply: only after `afterBytes` raw
   * bytes is `exceeded` asked, and once it says yes the stream is watched event by event.
   */
  guard?: { afterBytes: number; exceeded(state: Readonly<SseObservation>): boolean; watch(): StreamWatch };
}

/**
 * Resolves when the socket can take more, or when it closed (so a gone client never hangs us),
 * or after `timeoutMs`: a client that reads nothing for that long is dropped (the response is
 * destroyed, which reads as the client gone), so it cannot keep the upstream connection paused
 * and taken from the pool.
 */
function drained(res: ServerResponse, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    // Both listeners go once either fires: a slow client waits many times on one response.
    const done = () => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, timeoutMs);
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * Writes the parts as one chunk. Returns a promise only when the socket asked us to wait, so the
 * usual write costs no extra turn of the event loop (it is awaited only then).
 */
function send(res: ServerResponse, parts: readonly Uint8Array[], timeoutMs: number): Promise<unknown> | null {
  if (parts.length === 0 || res.destroyed) return null;
  const ok = res.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  return ok || res.destroyed ? null : drained(res, timeoutMs);
}

async function write(res: ServerResponse, parts: readonly Uint8Array[], timeoutMs: number): Promise<void> {
  await send(res, parts, timeoutMs);
}

/**
 * Cuts a chunk just after each blank line, as the SSE framer sees them (LF, an optional CR, LF:
 * LF LF and CR LF CR LF alike); the pieces are views, nothing is copied. A blank line split
 * across two chunks is not seen here: that piece is judged with the next chunk's first one.
 */
export function splitAfterEvents(chunk: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let lf = chunk.indexOf(LF); lf !== -1 && lf + 1 < chunk.length; lf = chunk.indexOf(LF, lf + 1)) {
    const next = chunk[lf + 1];
    const end = next === LF ? lf + 2 : next === CR && chunk[lf + 2] === LF ? lf + 3 : -1;
    if (end === -1) continue;
    out.push(chunk.subarray(start, end));
    start = end;
    lf = end - 1;
  }
  if (start < chunk.length) out.push(chunk.subarray(start));
  return out;
}

/** A chunk with a non-null finish_reason: the completion it belongs to has ended. */
const FINISHED_RE = /"finish_reason"[ \t\r\n]*:[ \t\r\n]*"/;
const finished = (chunk: Buffer | null): boolean => chunk?.includes('"finish_reason"') === true && FINISHED_RE.test(chunk.toString('latin1'));

const isTimeout = (err: unknown) =>
  err instanceof Error && 'code' in err && (err.code === 'UND_ERR_BODY_TIMEOUT' || err.code === 'UND_ERR_HEADERS_TIMEOUT');

export async function relaySse(res: ServerResponse, up: UpstreamResponse, opts: RelayOptions): Promise<StreamResult> {
  // One framing pass both reads usage on the side and reshapes the usage chunk for the client.
  const tap = createSseTap({ includeUsage: opts.includeUsage });
  // Headers leave with the first upstream bytes (one packet, not two: flushing them alone
  // measured ~20 ms more to the first byte under load).
  const headers = opts.headers; // the caller's to give away
  headers['content-type'] = 'text/event-stream';
  headers['cache-control'] = 'no-cache';
  headers['x-accel-buffering'] = 'no';
  res.writeHead(200, headers);
  let firstByteAt: number | null = null;
  const result = (end: StreamEnd): StreamResult => ({ end, state: tap.state, firstByteAt });
  let watch = opts.watch;
  let relayed = 0;
  // The last two chunks, for the hang-up check below (a keep-alive may follow the finish).
  let previous: Buffer | null = null;
  let latest: Buffer | null = null;
  // The client has gone after the completion finished: the upstream is read for its usage only.
  let draining = false;
  opts.onGone?.(() => {
    if (tap.state.usage !== null || !(finished(latest) || finished(previous))) return false;
    draining = true;
    return true;
  });
  const cut = async (refusal: Refusal) => {
    up.discard();
    await write(res, [Buffer.from(formatSseError(refusal)), Buffer.from(SSE_DONE)], opts.writeTimeoutMs);
    res.end();
    return result({ kind: 'cut', code: refusal.code });
  };
  try {
    for await (const chunk of up.body) {
      if (firstByteAt === null) firstByteAt = performance.now();
      previous = latest;
      latest = chunk;
      if (draining) {
        // Nothing more goes to the client: the chunks are observed until the usage arrives.
        tap.push(chunk);
        if (tap.state.usage !== null) return result({ kind: 'client_gone' });
        continue;
      }
      if (!watch) {
        const out = tap.push(chunk);
        // The upstream's last chunk (onComplete usually runs in the same read as its last
        // onData): it leaves with the end of the response, one socket write instead of two.
        if (up.ended?.()) return finishStream(res, tap, opts, out, result);
        const wait = send(res, out, opts.writeTimeoutMs);
        if (wait) await wait;
        if (opts.clientGone() && !draining) return result({ kind: 'client_gone' });
        const guard = opts.guard;
        relayed += chunk.length;
        if (guard && relayed > guard.afterBytes && guard.exceeded(tap.state)) {
          watch = guard.watch();
          let refusal = watch.check(tap.state);
          if (refusal instanceof Promise) refusal = await refusal;
          if (refusal) return cut(refusal);
        }
        continue;
      }
      // A watched stream is judged event by event, so a burst cannot run past the reservation.
      for (const piece of splitAfterEvents(chunk)) {
        const wait = send(res, tap.push(piece), opts.writeTimeoutMs);
        if (wait) await wait;
        if (opts.clientGone()) {
          if (!draining) return result({ kind: 'client_gone' });
          continue; // the rest of the chunk is observed, not checked: nothing more is delivered
        }
        let refusal = watch.check(tap.state);
        if (refusal instanceof Promise) refusal = await refusal;
        if (refusal) return cut(refusal);
      }
    }
  } catch (err) {
    if (opts.clientGone()) return result({ kind: 'client_gone' });
    tap.end(); // what arrived is observed; its trailing bytes are not sent after a failure
    const code = isTimeout(err) ? 'upstream_timeout' : 'upstream_error';
    const message = code === 'upstream_timeout' ? 'The upstream stopped sending in the middle of the stream.' : 'The upstream failed in the middle of the stream.';
    await write(res, [Buffer.from(formatSseError({ message, type: 'upstream_error', code }))], opts.writeTimeoutMs);
    res.end();
    return result({ kind: 'upstream_failed', code });
  }
  return finishStream(res, tap, opts, [], result);
}

/**
 * Upstream EOF: `pending` (bytes not yet sent) and the tap's tail go out with the end of the
 * response. A value, not a promise, unless the stream was cut (an async function returning it
 * would cost the caller's await extra turns of the microtask queue).
 */
function finishStream(
  res: ServerResponse,
  tap: SseTap,
  opts: RelayOptions,
  pending: readonly Uint8Array[],
  result: (end: StreamEnd) => StreamResult,
): StreamResult | Promise<StreamResult> {
  if (opts.clientGone()) return result({ kind: 'client_gone' });
  const last = tap.end();
  if (tap.state.truncated && !tap.state.done) return endCut(res, pending, result, opts.writeTimeoutMs);
  const out = pending.length === 0 ? last : last.length === 0 ? pending : [...pending, ...last];
  if (out.length > 0 && !res.destroyed) res.end(out.length === 1 ? out[0] : Buffer.concat(out));
  else res.end();
  return result({ kind: 'complete' });
}

/** EOF inside an event: the stream was cut, not finished; say so rather than end cleanly. */
async function endCut(res: ServerResponse, pending: readonly Uint8Array[], result: (end: StreamEnd) => StreamResult, timeoutMs: number): Promise<StreamResult> {
  await write(res, pending, timeoutMs);
  await write(res, [Buffer.from(formatSseError({ message: 'The upstream stream ended in the middle of an event.', type: 'upstream_error', code: 'upstream_error' }))], timeoutMs);
  res.end();
  return result({ kind: 'upstream_failed', code: 'upstream_error' });
}
