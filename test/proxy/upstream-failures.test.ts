// Upstream trouble reaches the client as OpenAI-shaped errors (timeouts 504, connection trouble
// 502, upstream refusals passed on), streams never end cleanly when broken, and every request
// is billed for what it produced.
import OpenAI from 'openai';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, midStreamError, type SseItem, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, startHarness, storedEvents, synced, waitForEvents } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let key: { id: string; key: string };
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { upstream: { headersMs: 400, bodyMs: 400 }, defaultMaxTokens: 20 } });
  await createOrg(h.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  await createOrg(h.gw, 'down', ['--provider', 'openai-compatible', '--base-url', 'http://127.0.0.1:9/v1', '--unknown-models', 'free']);
  key = await createKey(h.gw, 'up', ['--daily-tokens', '1000000']);
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const stream = (extra: Record<string, unknown> = {}) => hello(M, { stream: true, ...extra });
const contentChunk = (text: string, delayMs?: number): SseItem => ({
  data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] },
  ...(delayMs ? { delayMs } : {}),
});

describe('before the first byte', () => {
  it('returns 504 upstream_timeout when the upstream sends no headers in time, billing nothing', async () => {
    fake.enqueue({ type: 'default', headerDelayMs: 2_000 });
    const r = await chat(h.url, key.key, hello(M));
    expect(r.status).toBe(504);
    expect(r.json()).toMatchObject({ error: { code: 'upstream_timeout', type: 'timeout_error' } });
    const [ev] = (await waitForEvents(h.db, key.id, 1)).filter((e) => e.status === 504);
    expect(ev).toMatchObject({ promptTokens: 0, completionTokens: 0, costMicros: 0, usageSource: 'none', errorCode: 'upstream_timeout' });
  });

  it('returns 502 upstream_error when the upstream resets the connection or cannot be reached', async () => {
    fake.enqueue({ type: 'reset' });
    const reset = await chat(h.url, key.key, hello(M));
    expect(reset.status).toBe(502);
    expect(reset.json()).toMatchObject({ error: { code: 'upstream_error' } });
    const other = await createKey(h.gw, 'down');
    await synced();
    const refused = await chat(h.url, other.key, hello(M));
    expect(refused.status).toBe(502);
    expect(refused.text).not.toContain('ECONNREFUSED');
  });

  it('returns 502 when the upstream answers something that is not a completion', async () => {
    fake.enqueue({ type: 'raw', body: '<html>oops</html>', contentType: 'application/json' });
    const r = await chat(h.url, key.key, hello(M));
    expect(r.status).toBe(502);
    expect(r.json()).toMatchObject({ error: { code: 'upstream_error' } });
  });

  it("passes on an upstream 4xx in OpenAI's shape, with its message and Retry-After", async () => {
    fake.enqueue({ type: 'error', status: 400, message: 'This model does not support tools' });
    const bad = await chat(h.url, key.key, hello(M));
    expect(bad.status).toBe(400);
    expect(bad.json()).toEqual({ error: { message: 'This model does not support tools', type: 'invalid_request_error', param: null, code: 'upstream_error' } });
    fake.enqueue({ type: 'error', status: 429, message: 'Rate limit exceeded', headers: { 'retry-after': '7' } });
    const limited = await chat(h.url, key.key, hello(M));
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('7');
  });

  it('hides upstream 5xx details and turns an upstream 401 into 502', async () => {
    fake.enqueue({ type: 'error', status: 500, message: 'provider stack trace at line 3' });
    const five = await chat(h.url, key.key, hello(M));
    expect(five.status).toBe(500);
    expect(five.text).not.toContain('stack trace');
    fake.enqueue({ type: 'error', status: 401, message: 'User not found.' });
    const auth = await chat(h.url, key.key, hello(M, { stream: true }));
    expect(auth.status).toBe(502);
    expect(auth.json()).toMatchObject({ error: { code: 'upstream_error' } });
  });
});

