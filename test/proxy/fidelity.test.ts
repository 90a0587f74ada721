// What the client receives is what the upstream sent, apart from what the gateway must change:
// gateway_usage on JSON, the usage chunk only for clients that asked, x-ratelimit-* headers.
import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, fakeUsage, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let key: string;

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness();
  await createOrg(h.gw, 'router', [
    '--provider', 'openrouter', '--base-url', fake.url, '--unknown-models', 'free',
    '--upstream-key-env', 'UPSTREAM_KEY', '--http-referer', 'https://app.example', '--app-title', 'Acme App',
  ], { env: { UPSTREAM_KEY: 'sk-upstream-test' } });
  key = (await createKey(h.gw, 'router', ['--daily-tokens', '1000000', '--rpm', '1000'])).key;
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

async function direct(body: unknown): Promise<string> {
  const r = await request(`${fake.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return r.body.text();
}

function events(sse: string): string[] {
  return sse.split('\n\n').filter((e) => e.trim() !== '');
}

describe('JSON fidelity', () => {
  it('returns the upstream body byte for byte plus a gateway_usage member', async () => {
    const body = hello('openai/gpt-4o-mini', { max_tokens: 7, temperature: 0.3 });
    const expected = await direct(body);
    const r = await chat(h.url, key, body);
    expect(r.status).toBe(200);
    expect(r.text.startsWith(expected.slice(0, expected.lastIndexOf('}')))).toBe(true);
    const { gateway_usage, ...rest } = r.json();
    expect(rest).toEqual(JSON.parse(expected));
    const u = fakeUsage(body);
    expect(gateway_usage).toMatchObject({
      prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens,
      cost_micros: u.costMicros, usage_source: 'upstream',
    });
  });

  it("forwards the client's body unchanged with the org's upstream key, HTTP-Referer and X-Title", async () => {
    const raw = JSON.stringify(hello('openai/gpt-4o-mini', { seed: 7, provider: { order: ['x'] } }));
    await chat(h.url, key, raw, { 'x-fake-unrelated': '1', cookie: 'secret=1' });
    const [seen] = await fake.waitForRequests(1);
    expect(seen!.rawBody).toBe(raw);
    expect(seen!.headers.authorization).toBe('Bearer sk-upstream-test');
    expect(seen!.headers['http-referer']).toBe('https://app.example');
    expect(seen!.headers['x-title']).toBe('Acme App');
    expect(seen!.headers.cookie).toBeUndefined();
  });

  it('carries x-ratelimit-* headers from the tightest counters on success', async () => {
    const r = await chat(h.url, key, hello('openai/gpt-4o-mini', { max_tokens: 5 }));
    expect(r.headers['x-ratelimit-limit-requests']).toBe('1000');
    expect(Number(r.headers['x-ratelimit-remaining-requests'])).toBeLessThan(1000);
    expect(r.headers['x-ratelimit-limit-tokens']).toBe('1000000');
    expect(r.headers['x-ratelimit-reset-tokens']).toMatch(/^\d+(h\d+m)?(\d+m)?\d*s$|^\d+ms$/);
  });

  it('is parsed by the official openai SDK as the same completion', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${h.url}/v1`, maxRetries: 0 });
    const res = await client.chat.completions.create({ ...hello('openai/gpt-4o-mini'), max_tokens: 4 });
    expect(res.choices[0]?.message.content).toBe('The quick brown fox');
    expect(res.usage).toMatchObject({ prompt_tokens: 8, completion_tokens: 4 });
    expect((res as unknown as { gateway_usage: { usage_source: string } }).gateway_usage.usage_source).toBe('upstream');
  });
});

