// A small client for the gateway's OpenAI-compatible API, on undici rather than the openai SDK:
// the chat command needs the raw response headers (x-ratelimit-*, Retry-After) and the
// gateway's own fields (gateway_usage, GET /v1/usage), which the SDK hides or drops.
import { Agent, errors as undiciErrors, request } from 'undici';
import { GatewayError } from '../../shared/errors.js';
import { proxyError } from './proxy-errors.js';
import { type ChatReply, header, isRecord, parseCompletion, parseUsageReport, type RateLimitInfo, rateLimitFrom, type UsageReport } from './replies.js';
import { readSse } from './sse.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: readonly ChatMessage[];
  maxTokens?: number;
}

export interface StreamHooks {
  /** Called with each piece of text as it arrives. */
  onDelta: (text: string) => void;
  /** Aborting ends this answer (what arrived so far is returned, marked interrupted). */
  signal?: AbortSignal;
}

export interface ClientOptions {
  url: string;
  apiKey: string;
  /** Connect and first-byte timeout, ms. */
  timeoutMs?: number;
}

type Headers = Record<string, string | string[] | undefined>;

export class GatewayClient {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly agent: Agent;

  constructor(opts: ClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.url);
    this.apiKey = opts.apiKey;
    const timeout = opts.timeoutMs ?? 60_000;
    this.agent = new Agent({ connectTimeout: Math.min(timeout, 10_000), headersTimeout: timeout, bodyTimeout: timeout });
  }

  /** The models this key may use, in the gateway's order. */
  async listModels(): Promise<string[]> {
    const body = await this.getJson('/models');
    const data = isRecord(body) && Array.isArray(body.data) ? body.data : [];
    return data.flatMap((m: unknown) => (isRecord(m) && typeof m.id === 'string' ? [m.id] : []));
  }

  /** This key's usage and what is left of its limits and credits. */
  async usage(requestId?: string | null): Promise<UsageReport> {
    return parseUsageReport(await this.getJson(requestId ? `/usage?request_id=${encodeURIComponent(requestId)}` : '/usage'));
  }

  /**
   * After a streamed answer: what it cost and what is left. The gateway may settle a stream a
   * moment after the last byte, so an unknown request id falls back to the key's totals.
   */
  async usageAfter(reply: ChatReply): Promise<UsageReport | null> {
    if (reply.requestId) {
      const report = await this.usage(reply.requestId).catch(() => null);
      if (report) return report;
    }
    return this.usage().catch(() => null);
  }

  async complete(req: ChatRequest): Promise<ChatReply> {
    const res = await this.send('POST', '/chat/completions', body(req, false));
    const json = await readJson(res.body, res.headers);
    if (res.statusCode >= 400) throw proxyError(res.statusCode, json, res.headers);
    return { ...parseCompletion(json, req.model), rateLimit: rateLimitFrom(res.headers), requestId: header(res.headers, 'x-request-id'), interrupted: false };
  }

  async stream(req: ChatRequest, hooks: StreamHooks): Promise<ChatReply> {
    const reply: ChatReply = { content: '', model: req.model, finishReason: null, usage: null, gatewayUsage: null, rateLimit: rateLimitFrom({}), requestId: null, interrupted: false };
    let res: Awaited<ReturnType<GatewayClient['send']>>;
    try {
      res = await this.send('POST', '/chat/completions', body(req, true), hooks.signal);
    } catch (err) {
      // Stopped before the first byte: an empty, interrupted answer, not a failure.
      if (hooks.signal?.aborted) return { ...reply, interrupted: true };
      throw err;
    }
    if (res.statusCode >= 400) throw proxyError(res.statusCode, await readJson(res.body, res.headers), res.headers);
    reply.rateLimit = rateLimitFrom(res.headers);
    reply.requestId = header(res.headers, 'x-request-id');
    try {
      for await (const event of readSse(res.body)) {
        if (event.error) throw proxyError(502, { error: event.error }, {}, 'the answer broke off');
        if (event.model) reply.model = event.model;
        if (event.delta) {
          reply.content += event.delta;
          hooks.onDelta(event.delta);
        }
        if (event.finishReason) reply.finishReason = event.finishReason;
        if (event.usage) reply.usage = event.usage;
        if (event.gatewayUsage) reply.gatewayUsage = event.gatewayUsage;
      }
    } catch (err) {
      if (!hooks.signal?.aborted) throw err instanceof GatewayError ? err : connectionError(this.baseUrl, err);
      reply.interrupted = true;
    } finally {
      // Whatever follows [DONE] must be read, or the connection stays busy and close() waits.
      await res.body.dump().catch(() => {});
    }
    return reply;
  }

  /** Drops every connection at once: nothing is in flight when chat ends, so nothing is lost. */
  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private async getJson(path: string): Promise<unknown> {
    const res = await this.send('GET', path);
    const json = await readJson(res.body, res.headers);
    if (res.statusCode >= 400) throw proxyError(res.statusCode, json, res.headers);
    return json;
  }

  private async send(method: 'GET' | 'POST', path: string, payload?: string, signal?: AbortSignal) {
    try {
      return await request(`${this.baseUrl}${path}`, {
        method,
        dispatcher: this.agent,
        headers: { authorization: `Bearer ${this.apiKey}`, ...(payload ? { 'content-type': 'application/json' } : {}), accept: 'application/json, text/event-stream' },
        body: payload,
        signal,
      });
    } catch (err) {
      throw connectionError(this.baseUrl, err);
    }
  }
}

/** Accepts http://host:port, …/v1 or …/v1/ and returns the …/v1 base. */
export function normalizeBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GatewayError('usage_error', `invalid gateway URL '${url}': use http://HOST:PORT`, { param: 'url' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new GatewayError('usage_error', `gateway URL must be http(s): '${url}'`, { param: 'url' });
  }
  const base = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  return base.endsWith('/v1') ? base : `${base}/v1`;
}

function body(req: ChatRequest, stream: boolean): string {
  return JSON.stringify({
    model: req.model,
    messages: req.messages,
    ...(req.maxTokens ? { max_tokens: req.maxTokens } : {}),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
}

async function readJson(stream: AsyncIterable<unknown> & { text(): Promise<string> }, headers: Headers): Promise<unknown> {
  const text = await stream.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    const type = String(headers['content-type'] ?? 'unknown');
    return { error: { message: `the gateway answered with ${type} that is not JSON: ${text.slice(0, 120)}` } };
  }
}

function connectionError(baseUrl: string, err: unknown): GatewayError {
  const code = isRecord(err) && typeof err.code === 'string' ? err.code : '';
  const origin = new URL(baseUrl).origin;
  if (code === 'ECONNREFUSED') {
    return new GatewayError('unavailable', `Nothing is listening at ${origin}. Start the gateway (for example 'gatewayctl demo --serve') or pass --url.`, { cause: err });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new GatewayError('unavailable', `Cannot resolve the host of ${origin}. Check --url or GATEWAY_URL.`, { cause: err });
  }
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new GatewayError('upstream_timeout', `The gateway at ${origin} did not answer in time.`, { cause: err });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new GatewayError('unavailable', `The connection to the gateway at ${origin} failed: ${reason}.`, { cause: err });
}

export type { ChatReply, RateLimitInfo, UsageReport };