describe('in the middle of a stream', () => {
  it('sends an SSE error event, never a clean end, when the upstream connection breaks, and bills the delivered text', async () => {
    fake.enqueue({ type: 'sse', items: [contentChunk('Hello there, '), contentChunk('general Kenobi')], resetAfter: 2 });
    const r = await chat(h.url, key.key, stream());
    expect(r.status).toBe(200);
    const events = r.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toContain('"code":"upstream_error"');
    expect(r.text).not.toContain('[DONE]');
    const client = new OpenAI({ apiKey: key.key, baseURL: `${h.url}/v1`, maxRetries: 0 });
    fake.enqueue({ type: 'sse', items: [contentChunk('Hello')], resetAfter: 1 });
    await expect(async () => {
      for await (const _ of await client.chat.completions.create({ ...stream(), stream: true })) void _;
    }).rejects.toThrow(/upstream/);
    // Bill what the client got: on a loaded machine the reset can overtake the second chunk.
    const delivered = events
      .filter((e) => e.startsWith('data: {') && !e.includes('"error"'))
      .map((e) => (JSON.parse(e.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(delivered.length).toBeGreaterThan(0);
    await expect
      .poll(async () => (await storedEvents(h.db, key.id)).find((e) => e.requestId === r.headers['x-request-id']), { timeout: 5_000 })
      .toMatchObject({ status: 200, errorCode: 'upstream_error', usageSource: 'estimated', completionTokens: Math.ceil(delivered.length / 4) });
  });

  it("passes the upstream's in-band error chunk on in OpenAI's shape, so SDK clients raise it with a string code and a type", async () => {
    fake.enqueue({ type: 'sse', items: [contentChunk('Hi'), midStreamError(502, 'Provider disconnected')], done: false });
    const client = new OpenAI({ apiKey: key.key, baseURL: `${h.url}/v1`, maxRetries: 0 });
    let caught: unknown;
    try {
      for await (const _ of await client.chat.completions.create({ ...stream(), stream: true })) void _;
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OpenAI.APIError);
    expect(String((caught as Error).message)).toMatch(/Provider disconnected/);
    // The code is OpenRouter's metadata.error_type (the fake's default: 'server'), a string.
    expect(caught).toMatchObject({ type: 'upstream_error', code: 'server', param: null });
  });

  it("reshapes OpenRouter's rate-limit error chunk (numeric code, metadata.error_type) and keeps the rest of the chunk", async () => {
    const err = midStreamError(429, 'Rate limit exceeded', 'rate_limit_exceeded');
    fake.enqueue({ type: 'sse', items: [contentChunk('Hi'), err], done: false });
    const r = await chat(h.url, key.key, stream());
    const events = r.text.split('\n\n').filter((e) => e.startsWith('data: {'));
    const last = JSON.parse(events.at(-1)!.slice(6)) as { error: unknown; choices: Array<{ finish_reason: string }> };
    expect(last.error).toEqual({ message: 'Rate limit exceeded', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' });
    expect(last.choices[0]!.finish_reason).toBe('error');
  });

  it('ends with an SSE error event when the upstream stalls past the body timeout', async () => {
    fake.enqueue({ type: 'sse', items: [contentChunk('Hi'), contentChunk(' there', 2_000)] });
    const r = await chat(h.url, key.key, stream());
    expect(r.text.split('\n\n').filter(Boolean).at(-1)).toContain('"code":"upstream_timeout"');
  });

  it('treats EOF without [DONE] as the end and bills the usage the upstream sent', async () => {
    fake.enqueue({ type: 'default', done: false });
    const r = await chat(h.url, key.key, stream({ stream_options: { include_usage: true } }));
    expect(r.text).not.toContain('[DONE]');
    expect(r.text).not.toContain('"error"');
    await expect
      .poll(async () => (await storedEvents(h.db, key.id)).find((e) => e.requestId === r.headers['x-request-id']), { timeout: 5_000 })
      .toMatchObject({ usageSource: 'upstream', completionTokens: 10, errorCode: null });
  });
});

describe('client disconnect', () => {
  it('aborts the upstream request and bills what was delivered, estimated', async () => {
    const items = Array.from({ length: 30 }, (_, i) => contentChunk(`word${i} `, i === 0 ? 0 : 100));
    fake.enqueue({ type: 'sse', items });
    const k = await createKey(h.gw, 'up');
    await synced();
    const controller = new AbortController();
    const res = await request(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(stream()), signal: controller.signal,
    });
    let received = '';
    try {
      for await (const chunk of res.body) {
        received += chunk.toString();
        if ((received.match(/word/g) ?? []).length >= 3) controller.abort();
      }
    } catch {
      // aborted on purpose
    }
    const [seen] = await fake.waitForRequests(1);
    await expect.poll(() => seen!.clientAborted, { timeout: 3_000 }).toBe(true);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ status: 499, errorCode: 'aborted', usageSource: 'estimated' });
    expect(ev!.completionTokens).toBeGreaterThanOrEqual(3);
    expect(ev!.completionTokens).toBeLessThan(30);
    expect(ev!.promptTokens).toBeGreaterThan(0);
  });
});

describe('client disconnect after the completion finished', () => {
  // The completion (hidden reasoning and all) is done; only the upstream's usage chunk is to
  // come. A client hanging up now would otherwise be billed the gateway's estimate of the text it
  // received: 3,012 tokens of reasoning and answer billed as a handful.
  const finishedThenUsage = (usageDelayMs: number): SseItem[] => [
    contentChunk('The answer is 42.'),
    { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] } },
    { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 20, completion_tokens: 3012, total_tokens: 3032 } }, delayMs: usageDelayMs },
    { raw: 'data: [DONE]\n\n' },
  ];

  async function hangUpAfterFinish(key: string): Promise<void> {
    const controller = new AbortController();
    const res = await request(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(stream()), signal: controller.signal,
    });
    let received = '';
    try {
      for await (const chunk of res.body) {
        received += chunk.toString();
        if (received.includes('"finish_reason":"stop"')) controller.abort();
      }
    } catch {
      // aborted on purpose
    }
  }

  it('reads on for the usage (up to --disconnect-usage-wait-ms) and bills what the upstream reports', async () => {
    fake.enqueue({ type: 'sse', items: finishedThenUsage(300) });
    const k = await createKey(h.gw, 'up');
    await synced();
    await hangUpAfterFinish(k.key);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ status: 499, errorCode: 'aborted', usageSource: 'upstream', completionTokens: 3012, promptTokens: 20 });
  });

  it('gives up on a usage that does not come within the wait, and bills the estimate', async () => {
    fake.enqueue({ type: 'sse', items: finishedThenUsage(5_000) });
    const k = await createKey(h.gw, 'up');
    await synced();
    const started = Date.now();
    await hangUpAfterFinish(k.key);
    const [seen] = await fake.waitForRequests(1);
    await expect.poll(() => seen!.clientAborted, { timeout: 4_000 }).toBe(true);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(ev).toMatchObject({ status: 499, errorCode: 'aborted', usageSource: 'estimated' });
    expect(ev!.completionTokens).toBeLessThan(100);
  });
});

