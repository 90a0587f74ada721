// The one place where the proxy turns a failure into an HTTP answer: OpenAI's error body
// `{"error":{"message","type","param","code"}}`, status from src/shared/errors.ts. Only a
// GatewayError's message is public; anything else becomes a generic 500 and its cause is logged.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { type ErrorCode, errorSpec, GatewayError, isGatewayError } from '../shared/errors.js';
import type { Denial } from '../shared/limits/types.js';
import { formatMicros, microsToUsdNumber } from '../shared/money.js';
import { rateLimitHeaders } from './rate-headers.js';

export interface PublicError {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string } & Record<string, unknown> };
  headers: Record<string, string>;
}

export function publicError(code: ErrorCode, message: string, opts: { param?: string | null; extra?: Record<string, unknown>; headers?: Record<string, string>; status?: number } = {}): PublicError {
  const spec = errorSpec(code);
  return {
    status: opts.status ?? spec.status,
    body: { error: { message, type: spec.type, param: opts.param ?? null, code, ...opts.extra } },
    headers: opts.headers ?? {},
  };
}

/** Maps anything thrown on the request path to what the client may see, logging internal causes. */
export function toPublicError(err: unknown, log: Logger): PublicError {
  if (isGatewayError(err)) {
    // A refusal because the store or the shared counters are out (a fail-closed org) is the
    // outage working as configured: the outage itself is logged when it starts, not per request.
    if (err.code === 'unavailable' || err.code === 'store_unavailable') log.debug({ err, cause: err.cause }, err.message);
    else if (err.status >= 500) log.warn({ err, cause: err.cause }, err.message);
    // A 503 (store or shared counters unreachable) is worth retrying soon: say when, as OpenAI's
    // SDKs and most HTTP clients honour Retry-After.
    const headers = err.status === 503 ? { 'retry-after': '1' } : undefined;
    return publicError(err.code, err.message, { param: err.param, extra: err.details, headers });
  }
  // JSON.parse takes any depth, but the code that serializes parts of a request again (the prompt
  // bound measures tool calls, tools and response formats as JSON text; the mock provider hashes
  // messages) recurses: a body nested 10,000 levels deep overflowed the stack. The request's
  // fault, so a 400, found where it happens rather than by scanning every body on the way in.
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    log.warn({ err }, 'request nested too deeply to process');
    return publicError('invalid_request', 'The request nests arrays or objects too deeply to process.');
  }
  log.error({ err }, 'unexpected error on the request path');
  return publicError('internal_error', 'The gateway failed to process the request.');
}

export function sendPublicError(res: ServerResponse, e: PublicError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(e.body);
  res.writeHead(e.status, {
    ...e.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, err: unknown, log: Logger): PublicError {
  const e = toPublicError(err, log);
  sendPublicError(res, e);
  return e;
}

export const gatewayError = (code: ErrorCode, message: string, param: string | null = null) => new GatewayError(code, message, { param });

/** A limit-engine refusal as the client sees it: the scope, limit, window and reset, in body and headers. */
/** `stream`: refused more room for a stream under way (not its admission). */
export function denialError(d: Denial, now: number, phase: 'admission' | 'stream' = 'admission'): PublicError {
  const c = d.counter;
  const scope = `${c.scopeType}:${c.scopeId}`;
  const money = c.metric === 'cost' || c.metric === 'credits';
  const fmt = (n: number) => (money ? `$${formatMicros(n)}` : `${n} ${c.metric}`);
  const resetsAt = d.resetsAt === null ? null : new Date(d.resetsAt).toISOString();
  // Refused with room left: the request's worst case (prompt bound + max_tokens) does not fit,
  // and "used" includes what requests in flight have reserved. Saying so avoids a puzzle.
  const short = d.used < c.max;
  // A request whose worst case exceeds the limit itself can never be admitted, whatever it waits.
  const neverFits = d.requested > c.max;
  const needs = !short
    ? ''
    : phase === 'stream'
      ? `; this stream needs ${fmt(d.requested)} more as it grows, more than is left, and requests in flight count until they finish`
      : neverFits
        ? `; this request reserves up to ${fmt(d.requested)} (its prompt bound plus max_tokens), more than the whole limit: it cannot be admitted as it is`
        : `; this request reserves up to ${fmt(d.requested)} (its prompt bound plus max_tokens), more than is left, and requests in flight count until they finish`;
  const what =
    c.metric === 'credits'
      ? `Credit balance of ${scope} is ${short ? 'too low' : 'exhausted'} (${fmt(Math.max(0, c.max - d.used))} left${needs})`
      : `${LIMIT_NAMES[d.code]} of ${scope} reached: ${fmt(d.used)} of ${fmt(c.max)} used in the ${c.window} window${c.model ? ` for model ${c.model}` : ''}${needs}`;
  const when = resetsAt ? `; resets at ${resetsAt}` : c.window === 'total' || c.metric === 'credits' ? '; it does not reset by itself' : '';
  const headers: Record<string, string> = {};
  const retryAfter = neverFits ? null : d.retryAfterSec;
  if (retryAfter !== null) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)));
  // The official SDKs retry a 429 twice by default, sleeping whatever Retry-After says (6.x has no
  // cap): a daily quota made a call hang until midnight, a lifetime cap was retried for nothing.
  // They never retry on x-should-retry: false, so it goes with every refusal a short wait will
  // not cure: no reset, a wait over a minute, or a request larger than the limit.
  if (retryAfter === null || retryAfter > MAX_RETRY_WAIT_SEC) headers['x-should-retry'] = 'false';
  if (c.metric === 'requests' || c.metric === 'tokens') {
    rateLimitHeaders([{ counter: c, used: d.used, remaining: Math.max(0, c.max - d.used), resetsAt: d.resetsAt }], now, headers);
  }
  const extra = {
    scope,
    metric: c.metric,
    window: c.window,
    model: c.model || null,
    limit: money ? microsToUsdNumber(c.max) : c.max,
    used: money ? microsToUsdNumber(d.used) : d.used,
    requested: money ? microsToUsdNumber(d.requested) : d.requested,
    resets_at: resetsAt,
    retry_after: retryAfter,
  };
  return publicError(d.code, `${what}${when}.`, { extra, headers });
}

