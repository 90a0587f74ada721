// A scriptable fake of OpenRouter (or any OpenAI-compatible upstream) for the proxy's end-to-end
// tests: a real node:http server on 127.0.0.1, port 0 (STYLE §14, after Envoy AI Gateway's
// testupstream). A test picks each reply programmatically — script(fn) for every request, or
// enqueue(...) for the next chat completions — because the gateway need not forward arbitrary
// headers; `x-fake-*` request headers are a second way in. Unscripted requests get a
// deterministic answer whose usage tests can compute with fakeUsage().
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  id: number;
  method: string;
  path: string; // without the query string
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: unknown; // parsed JSON, or undefined when the body is empty or not JSON
  receivedAt: number; // Date.now() once the body was read
  closedAt?: number;
  clientAborted: boolean; // the client went away before the response was complete
}

/** One SSE item: a data event (objects are JSON-encoded), a comment, or bytes sent verbatim. */
export type SseItem = ({ data: unknown } | { comment: string } | { raw: string }) & { delayMs?: number };

interface ReplyBase {
  headers?: Record<string, string>;
  headerDelayMs?: number; // wait before the status line, to trip the gateway's header timeout
}

export type FakeReply =
  | (ReplyBase & { type: 'json'; status?: number; body: unknown })
  | (ReplyBase & { type: 'error'; status: number; message?: string; metadata?: Record<string, unknown> })
  | (ReplyBase & { type: 'raw'; status?: number; body: string | Buffer; contentType?: string })
  | (ReplyBase & { type: 'sse'; items: SseItem[]; done?: boolean; resetAfter?: number; chunkDelayMs?: number })
  | (ReplyBase & { type: 'reset' }) // destroy the socket without answering
  | { type: 'hang' } // never answer; ends when the client gives up or the fake closes
  | (ReplyBase & { type: 'default' } & DefaultTweaks);

/** Variations of the deterministic answer. */
export interface DefaultTweaks {
  usage?: 'empty-choices' | 'with-choices' | 'none'; // where a stream carries usage (A.4 shows both)
  cost?: boolean; // include usage.cost (default true)
  keepAlives?: boolean; // `: OPENROUTER PROCESSING` before the first chunk and between chunks
  done?: boolean; // end with [DONE] (default true)
  resetAfter?: number; // destroy the socket after this many SSE items
  chunkDelayMs?: number;
}

/** A reply the server can send as is ('default' is resolved against its request first). */
type ConcreteReply = Exclude<FakeReply, { type: 'default' }>;

export type FakeHandler = (req: FakeRequest) => FakeReply | undefined | Promise<FakeReply | undefined>;

/** Price of the default answer, in integer micro-dollars per token so costs are exact decimals. */
export interface FakePrice {
  promptMicros: number;
  completionMicros: number;
}

export interface FakeUpstreamOptions {
  prefix?: string; // default '/api/v1'
  price?: FakePrice; // default 1 and 2 micro-dollars per prompt and completion token
  models?: Array<Record<string, unknown>>; // GET /models catalog entries
}

export const FAKE_WORDS = ['The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog', 'today'];
export const KEEP_ALIVE: SseItem = { comment: ' OPENROUTER PROCESSING' };
const DEFAULT_PRICE: FakePrice = { promptMicros: 1, completionMicros: 2 };

interface ChatBody {
  model: string;
  messages: Array<{ content?: unknown }>;
  stream: boolean;
  limit: number | null;
}

function readChatBody(body: unknown): ChatBody {
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const caps = [b.max_tokens, b.max_completion_tokens].filter((v): v is number => typeof v === 'number');
  return {
    model: typeof b.model === 'string' ? b.model : 'openrouter/auto',
    messages: Array.isArray(b.messages) ? (b.messages as Array<{ content?: unknown }>) : [],
    stream: b.stream === true,
    limit: caps.length > 0 ? Math.max(0, Math.min(...caps)) : null,
  };
}

/** Words of a message: a string, or the text parts of OpenAI content parts. */
function wordCount(content: unknown): number {
  const parts: unknown[] = Array.isArray(content) ? content : [{ text: content }];
  const text = parts.map((p) => (typeof p === 'object' && p !== null && 'text' in p && typeof p.text === 'string' ? p.text : '')).join(' ');
  return text.split(/\s+/).filter(Boolean).length;
}