describe('client disconnect on a JSON request', () => {
  it('aborts the upstream request still waiting for its answer and records the request as 499, billing nothing produced', async () => {
    fake.enqueue({ type: 'hang' });
    const k = await createKey(h.gw, 'up');
    await synced();
    const controller = new AbortController();
    const pending = request(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(hello(M)), signal: controller.signal,
    });
    const [seen] = await fake.waitForRequests(1);
    const abortedAt = Date.now();
    controller.abort();
    await expect(pending).rejects.toThrow();
    await expect.poll(() => seen!.clientAborted, { timeout: 3_000 }).toBe(true);
    // Passed on at once, not when the upstream header timeout (400 ms here) would have ended it.
    expect(seen!.closedAt! - abortedAt).toBeLessThan(300);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ status: 499, errorCode: 'aborted', completionTokens: 0 });
  });

  it('reads a large multi-byte answer whole, byte for byte', async () => {
    const text = 'ü'.repeat(3000);
    const body = { id: 'gen-big', object: 'chat.completion', created: 1, model: M, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 3000, total_tokens: 3005 } };
    fake.enqueue({ type: 'raw', body: JSON.stringify(body), contentType: 'application/json' });
    const r = await chat(h.url, key.key, hello(M));
    expect(r.status).toBe(200);
    const { gateway_usage, ...rest } = r.json<Record<string, unknown>>();
    expect(rest).toEqual(body);
    expect(gateway_usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3000 });
  });

  it('relays invalid UTF-8 in an answer as the same bytes (not as U+FFFD)', async () => {
    // A cut 4-byte sequence (3 bytes, as long as its U+FFFD), a lone continuation byte and a
    // real U+FFFD: the text cannot stand for these bytes, so they go out as bytes.
    const head = Buffer.from('{"id":"gen-bad","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a');
    const tail = Buffer.from('b\uFFFDc"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}');
    const body = Buffer.concat([head, Buffer.from([0xf0, 0x9f, 0x98, 0x78, 0x80]), tail]);
    fake.enqueue({ type: 'raw', body, contentType: 'application/json' });
    const r = await request(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' }, body: JSON.stringify(hello(M)),
    });
    expect(r.statusCode).toBe(200);
    const got = Buffer.from(await r.body.arrayBuffer());
    expect(Number(r.headers['content-length'])).toBe(got.length);
    const close = body.lastIndexOf(0x7d);
    expect(got.subarray(0, close).equals(body.subarray(0, close))).toBe(true);
    expect(JSON.parse(got.toString('utf8')).gateway_usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 2 });
  });
});

