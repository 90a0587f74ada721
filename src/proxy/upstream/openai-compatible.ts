// OpenRouter, OpenAI and any OpenAI-compatible server: the client's body goes upstream as it
// came (only a stream that would carry no usage is asked for one), over the origin's Pool.
import { type Dispatcher, errors, type Pool } from 'undici';
import type { ClientAbort } from '../client-abort.js';
import { GatewayError } from '../../shared/errors.js';
import { chatRequestSchema } from '../chat-request.js';
import type { SnapshotOrg } from '../../shared/snapshot/types.js';
import type { PoolRegistry } from './pools.js';
import type { UpstreamAdapter, UpstreamCall } from './types.js';
import { requestStream } from './stream-response.js';
import { requestWhole } from './whole-response.js';
import { withIncludeUsage } from './json-splice.js';

const OPENROUTER_BASE = 'https://openrouter.ai/api/v1';

interface Target {
  origin: string;
  path: string;
}

function target(org: SnapshotOrg, cache: Map<string, Target>): Target {
  const base = org.baseUrl ?? (org.provider === 'openrouter' ? OPENROUTER_BASE : null);
  if (!base) throw new GatewayError('upstream_error', 'The upstream of this organization is not configured.');
  let t = cache.get(base);
  if (!t) {
    const url = new URL(base);
    t = { origin: url.origin, path: `${url.pathname.replace(/\/+$/, '')}/chat/completions` };
    cache.set(base, t);
  }
  return t;
}

// Per org object of the snapshot (read-only; a reload makes new ones), for JSON and for streams:
// undici copies what it needs out of the object, so one serves every request.
const headerCache = new WeakMap<SnapshotOrg, [Record<string, string> | undefined, Record<string, string> | undefined]>();

function headersFor(org: SnapshotOrg, stream: boolean): Record<string, string> {
  let cached = headerCache.get(org);
  if (!cached) {
    cached = [undefined, undefined];
    headerCache.set(org, cached);
  }
  const i = stream ? 1 : 0;
  cached[i] ??= buildHeaders(org, stream);
  return cached[i]!;
}

function buildHeaders(org: SnapshotOrg, stream: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
  };
  if (org.upstreamKey) h.authorization = `Bearer ${org.upstreamKey}`;
  if (org.provider === 'openrouter') {
    if (org.httpReferer) h['http-referer'] = org.httpReferer;
    if (org.appTitle) h['x-title'] = org.appTitle;
  }
  return h;
}

/**
 * OpenRouter always streams usage; OpenAI-style servers only when asked. Billing needs it, so
 * the gateway asks on the client's behalf (and strips it again for a client that did not).
 */
function bodyFor(call: UpstreamCall): Buffer | string {
  if (!call.stream || call.org.provider === 'openrouter' || call.parsed.stream_options?.include_usage === true) return call.raw;
  // Without any stream_options the member is spliced in after the opening brace, so a large
  // prompt is not serialized again (the body is a JSON object with at least model and messages).
  const open = call.parsed.stream_options === undefined ? call.raw.indexOf(0x7b) : -1;
  if (open !== -1) return Buffer.concat([call.raw.subarray(0, open + 1), INCLUDE_USAGE, call.raw.subarray(open + 1)]);
  // With stream_options (null, or without include_usage: true), that member alone is edited in
  // the body's bytes: re-serializing cost an int64 seed its last digits.
  const edited = withIncludeUsage(call.raw);
  if (edited) return edited;
  // Not editable in place (a repeated key, say): re-serialized in the schema's shape (its key order, no own __proto__ keys), as before the
  // hot path stopped copying the body through zod.
  const parsed = chatRequestSchema.parse(call.parsed);
  return JSON.stringify({ ...parsed, stream_options: { ...parsed.stream_options, include_usage: true } });
}

const INCLUDE_USAGE = Buffer.from('"stream_options":{"include_usage":true},');

/**
 * Maps undici's failures: timeouts → 504, connection trouble → 502; a client abort is rethrown,
 * and so is a GatewayError (no free connection in time: 503, see queue-wait.ts).
 */
export function mapUpstreamFailure(err: unknown): Error {
  if (err instanceof errors.RequestAbortedError || (err instanceof Error && err.name === 'AbortError') || err instanceof GatewayError) return err;
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError || err instanceof errors.ConnectTimeoutError) {
    return new GatewayError('upstream_timeout', 'The upstream did not answer in time.', { cause: err });
  }
  return new GatewayError('upstream_error', 'The upstream could not be reached.', { cause: err });
}

type Requester<T> = (dispatcher: Pool, opts: Dispatcher.DispatchOptions, signal: ClientAbort, mapError: (err: Error) => Error, queueMs: number) => Promise<T>;

export function createOpenAICompatibleAdapter(pools: PoolRegistry, provider: string): UpstreamAdapter {
  const targets = new Map<string, Target>();
  /** An unconfigured upstream is the org's problem and says so; what fails after that is the upstream's. */
  function send<T>(call: UpstreamCall, stream: boolean, request: Requester<T>): Promise<T> {
    let t: Target;
    try {
      t = target(call.org, targets);
    } catch (err) {
      return Promise.reject(err);
    }
    try {
      const opts = { method: 'POST' as const, path: t.path, headers: headersFor(call.org, stream && call.stream), body: bodyFor(call) };
      return request(pools.get(t.origin), opts, call.signal, mapUpstreamFailure, pools.queueMs);
    } catch (err) {
      return Promise.reject(mapUpstreamFailure(err));
    }
  }
  return {
    provider,
    // Plain functions returning the request's own promise, failures mapped inside it: an async
    // wrapper with try/await/catch cost a promise and a microtask turn per request.
    chat: (call) => send(call, true, requestStream),
    chatWhole: (call) => send(call, false, requestWhole),
  };
}