/**
 * The default answer's usage, for tests to compute expectations: prompt = Σ (5 + words of the
 * message); completion = min(max_tokens ?? ∞, max_completion_tokens ?? ∞, 10), one per word.
 */
export function fakeUsage(body: unknown, price: FakePrice = DEFAULT_PRICE) {
  const chat = readChatBody(body);
  const prompt = chat.messages.reduce((sum, m) => sum + 5 + wordCount(m.content), 0);
  const completion = Math.min(chat.limit ?? FAKE_WORDS.length, FAKE_WORDS.length);
  const costMicros = prompt * price.promptMicros + completion * price.completionMicros;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, cost: costMicros / 1e6, costMicros };
}

/** OpenRouter's error envelope (A.5): message before code, and code equal to the HTTP status. */
export function openRouterError(status: number, message = 'Provider returned error', metadata?: Record<string, unknown>) {
  return { error: { message, code: status, ...(metadata ? { metadata } : {}) }, user_id: 'user_fake' };
}

/** OpenRouter's mid-stream error event (A.4): error at the top level and a choice finishing with "error". */
export function midStreamError(code: number | string, message: string, errorType = 'server'): SseItem {
  return {
    data: {
      id: 'gen-fake-error', object: 'chat.completion.chunk', created: 1769532074, model: 'fake/model', provider: 'Fake',
      error: { code, message, metadata: { error_type: errorType } },
      choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error', native_finish_reason: 'error' }],
    },
  };
}

/** An OpenRouter /models entry (A.6) with the required fields filled in. */
export function openRouterModel(id: string, prompt = '0.000001', completion = '0.000002', contextLength = 128_000) {
  return {
    id, canonical_slug: id, hugging_face_id: null, name: `Fake: ${id}`, created: 1715367049, description: 'Fake model',
    context_length: contextLength,
    architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'GPT', instruct_type: null },
    pricing: { prompt, completion, request: '0', image: '0', web_search: '0', internal_reasoning: '0' },
    top_provider: { context_length: contextLength, max_completion_tokens: 16384, is_moderated: false },
    per_request_limits: null, supported_parameters: ['max_tokens', 'temperature', 'stop'], default_parameters: null,
    supported_voices: null, knowledge_cutoff: null, expiration_date: null, links: { details: `/api/v1/models/${id}/endpoints` },
  };
}

function defaultModels() {
  return [
    openRouterModel('openai/gpt-4o-mini', '0.00000015', '0.0000006'),
    openRouterModel('anthropic/claude-3.5-sonnet', '0.000003', '0.000015', 200_000),
    openRouterModel('meta-llama/llama-3.1-8b-instruct', '0.00000002', '0.00000005', 131_072),
  ];
}

/** The deterministic answer for a chat body, as JSON or as an OpenRouter-like SSE stream. */
export function defaultReply(body: unknown, tweaks: DefaultTweaks = {}, price: FakePrice = DEFAULT_PRICE): Extract<FakeReply, { type: 'json' | 'sse' }> {
  const chat = readChatBody(body);
  const { costMicros, ...counts } = fakeUsage(body, price);
  const usage = { ...counts, ...(tweaks.cost === false ? { cost: undefined } : {}), is_byok: false };
  const words = FAKE_WORDS.slice(0, counts.completion_tokens);
  const finish = words.length < FAKE_WORDS.length ? 'length' : 'stop';
  const head = { id: `gen-fake-${counts.prompt_tokens}-${counts.completion_tokens}`, provider: 'Fake', model: chat.model, created: 1769532074 };
  if (!chat.stream) {
    const message = { role: 'assistant', content: words.join(' '), refusal: null, reasoning: null };
    const choice = { index: 0, logprobs: null, finish_reason: finish, native_finish_reason: finish, message };
    return { type: 'json', body: { ...head, object: 'chat.completion', choices: [choice], usage } };
  }
  const chunk = (delta: object, finishReason: string | null, extra: object = {}) => ({
    data: { ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finishReason, native_finish_reason: finishReason, logprobs: null }], ...extra },
  });
  const items: SseItem[] = [
    chunk({ role: 'assistant', content: '' }, null),
    ...words.map((w, i) => chunk({ role: 'assistant', content: i === 0 ? w : ` ${w}` }, null)),
  ];
  const placement = tweaks.usage ?? 'empty-choices';
  items.push(chunk({ role: 'assistant', content: '' }, finish, placement === 'with-choices' ? { usage } : {}));
  if (placement === 'empty-choices') items.push({ data: { ...head, object: 'chat.completion.chunk', choices: [], usage } });
  return { type: 'sse', items: tweaks.keepAlives ? withKeepAlives(items) : items, done: tweaks.done, resetAfter: tweaks.resetAfter, chunkDelayMs: tweaks.chunkDelayMs };
}