describe('quota reached in a stream without max_tokens', () => {
  it('ends the stream cleanly with an error event then [DONE], and bills what was delivered', async () => {
    // 20 chunks of 40 bytes (≈10 tokens each): far more than the 200-token quota allows.
    const items = Array.from({ length: 20 }, () => contentChunk('x'.repeat(39) + ' '));
    fake.enqueue({ type: 'sse', items });
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '200']);
    await synced();
    const r = await chat(h.url, k.key, stream());
    const events = r.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.at(-2)).toContain('"code":"quota_exceeded"');
    const delivered = events.filter((e) => e.includes('xxxx')).length;
    expect(delivered).toBeLessThan(20);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ status: 200, errorCode: 'quota_exceeded', usageSource: 'estimated' });
    expect(ev!.completionTokens).toBe(delivered * 10);
    // What was billed stays within the quota plus at most one upstream chunk.
    expect(ev!.promptTokens + ev!.completionTokens).toBeLessThanOrEqual(200 + 10);
  });

  it('cuts a stream of one-byte tokens too: the watch bounds tokens by bytes, not by the 4-bytes-a-token estimate', async () => {
    // 400 one-character deltas, each a token, and the upstream's own count at the end. Judged by
    // the estimate (100 tokens) the stream fitted a 200-token quota and 400 tokens were billed.
    const usage = { prompt_tokens: 12, completion_tokens: 400, total_tokens: 412 };
    const items: SseItem[] = [...Array.from({ length: 400 }, (_, i) => contentChunk(String(i % 10))), { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage } }];
    fake.enqueue({ type: 'sse', items });
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '200']);
    await synced();
    const r = await chat(h.url, k.key, stream());
    const events = r.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.at(-2)).toContain('"code":"quota_exceeded"');
    expect(events.at(-2)).not.toContain('plus max_tokens'); // the stream's own wording, not admission's
    const delivered = events.filter((e) => e.includes('"content"')).length;
    expect(delivered).toBeLessThan(200);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ errorCode: 'quota_exceeded', usageSource: 'estimated' });
    expect(ev!.promptTokens + ev!.completionTokens).toBeLessThanOrEqual(200);
    // Had the upstream counted every delivered byte as a token, that too would fit, plus one event.
    expect(ev!.promptTokens + delivered).toBeLessThanOrEqual(200 + 1);
  });

  it('judges a burst of CRLF-framed events event by event, and one extension covers however far it ran', async () => {
    // 60 events of 40 bytes in one write, framed with CR LF: split on LF LF alone this was one
    // piece, judged once, granted one 20-token extension, and delivered whole (600 tokens).
    const one = (i: number) => `data: ${JSON.stringify({ id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: `${String(i).padStart(2, '0')}${'y'.repeat(37)} ` }, finish_reason: null }] })}\r\n\r\n`;
    fake.enqueue({ type: 'sse', items: [{ raw: Array.from({ length: 60 }, (_, i) => one(i)).join('') }] });
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '200']);
    await synced();
    const r = await chat(h.url, k.key, stream());
    const events = r.text.split(/\r?\n\r?\n/).filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.at(-2)).toContain('"code":"quota_exceeded"');
    const delivered = events.filter((e) => e.includes('yyyy')).length;
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(60);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev!.completionTokens).toBe(delivered * 10);
    expect(ev!.promptTokens + ev!.completionTokens).toBeLessThanOrEqual(200 + 10);
  });
});