/** Longest wait worth a client's automatic retry (the SDKs' own ceiling for a Retry-After is 60 s). */
const MAX_RETRY_WAIT_SEC = 60;

const LIMIT_NAMES: Record<Denial['code'], string> = {
  rate_limit_exceeded: 'Rate limit',
  quota_exceeded: 'Quota',
  budget_exceeded: 'Budget',
  insufficient_credits: 'Credit balance',
  request_cap_exceeded: 'Lifetime request cap',
};

const PASS_MESSAGE = new Set([400, 404, 409, 413, 422, 429]);

/**
 * An upstream's refusal in OpenAI's shape. Client-caused 4xx keep the upstream's message (it
 * describes the client's own request); 401/403 mean the gateway's upstream credentials are bad,
 * which is the operator's problem, so the client gets 502 (but a 403 for flagged or blocked
 * input stays a 403); anything else gets a generic text.
 */
export function upstreamError(status: number, body: Buffer | string, headers: Record<string, string | string[] | undefined>): PublicError {
  const parsed = parseErrorBody(body);
  // OpenRouter's 403 for input its moderation flagged or a guardrail blocked (protocols.md A.5)
  // is about the client's own request: passed on as a 403 with its message, not turned into a
  // 502 about credentials (which the SDK retried, sending the flagged prompt three times).
  if (status === 403 && contentBlock(parsed)) {
    return { status: 403, body: { error: { message: parsed.message!.slice(0, 1000), type: 'invalid_request_error', param: null, code: 'content_policy_violation' } }, headers: {} };
  }
  const out = status === 401 || status === 403 ? 502 : status >= 400 && status <= 599 ? status : 502;
  let message: string;
  if (PASS_MESSAGE.has(out) && parsed.message) message = parsed.message.slice(0, 1000);
  else if (out === 402) message = 'The upstream provider refused the request: its account lacks credits.';
  else if (status === 401 || status === 403) message = 'The upstream provider rejected the gateway\'s credentials.';
  else if (out === 502 && status < 400) message = 'The upstream answered with something that is not a completion.';
  else message = `The upstream provider failed (status ${status}).`;
  const type = out === 429 ? 'rate_limit_error' : out >= 500 || out === 402 ? 'upstream_error' : 'invalid_request_error';
  const code = typeof parsed.code === 'string' && /^[a-z_]{1,64}$/.test(parsed.code) ? parsed.code : 'upstream_error';
  const h: Record<string, string> = {};
  const retry = headers['retry-after'];
  if ((out === 429 || out === 503) && typeof retry === 'string' && /^\d{1,6}$/.test(retry)) h['retry-after'] = retry;
  return { status: out, body: { error: { message, type, param: parsed.param, code } }, headers: h };
}

interface ParsedError {
  message: string | null;
  code: unknown;
  param: string | null;
  metadata: Record<string, unknown> | null;
}

/** A moderation flag (metadata.reasons / flagged_input) or a guardrail block (metadata.patterns, "Request blocked: …"). */
function contentBlock(e: ParsedError): boolean {
  if (!e.message) return false;
  const m = e.metadata;
  return (m !== null && (Array.isArray(m.reasons) || typeof m.flagged_input === 'string' || Array.isArray(m.patterns))) || e.message.startsWith('Request blocked');
}

function parseErrorBody(body: Buffer | string): ParsedError {
  try {
    const json: unknown = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
    const e = typeof json === 'object' && json !== null ? (json as { error?: unknown }).error : undefined;
    if (typeof e === 'string') return { message: e, code: null, param: null, metadata: null };
    if (typeof e === 'object' && e !== null) {
      const r = e as Record<string, unknown>;
      const metadata = typeof r.metadata === 'object' && r.metadata !== null && !Array.isArray(r.metadata) ? (r.metadata as Record<string, unknown>) : null;
      return { message: typeof r.message === 'string' ? r.message : null, code: r.code, param: typeof r.param === 'string' ? r.param : null, metadata };
    }
  } catch {
    // not JSON: nothing to pass on
  }
  return { message: null, code: null, param: null, metadata: null };
}