function withKeepAlives(items: SseItem[]): SseItem[] {
  return [KEEP_ALIVE, ...items.flatMap((item, i) => (i === 0 ? [item] : [KEEP_ALIVE, item]))];
}

/** `x-fake-*` headers, for callers that can only steer the fake through the request itself. */
function replyFromHeaders(req: FakeRequest, price: FakePrice): ConcreteReply | undefined {
  const h = (name: string) => {
    const v = req.headers[`x-fake-${name}`];
    return typeof v === 'string' ? v : undefined;
  };
  const num = (name: string) => (h(name) === undefined ? undefined : Number(h(name)));
  if (!Object.keys(req.headers).some((k) => k.startsWith('x-fake-'))) return undefined;
  const base = { headerDelayMs: num('header-delay-ms') };
  if (h('status')) return { ...base, type: 'error', status: Number(h('status')), message: h('message') };
  if (h('garbage')) return { ...base, type: 'raw', body: '<html>502 Bad Gateway</html>', contentType: 'application/json' };
  const usage = h('usage') as DefaultTweaks['usage'];
  const tweaks: DefaultTweaks = { usage, keepAlives: h('keepalive') === '1', done: h('no-done') !== '1', resetAfter: num('reset-after'), chunkDelayMs: num('chunk-delay-ms') };
  return { ...base, ...defaultReply(req.body, tweaks, price) };
}

function formatItem(item: SseItem): string {
  if ('comment' in item) return `:${item.comment}\n\n`;
  if ('raw' in item) return item.raw;
  return `data: ${typeof item.data === 'string' ? item.data : JSON.stringify(item.data)}\n\n`;
}

/** Resolves true after ms, false as soon as the signal aborts (client gone or fake closing). */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort);
  });
}

function write(res: ServerResponse, text: string): Promise<void> {
  return new Promise((resolve) => res.write(text, () => resolve()));
}

export class FakeUpstream {
  readonly requests: FakeRequest[] = [];
  inFlight = 0;
  maxConcurrent = 0;
  models: Array<Record<string, unknown>>;
  readonly price: FakePrice;
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly prefix: string;
  private readonly queue: Array<FakeReply | FakeHandler> = [];
  private handler: FakeHandler | null = null;
  private readonly live = new Set<AbortController>();
  private waiters: Array<() => void> = [];
  private port = 0;

  private constructor(options: FakeUpstreamOptions) {
    this.prefix = options.prefix ?? '/api/v1';
    this.price = options.price ?? DEFAULT_PRICE;
    this.models = options.models ?? defaultModels();
    this.server.keepAliveTimeout = 30_000;
  }