describe('usage the upstream reports partly, badly or too early', () => {
  const answer = (content: string, usage: Record<string, unknown>) => ({
    id: 'gen-x', object: 'chat.completion', created: 1, model: M,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage,
  });
  const billed = async (id: string, requestId: unknown) => {
    let ev: Awaited<ReturnType<typeof storedEvents>>[number] | undefined;
    await expect.poll(async () => (ev = (await storedEvents(h.db, id)).find((e) => e.requestId === requestId)), { timeout: 5_000 }).toBeDefined();
    return ev!;
  };

  it('estimates a count the upstream left out or sent as garbage, and then prices from the table', async () => {
    const k = await createKey(h.gw, 'up');
    await synced();
    const text = 'z'.repeat(400); // 100 tokens by the estimate
    for (const [usage, prompt, completion] of [
      [{ prompt_tokens: 10, cost: 0.000001 }, 10, 100],
      [{ prompt_tokens: 10, completion_tokens: '1000', cost: 0.000001 }, 10, 100],
      [{ prompt_tokens: 10, completion_tokens: -500 }, 10, 100],
      [{ prompt_tokens: 1e20, completion_tokens: 7 }, null, 7],
    ] as const) {
      fake.enqueue({ type: 'json', body: answer(text, usage) });
      const r = await chat(h.url, k.key, hello(M));
      expect(r.status).toBe(200);
      const ev = await billed(k.id, r.headers['x-request-id']);
      expect(ev).toMatchObject({ completionTokens: completion, usageSource: 'estimated' });
      if (prompt !== null) expect(ev.promptTokens).toBe(prompt);
      else expect(ev.promptTokens).toBeGreaterThan(0); // admission's estimate of the prompt
      expect(ev.promptTokens).toBeLessThan(1000);
      // Not the upstream's 1 µ$: its cost did not cover the estimated tokens ('free' prices here).
      expect(ev.costMicros).toBe(0);
      expect(r.json()).toMatchObject({ gateway_usage: { completion_tokens: completion, usage_source: 'estimated' } });
    }
  });

  it('takes a cost that cannot be a bill (negative, or over $10,000) from the price table', async () => {
    const k = await createKey(h.gw, 'up');
    await synced();
    for (const cost of [1e9, -5, '1E+5']) {
      fake.enqueue({ type: 'json', body: answer('hi', { prompt_tokens: 10, completion_tokens: 5, cost }) });
      const r = await chat(h.url, k.key, hello(M));
      const ev = await billed(k.id, r.headers['x-request-id']);
      expect(ev).toMatchObject({ promptTokens: 10, completionTokens: 5, costMicros: 0, usageSource: 'upstream' });
    }
    fake.enqueue({ type: 'json', body: answer('hi', { prompt_tokens: 10, completion_tokens: 5, cost: 9999.5 }) });
    const fine = await chat(h.url, k.key, hello(M));
    expect(await billed(k.id, fine.headers['x-request-id'])).toMatchObject({ costMicros: 9_999_500_000, usageSource: 'upstream' });
  });

  it('bills usage.cost exactly, streamed or not: by its literal text near a half micro-dollar, by the number elsewhere', async () => {
    const k = await createKey(h.gw, 'up');
    await synced();
    const usageEvent = (cost: string): SseItem => ({
      raw: `data: {"id":"gen-x","object":"chat.completion.chunk","created":1,"model":"${M}","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"cost":${cost}}}\n\n`,
    });
    for (const [cost, micros] of [
      ['0.0000325', 33], // a half rounds away from zero
      ['0.00003249999999999999999', 32], // parses to the same double; its text is just under the half
      ['3.2500001e-5', 33],
      ['0.0000123', 12],
      ['1.5e-7', 0],
      ['0.0000007', 1],
    ] as const) {
      fake.enqueue({ type: 'sse', items: [contentChunk('hi'), usageEvent(cost)] });
      const r = await chat(h.url, k.key, stream({ max_tokens: 100 }));
      expect(r.text.trim().endsWith('data: [DONE]')).toBe(true);
      expect(await billed(k.id, r.headers['x-request-id']), cost).toMatchObject({ promptTokens: 10, completionTokens: 5, costMicros: micros, usageSource: 'upstream' });
      const body = JSON.stringify(answer('hi', { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, cost: 0 })).replace('"cost":0', `"cost":${cost}`);
      fake.enqueue({ type: 'raw', body, contentType: 'application/json' });
      const j = await chat(h.url, k.key, hello(M, { max_tokens: 100 }));
      expect(j.status).toBe(200);
      expect(await billed(k.id, j.headers['x-request-id']), `${cost} (JSON)`).toMatchObject({ promptTokens: 10, completionTokens: 5, costMicros: micros, usageSource: 'upstream' });
    }
  });

  it('bills a cut stream at least what it delivered after an early usage chunk', async () => {
    // An upstream that reports usage before the text (or on every chunk) and then breaks: the
    // last usage seen said 0 completion tokens, the client got 2,000 bytes.
    const early = { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 10, completion_tokens: 0, total_tokens: 10 } } };
    const items: SseItem[] = [early, ...Array.from({ length: 10 }, () => contentChunk('w'.repeat(199) + ' '))];
    fake.enqueue({ type: 'sse', items, resetAfter: items.length });
    const r = await chat(h.url, key.key, stream({ max_tokens: 1000 }));
    expect(r.text).toContain('"code":"upstream_error"');
    const delivered = r.text.split('\n\n').filter((e) => e.includes('wwww')).length;
    expect(delivered).toBeGreaterThan(0);
    const ev = await billed(key.id, r.headers['x-request-id']);
    expect(ev).toMatchObject({ promptTokens: 10, completionTokens: delivered * 50, usageSource: 'estimated', errorCode: 'upstream_error' });
  });

  it('does not take a completion count of 0 next to delivered text', async () => {
    const zero = { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 10, completion_tokens: 0, total_tokens: 10, cost: 0 } } };
    fake.enqueue({ type: 'sse', items: [contentChunk('q'.repeat(399) + ' '), zero] });
    const r = await chat(h.url, key.key, stream({ max_tokens: 1000 }));
    expect(r.text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(await billed(key.id, r.headers['x-request-id'])).toMatchObject({ promptTokens: 10, completionTokens: 100, usageSource: 'estimated' });
  });

  it('trusts a finished stream whose usage came before its last text', async () => {
    const early = { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 } } };
    fake.enqueue({ type: 'sse', items: [early, contentChunk('one two three')] });
    const r = await chat(h.url, key.key, stream({ max_tokens: 1000 }));
    expect(r.text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(await billed(key.id, r.headers['x-request-id'])).toMatchObject({ promptTokens: 10, completionTokens: 3, usageSource: 'upstream' });
  });
});