describe('streaming fidelity', () => {
  const streamBody = (includeUsage: boolean) => hello('openai/gpt-4o-mini', { stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) });

  it('relays every event unchanged, keep-alive comments included, when the client asked for usage', async () => {
    fake.script(() => ({ type: 'default', keepAlives: true }));
    const expected = await direct(streamBody(true));
    const r = await chat(h.url, key, streamBody(true));
    expect(r.headers['content-type']).toBe('text/event-stream');
    expect(r.text).toBe(expected);
    expect(r.text).toContain(': OPENROUTER PROCESSING\n\n');
  });

  it('drops the usage chunk for a client that did not ask for usage, and changes nothing else', async () => {
    const expected = events(await direct(streamBody(false)));
    const got = events((await chat(h.url, key, streamBody(false))).text);
    expect(got).toEqual(expected.filter((e) => !e.includes('"usage"')));
    expect(got.at(-1)).toBe('data: [DONE]');
  });

  it('moves usage sent on a chunk with choices to its own chunk for a client that asked, and bills it', async () => {
    fake.script(() => ({ type: 'default', usage: 'with-choices' }));
    const r = await chat(h.url, key, streamBody(true));
    const usageEvents = events(r.text).filter((e) => e.includes('"usage"'));
    expect(usageEvents).toHaveLength(1);
    expect(JSON.parse(usageEvents[0]!.slice(6))).toMatchObject({ choices: [], usage: { completion_tokens: 10 } });
    const usage = await call(h.url, '/v1/usage', { key });
    expect(usage.json()).toMatchObject({ last_request: { completion_tokens: 10, usage_source: 'upstream' } });
  });

  it('forwards chunks as they arrive: the gaps between upstream chunks reach the client', async () => {
    fake.script(() => ({ type: 'default', chunkDelayMs: 120 }));
    const res = await request(`${h.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(streamBody(false)),
    });
    const arrivals: number[] = [];
    for await (const chunk of res.body) {
      const n = chunk.toString().split('\n\n').filter((e: string) => e.startsWith('data: {')).length;
      for (let i = 0; i < n; i++) arrivals.push(performance.now());
    }
    expect(arrivals.length).toBeGreaterThanOrEqual(10);
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
    // Each content chunk came 120 ms after the previous one upstream; a buffering proxy would show ~0 gaps.
    expect(gaps.filter((g) => g >= 80).length).toBeGreaterThanOrEqual(arrivals.length - 2);
  });

  it('streams to the official openai SDK, with a usage chunk only when asked', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${h.url}/v1`, maxRetries: 0 });
    for (const includeUsage of [false, true]) {
      const stream = await client.chat.completions.create({ ...hello('openai/gpt-4o-mini'), stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) });
      let text = '';
      let usage = null;
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? '';
        usage = c.usage ?? usage;
      }
      expect(text).toBe('The quick brown fox jumps over the lazy dog today');
      expect(usage === null).toBe(!includeUsage);
    }
  });
});

describe('streaming to a slow reader', () => {
  it('waits for the client socket (backpressure) and delivers a 4 MB stream intact, without piling up listeners', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const items = Array.from({ length: 500 }, (_, i) => ({
        data: { id: 'gen-big', object: 'chat.completion.chunk', created: 1, model: 'openai/gpt-4o-mini', choices: [{ index: 0, delta: { content: `${i}:${'é'.repeat(4000)}` }, finish_reason: null }] },
      }));
      const usage = { prompt_tokens: 10, completion_tokens: 500, total_tokens: 510 };
      fake.script(() => ({ type: 'sse', items: [...items, { data: { id: 'gen-big', object: 'chat.completion.chunk', created: 1, model: 'openai/gpt-4o-mini', choices: [], usage } }] }));
      // max_tokens given, and large enough for 4 MB of text (16 bytes a token): the stream is not
      // watched against the quota (the guard against upstreams that ignore max_tokens stays off).
      const body = hello('openai/gpt-4o-mini', { stream: true, max_tokens: 300_000, stream_options: { include_usage: true } });
      const upstream = await direct(body);
      const res = await request(`${h.url}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body), highWaterMark: 16 * 1024,
      });
      const parts: Buffer[] = [];
      for await (const chunk of res.body) {
        parts.push(chunk);
        if (parts.length % 20 === 0) await new Promise((r) => setTimeout(r, 5)); // a reader slower than the upstream
      }
      const bytes = Buffer.concat(parts);
      expect(bytes.length).toBeGreaterThan(4_000_000);
      const received = bytes.toString();
      expect(events(received)).toEqual(events(upstream));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  }, 30_000);
});
