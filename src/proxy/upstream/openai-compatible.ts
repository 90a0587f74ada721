// OpenRouter, OpenAI and any OpenAI-compatible server: the client's body goes upstream as it
// came (only a stream that would carry no usage is asked for one), over the origin's Pool.
import { errors } from 'undici';
import { GatewayError } from '../../shared/errors.js';
import type { SnapshotOrg } from '../../shared/snapshot/types.js';
import type { PoolRegistry } from './pools.js';
import type { UpstreamAdapter, UpstreamCall, UpstreamResponse, UpstreamWhole } from './types.js';
import { requestStream } from './stream-response.js';
import { requestWhole } from './whole-response.js';

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

function headersFor(org: SnapshotOrg, stream: boolean): Record<string, string> {
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
  return JSON.stringify({ ...call.parsed, stream_options: { ...call.parsed.stream_options, include_usage: true } });
}

const INCLUDE_USAGE = Buffer.from('"stream_options":{"include_usage":true},');

/** Maps undici's failures: timeouts → 504, connection trouble → 502; a client abort is rethrown. */
export function mapUpstreamFailure(err: unknown): Error {
  if (err instanceof errors.RequestAbortedError || (err instanceof Error && err.name === 'AbortError')) return err;
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError || err instanceof errors.ConnectTimeoutError) {
    return new GatewayError('upstream_timeout', 'The upstream did not answer in time.', { cause: err });
  }
  return new GatewayError('upstream_error', 'The upstream could not be reached.', { cause: err });
}

export function createOpenAICompatibleAdapter(pools: PoolRegistry, provider: string): UpstreamAdapter {
  const targets = new Map<string, Target>();
  return {
    provider,
    // Plain functions returning the request's own promise, failures mapped inside it: an async
    // wrapper with try/await/catch cost a promise and a microtask turn per request.
    chat(call): Promise<UpstreamResponse> {
      try {
        const t = target(call.org, targets);
        const opts = { method: 'POST' as const, path: t.path, headers: headersFor(call.org, call.stream), body: bodyFor(call) };
        return requestStream(pools.get(t.origin), opts, call.signal, mapUpstreamFailure);
      } catch (err) {
        return Promise.reject(err instanceof GatewayError ? err : mapUpstreamFailure(err));
      }
    },
    chatWhole(call): Promise<UpstreamWhole> {
      try {
        const t = target(call.org, targets);
        const opts = { method: 'POST' as const, path: t.path, headers: headersFor(call.org, false), body: bodyFor(call) };
        return requestWhole(pools.get(t.origin), opts, call.signal, mapUpstreamFailure);
      } catch (err) {
        return Promise.reject(err instanceof GatewayError ? err : mapUpstreamFailure(err));
      }
    },
  };
}