  static async start(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
    const fake = new FakeUpstream(options);
    await new Promise<void>((resolve) => fake.server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}${this.prefix}`;
  }

  /** Decides every request first; return undefined to fall through to headers, queue, default. */
  script(handler: FakeHandler | null): void {
    this.handler = handler;
  }

  /** Replies for the next chat completions, in order. */
  enqueue(...steps: Array<FakeReply | FakeHandler>): void {
    this.queue.push(...steps);
  }

  /** Forgets requests, script, queue and the concurrency high-water mark. */
  reset(): void {
    this.requests.length = 0;
    this.queue.length = 0;
    this.handler = null;
    this.maxConcurrent = this.inFlight;
  }

  async waitForRequests(count: number, timeoutMs = 5_000): Promise<FakeRequest[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < count) {
      if (Date.now() > deadline) throw new Error(`fake upstream saw ${this.requests.length} of ${count} requests`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.requests.slice(0, count);
  }

  async close(): Promise<void> {
    for (const c of this.live) c.abort();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.maxConcurrent = Math.max(this.maxConcurrent, ++this.inFlight);
    const abort = new AbortController();
    this.live.add(abort);
    let record: FakeRequest | undefined;
    let selfDestroyed = false;
    res.on('close', () => {
      this.inFlight--;
      this.live.delete(abort);
      abort.abort();
      if (record) Object.assign(record, { closedAt: Date.now(), clientAborted: !res.writableFinished && !selfDestroyed });
    });
    try {
      record = await this.record(req);
      const reply = await this.choose(record);
      selfDestroyed = reply.type === 'reset' || (reply.type === 'sse' && reply.resetAfter !== undefined);
      await this.send(res, reply, abort.signal);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(openRouterError(500, `fake upstream: ${String(err)}`)));
    }
  }

  private async record(req: IncomingMessage): Promise<FakeRequest> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      body = undefined;
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    const record: FakeRequest = {
      id: this.requests.length + 1, method: req.method ?? 'GET', path: url.pathname, query: url.searchParams,
      headers: req.headers, rawBody, body, receivedAt: Date.now(), clientAborted: false,
    };
    this.requests.push(record);
    for (const wake of this.waiters.splice(0)) wake();
    return record;
  }

  private async choose(req: FakeRequest): Promise<ConcreteReply> {
    const reply = await this.pick(req);
    if (reply.type !== 'default') return reply;
    return { ...defaultReply(req.body, reply, this.price), headers: reply.headers, headerDelayMs: reply.headerDelayMs };
  }

  private async pick(req: FakeRequest): Promise<FakeReply> {
    const scripted = await this.handler?.(req);
    if (scripted) return scripted;
    if (req.method === 'GET' && req.path === `${this.prefix}/models`) {
      return { type: 'json', body: { data: this.models, total_count: this.models.length, links: { next: null } } };
    }
    if (req.method !== 'POST' || req.path !== `${this.prefix}/chat/completions`) {
      return { type: 'error', status: 404, message: `Not found: ${req.method} ${req.path}` };
    }
    const fromHeaders = replyFromHeaders(req, this.price);
    if (fromHeaders) return fromHeaders;
    const step = this.queue.shift();
    const queued = typeof step === 'function' ? await step(req) : step;
    return queued ?? defaultReply(req.body, {}, this.price);
  }

  private async send(res: ServerResponse, reply: ConcreteReply, signal: AbortSignal): Promise<void> {
    if (reply.type === 'hang') return void (await pause(2 ** 31 - 1, signal));
    if (reply.headerDelayMs && !(await pause(reply.headerDelayMs, signal))) return;
    const headers = { 'x-generation-id': 'gen-fake', ...reply.headers };
    switch (reply.type) {
      case 'reset':
        res.socket?.destroy();
        return;
      case 'json':
      case 'error': {
        const body = reply.type === 'json' ? reply.body : openRouterError(reply.status, reply.message, reply.metadata);
        res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
        return;
      }
      case 'raw':
        res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'text/plain', ...headers });
        res.end(reply.body);
        return;
      case 'sse':
        return this.stream(res, reply, headers, signal);
    }
  }

  private async stream(res: ServerResponse, reply: Extract<FakeReply, { type: 'sse' }>, headers: Record<string, string>, signal: AbortSignal) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers });
    res.flushHeaders();
    for (const [i, item] of reply.items.entries()) {
      if (i === reply.resetAfter) return void res.socket?.destroy();
      const delay = item.delayMs ?? (i > 0 ? reply.chunkDelayMs : undefined);
      if (delay && !(await pause(delay, signal))) return;
      if (signal.aborted) return;
      await write(res, formatItem(item));
    }
    if (reply.resetAfter !== undefined && reply.resetAfter >= reply.items.length) return void res.socket?.destroy();
    res.end(reply.done === false ? undefined : 'data: [DONE]\n\n');
  }
}

export const startFakeUpstream = (options?: FakeUpstreamOptions) => FakeUpstream.start(options);