describe('an upstream that ignores max_tokens', () => {
  it('is watched once its stream is far past the cap, and cut when the quota has no room', async () => {
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '20000']);
    await synced();
    const usage = { prompt_tokens: 12, completion_tokens: 50_000, total_tokens: 50_012 };
    const items: SseItem[] = [...Array.from({ length: 2_000 }, () => contentChunk('v'.repeat(99) + ' ')), { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage } }];
    fake.enqueue({ type: 'sse', items });
    const r = await chat(h.url, k.key, stream({ max_tokens: 50 }));
    const events = r.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.at(-2)).toContain('"code":"quota_exceeded"');
    const delivered = events.filter((e) => e.includes('vvvv')).length;
    expect(delivered).toBeLessThan(2_000);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ errorCode: 'quota_exceeded', usageSource: 'estimated', completionTokens: delivered * 25 });
    expect(ev!.promptTokens + ev!.completionTokens).toBeLessThanOrEqual(20_000);
  });

  it('leaves a stream that honours its cap alone, however fat its events', async () => {
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '20000']);
    await synced();
    // 50 tokens, each in an event carrying 4 KB of logprobs-like baggage: 200 KB raw, 250 bytes of text.
    const fat = (text: string): SseItem => ({
      data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: text }, logprobs: { content: [{ token: text, logprob: -0.1, top_logprobs: 'p'.repeat(4096) }] }, finish_reason: null }] },
    });
    const usage = { prompt_tokens: 12, completion_tokens: 50, total_tokens: 62 };
    fake.enqueue({ type: 'sse', items: [...Array.from({ length: 50 }, () => fat('word ')), { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage } }] });
    const r = await chat(h.url, k.key, stream({ max_tokens: 50 }));
    expect(r.text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(r.text).not.toContain('quota_exceeded');
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ promptTokens: 12, completionTokens: 50, usageSource: 'upstream', errorCode: null });
  });
});

