import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  FAKE_WORDS,
  type FakeRequest,
  type FakeUpstream,
  fakeUsage,
  KEEP_ALIVE,
  midStreamError,
  openRouterModel,
  startFakeUpstream,
} from './upstream.js';

let fake: FakeUpstream;
let client: OpenAI;
const messages = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'hello there world' },
];
const chatBody = (extra: Record<string, unknown> = {}) => ({ model: 'openai/gpt-4o-mini', messages, ...extra });

function post(body: unknown, headers: Record<string, string> = {}, opts: { headersTimeout?: number } = {}) {
  return request(`${fake.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-or-v1-test', ...headers },
    body: JSON.stringify(body),
    ...opts,
  });
}

async function streamText(extra: Record<string, unknown> = {}): Promise<{ text: string; chunks: OpenAI.ChatCompletionChunk[] }> {
  const stream = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages, stream: true, ...extra });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return { text: chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), chunks };
}

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  fake = await startFakeUpstream();
  client = new OpenAI({ apiKey: 'sk-or-v1-test', baseURL: fake.url, maxRetries: 0 });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

describe('default answers', () => {
  it('answers JSON with OpenRouter usage (cost included) that fakeUsage predicts', async () => {
    const res = await client.chat.completions.create(chatBody());
    const expected = fakeUsage(chatBody());
    expect(expected).toMatchObject({ prompt_tokens: 5 + 2 + 5 + 3, completion_tokens: 10, cost: 0.000035, costMicros: 35 });
    expect(res.choices[0]?.message.content).toBe(FAKE_WORDS.join(' '));
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(res.usage).toMatchObject({ prompt_tokens: 15, completion_tokens: 10, total_tokens: 25, cost: 0.000035 });
  });

  it('counts prompt words in text content parts and honours max_completion_tokens', () => {
    const body = { messages: [{ role: 'user', content: [{ type: 'text', text: 'a b' }, { type: 'image_url', image_url: { url: 'x' } }] }], max_completion_tokens: 2 };
    expect(fakeUsage(body)).toMatchObject({ prompt_tokens: 7, completion_tokens: 2, total_tokens: 9, costMicros: 11 });
  });

  it('records method, path, headers, parsed body and time received', async () => {
    const before = Date.now();
    await post(chatBody({ max_tokens: 3 }), { 'http-referer': 'https://app.example' }).then((r) => r.body.text());
    const [req] = fake.requests as [FakeRequest];
    expect(req).toMatchObject({ method: 'POST', path: '/api/v1/chat/completions', body: chatBody({ max_tokens: 3 }), clientAborted: false });
    expect(req.headers.authorization).toBe('Bearer sk-or-v1-test');
    expect(req.headers['http-referer']).toBe('https://app.example');
    expect(req.receivedAt).toBeGreaterThanOrEqual(before);
  });

  it('caps completion tokens at max_tokens and finishes with length', async () => {
    const res = await client.chat.completions.create(chatBody({ max_tokens: 4 }));
    expect(res.usage?.completion_tokens).toBe(4);
    expect(res.choices[0]?.message.content).toBe('The quick brown fox');
    expect(res.choices[0]?.finish_reason).toBe('length');
  });

  it('streams word deltas and an empty-choices usage chunk the openai SDK reads', async () => {
    const { text, chunks } = await streamText({ stream_options: { include_usage: true } });
    expect(text).toBe(FAKE_WORDS.join(' '));
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ prompt_tokens: 15, completion_tokens: 10, total_tokens: 25 });
  });

  it('serves an OpenRouter-shaped /models catalog, replaceable by the test', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toContain('openai/gpt-4o-mini');
    fake.models = [openRouterModel('x/only', '0.5', '1')];
    const res = await request(`${fake.url}/models`);
    const body = (await res.body.json()) as { data: Array<{ id: string; pricing: { prompt: string } }> };
    expect(body.data).toEqual([expect.objectContaining({ id: 'x/only', pricing: expect.objectContaining({ prompt: '0.5' }) })]);
  });

  it('answers unknown routes with a 404 OpenRouter error', async () => {
    const res = await request(`${fake.url}/nope`);
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ error: { code: 404 } });
  });
});

describe('scripted streams', () => {
  it('sends keep-alive comments that the SDK skips', async () => {
    fake.enqueue({ type: 'default', keepAlives: true });
    const raw = await (await post(chatBody({ stream: true }))).body.text();
    expect(raw.startsWith(': OPENROUTER PROCESSING\n\n')).toBe(true);
    expect(raw.match(/: OPENROUTER PROCESSING\n\n/g)?.length).toBeGreaterThan(5);
    fake.enqueue({ type: 'default', keepAlives: true });
    expect((await streamText()).text).toBe(FAKE_WORDS.join(' '));
  });

  it('puts usage on a chunk with non-empty choices, or omits it', async () => {
    fake.enqueue({ type: 'default', usage: 'with-choices' }, { type: 'default', usage: 'none' });
    const withChoices = (await streamText()).chunks.filter((c) => c.usage);
    expect(withChoices).toHaveLength(1);
    expect(withChoices[0]?.choices).toHaveLength(1);
    expect((await streamText()).chunks.some((c) => c.usage)).toBe(false);
  });

  it('ends a stream without [DONE] when told to', async () => {
    fake.enqueue({ type: 'default', done: false });
    const raw = await (await post(chatBody({ stream: true }))).body.text();
    expect(raw).not.toContain('[DONE]');
    expect(raw).toContain('"usage"');
  });

  it('sends given chunks with per-chunk delays', async () => {
    fake.enqueue({ type: 'sse', items: [KEEP_ALIVE, { data: { choices: [] }, delayMs: 80 }, { raw: 'data: {"choices":[]}\n\n', delayMs: 80 }] });
    const started = Date.now();
    const raw = await (await post(chatBody({ stream: true }))).body.text();
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(raw).toBe(': OPENROUTER PROCESSING\n\ndata: {"choices":[]}\n\ndata: {"choices":[]}\n\ndata: [DONE]\n\n');
  });

  it('sends a mid-stream error chunk the SDK throws on', async () => {
    fake.enqueue({ type: 'sse', items: [{ data: { choices: [{ index: 0, delta: { content: 'Hi' } }] } }, midStreamError(429, 'Rate limit exceeded', 'rate_limit_exceeded')], done: false });
    await expect(streamText()).rejects.toThrow(/Rate limit exceeded/);
  });

  it('resets the socket after N chunks, which clients see as a broken stream', async () => {
    fake.enqueue({ type: 'default', resetAfter: 3 });
    const res = await post(chatBody({ stream: true }));
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
    fake.enqueue({ type: 'default', resetAfter: 2 });
    await expect(streamText()).rejects.toThrow();
    expect(fake.requests.every((r) => !r.clientAborted)).toBe(true);
  });

  it('resets the connection before answering', async () => {
    fake.enqueue({ type: 'reset' });
    await expect(post(chatBody())).rejects.toThrow();
  });
});

describe('scripted failures', () => {
  it('returns OpenRouter error bodies with the status and headers asked for', async () => {
    fake.enqueue({ type: 'error', status: 429, message: 'Rate limit exceeded', headers: { 'retry-after': '7' } });
    const err: unknown = await client.chat.completions.create(chatBody()).catch((e: unknown) => e);
    if (!(err instanceof OpenAI.RateLimitError)) throw new Error(`expected a RateLimitError, got ${String(err)}`);
    expect(err.status).toBe(429);
    expect(err.headers?.get('retry-after')).toBe('7');

    fake.enqueue({ type: 'error', status: 402, message: 'Insufficient credits', metadata: { limit_source: 'openrouter_credits' } });
    const res = await post(chatBody());
    expect(res.statusCode).toBe(402);
    expect(await res.body.json()).toEqual({ error: { message: 'Insufficient credits', code: 402, metadata: { limit_source: 'openrouter_credits' } }, user_id: 'user_fake' });

    fake.enqueue({ type: 'error', status: 502 });
    await expect(client.chat.completions.create(chatBody())).rejects.toBeInstanceOf(OpenAI.InternalServerError);
  });

  it('returns garbage with a 200', async () => {
    fake.enqueue({ type: 'raw', body: 'not json at all', contentType: 'application/json' });
    const res = await post(chatBody());
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('not json at all');
  });

  it('delays headers long enough to trip a client header timeout, and sees the client leave', async () => {
    fake.enqueue({ type: 'default', headerDelayMs: 1_000 });
    await expect(post(chatBody(), {}, { headersTimeout: 100 })).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    await until(() => fake.requests[0]?.closedAt !== undefined);
    expect(fake.requests[0]?.clientAborted).toBe(true);
    expect(fake.inFlight).toBe(0);
  });

  it('reports a client that aborts a hanging request', async () => {
    fake.enqueue({ type: 'hang' });
    const controller = new AbortController();
    const pending = request(`${fake.url}/chat/completions`, { method: 'POST', body: '{}', signal: controller.signal }).catch((e: unknown) => e);
    await fake.waitForRequests(1);
    expect(fake.inFlight).toBe(1);
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await until(() => fake.requests[0]?.closedAt !== undefined);
    expect(fake.requests[0]?.clientAborted).toBe(true);
    expect(fake.inFlight).toBe(0);
  });
});

describe('programmatic and header-driven control', () => {
  it('lets script(fn) decide per request and fall through when it returns undefined', async () => {
    fake.script((req) => (req.headers['x-tenant'] === 'broke' ? { type: 'error', status: 402 } : undefined));
    expect((await post(chatBody(), { 'x-tenant': 'broke' })).statusCode).toBe(402);
    expect((await post(chatBody())).statusCode).toBe(200);
  });

  it('consumes enqueued replies in order, then falls back to the default', async () => {
    fake.enqueue({ type: 'error', status: 500 }, () => ({ type: 'json', body: { ok: 1 } }));
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(chatBody())).statusCode);
    expect(statuses).toEqual([500, 200, 200]);
  });

  it('turns a throwing handler into a 500 instead of crashing', async () => {
    fake.script(() => {
      throw new Error('bug in test');
    });
    const res = await post(chatBody());
    expect(res.statusCode).toBe(500);
    expect(await res.body.json()).toMatchObject({ error: { code: 500 } });
  });

  it('obeys x-fake-* request headers', async () => {
    expect((await post(chatBody(), { 'x-fake-status': '503' })).statusCode).toBe(503);
    const raw = await (await post(chatBody({ stream: true }), { 'x-fake-usage': 'none', 'x-fake-no-done': '1', 'x-fake-keepalive': '1' })).body.text();
    expect(raw).not.toContain('"usage"');
    expect(raw).not.toContain('[DONE]');
    expect(raw).toContain(': OPENROUTER PROCESSING');
  });
});

describe('concurrency', () => {
  it('serves 250 concurrent requests and reports the in-flight high-water mark', async () => {
    // Long enough that all 250 connections are open before the first answer, even on a loaded machine.
    fake.script(() => ({ type: 'default', headerDelayMs: 2500 }));
    const statuses = await Promise.all(
      Array.from({ length: 250 }, async (_, i) => {
        const res = await post(chatBody({ stream: i % 2 === 0 }));
        await res.body.text();
        return res.statusCode;
      }),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(fake.requests).toHaveLength(250);
    expect(fake.maxConcurrent).toBeGreaterThanOrEqual(200);
    expect(fake.inFlight).toBe(0);
  });

  it('closes promptly while requests hang', async () => {
    const other = await startFakeUpstream({ prefix: '/v1' });
    expect(other.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    other.enqueue({ type: 'hang' });
    const pending = request(`${other.url}/chat/completions`, { method: 'POST', body: '{}' }).catch((e: unknown) => e);
    await other.waitForRequests(1);
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await pending).toBeInstanceOf(Error);
  });
});