describe('request limits', () => {
  it('count a request the upstream failed, as the store does, so a restart changes nothing', async () => {
    const k = await createKey(h.gw, 'up', ['--max-requests', '3']);
    await synced();
    fake.enqueue({ type: 'error', status: 500 }, { type: 'error', status: 500 });
    expect((await chat(h.url, k.key, hello(M))).status).toBe(500);
    expect((await chat(h.url, k.key, hello(M))).status).toBe(500);
    const ok = await chat(h.url, k.key, hello(M));
    expect(ok.status).toBe(200);
    expect(ok.headers['x-ratelimit-remaining-requests']).toBe('0');
    const refused = await chat(h.url, k.key, hello(M));
    expect(refused.status).toBe(429);
    expect(refused.text).toContain('3 requests of 3');
    // What the store says (and a restarted proxy would seed) is the same.
    await waitForEvents(h.db, k.id, 3);
    const limits = await h.gw(['limits', 'get', `key:${k.id}`, '--json']);
    expect(limits.code).toBe(0);
    expect(limits.stdout).toMatch(/"used":\s*3/);
  });
});

describe('logs', () => {
  it('do not call a client that left before the answer an unexpected error', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const own = await startHarness({ proxy: { logger } });
    try {
      await createOrg(own.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
      const k = await createKey(own.gw, 'up');
      await synced();
      for (const stream of [false, true]) {
        fake.enqueue({ type: 'hang' });
        const controller = new AbortController();
        const pending = request(`${own.url}/v1/chat/completions`, {
          method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(hello(M, { stream })), signal: controller.signal,
        });
        await fake.waitForRequests(stream ? 2 : 1);
        controller.abort();
        await expect(pending).rejects.toThrow();
      }
      const events = await waitForEvents(own.db, k.id, 2);
      expect(events.map((e) => e.status)).toEqual([499, 499]);
      expect(lines.filter((l) => l.level >= 50)).toEqual([]);
      expect(lines.filter((l) => l.msg === 'client gone before the answer')).toHaveLength(2);
    } finally {
      await own.close();
    }
  });
});

describe('a request that ends after midnight', () => {
  it('is dated when it was admitted, the day its quota counted it in (memory and Redis counters alike)', async () => {
    const start = Date.UTC(2030, 5, 10, 23, 59, 59, 500);
    let clock = start;
    const own = await startHarness({ proxy: { now: () => clock } });
    try {
      await createOrg(own.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
      const k = await createKey(own.gw, 'up', ['--daily-tokens', '100000']);
      await synced();
      fake.enqueue({ type: 'sse', items: [contentChunk('before midnight '), contentChunk('and after', 300)] });
      const pending = chat(own.url, k.key, stream({ max_tokens: 100 }));
      await fake.waitForRequests(1);
      clock = Date.UTC(2030, 5, 11, 0, 0, 0, 500);
      expect((await pending).status).toBe(200);
      const [ev] = await waitForEvents(own.db, k.id, 1);
      // Dated at settlement (the 11th) the store and a restarted proxy's seed counted it in the
      // 11th, while the live counter had counted it in the 10th.
      expect(new Date(ev!.ts).getTime()).toBe(start);
      const usage = await call(own.url, '/v1/usage', { key: k.key });
      const day = usage.json<{ limits: { window: string; used: number }[] }>().limits.find((l) => l.window === 'day');
      expect(day?.used).toBe(0);
    } finally {
      await own.close();
    }
  });
});

describe('a client request timeout shorter than the client headers timeout', () => {
  it('starts, and delivers a JSON answer the upstream takes longer than that timeout to produce', async () => {
    // --client-request-timeout-ms 500 under the default 10 s for headers: node once refused to
    // start such a server (its headersTimeout must not exceed its requestTimeout).
    const own = await startHarness({ proxy: { clientRequestTimeoutMs: 500 } });
    try {
      await createOrg(own.gw, 'slow', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
      const k = await createKey(own.gw, 'slow', ['--daily-tokens', '1000000']);
      await synced();
      fake.enqueue({ type: 'default', headerDelayMs: 1_500 });
      const r = await chat(own.url, k.key, hello(M));
      expect(r.status).toBe(200);
      expect(r.json()).toMatchObject({ object: 'chat.completion', gateway_usage: { usage_source: 'upstream' } });
    } finally {
      await own.close();
    }
  }, 30_000);
});
