// Gaps a review of 2026-12-07 found between what a request may make the upstream do and what the
// gateway checked or reserved: the larger of two completion caps, DeepSeek's reasoning field,
// image parts carrying a `text` member, OpenRouter's `models` fallback list, an x-api-key behind
// a non-Bearer Authorization header, and /v1/models listing models every request would refuse.
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultReply, type FakeUpstream, type SseItem, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced } from './harness.js';

let fake: FakeUpstream;
let h: Harness;
beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { defaultMaxTokens: 100 } });
  await createOrg(h.gw, 'compat', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  await createOrg(h.gw, 'router', ['--provider', 'openrouter', '--base-url', fake.url, '--unknown-models', 'free', '--upstream-key-env', 'UPSTREAM_KEY'], { env: { UPSTREAM_KEY: 'sk-upstream-test' } });
  // The default unknown-model policy: models without a price are refused.
  await createOrg(h.gw, 'strict', ['--provider', 'openrouter', '--base-url', fake.url, '--upstream-key-env', 'UPSTREAM_KEY'], { env: { UPSTREAM_KEY: 'sk-upstream-test' } });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const dailyTokens = async (key: { id: string; key: string }) => {
  const usage = (await call(h.url, '/v1/usage', { key: key.key })).json<{ limits: { scope: string; metric: string; used: number }[] }>();
  return usage.limits.find((l) => l.scope === `key:${key.id}` && l.metric === 'tokens')!.used;
};

describe('max_tokens together with max_completion_tokens', () => {
  // An upstream honours one of the two (SGLang and vLLM take max_completion_tokens first), not
  // their minimum: the reservation must cover the larger.
  beforeEach(() => {
    fake.script((req) => {
      if (req.method !== 'POST') return undefined;
      const b = req.body as { max_tokens?: number; max_completion_tokens?: number };
      const n = Math.min(b.max_completion_tokens ?? b.max_tokens ?? 16, 2000);
      return {
        type: 'json',
        body: {
          id: 'cmpl-1', object: 'chat.completion', created: 1, model: 'm',
          choices: [{ index: 0, finish_reason: 'length', message: { role: 'assistant', content: 'tok '.repeat(n).trim() } }],
          usage: { prompt_tokens: 12, completion_tokens: n, total_tokens: 12 + n },
        },
      };
    });
  });

  it('refuses, with nothing reserved, one request whose larger cap does not fit the quota', async () => {
    const k = await createKey(h.gw, 'compat', ['--daily-tokens', '300']);
    await synced();
    const r = await chat(h.url, k.key, { model: 'local/model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, max_completion_tokens: 100_000 });
    expect(r.status).toBe(429);
    expect(await dailyTokens(k)).toBe(0);
  });

  it('20 racing requests for a 300-token quota use at most 300 tokens', async () => {
    const k = await createKey(h.gw, 'compat', ['--daily-tokens', '300']);
    await synced();
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => chat(h.url, k.key, { model: 'some/model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, max_completion_tokens: 200 })),
    );
    const served = replies.filter((r) => r.status === 200);
    expect(served.length).toBeGreaterThan(0);
    const charged = served.reduce((s, r) => s + r.json<{ gateway_usage: { total_tokens: number } }>().gateway_usage.total_tokens, 0);
    expect(charged).toBeLessThanOrEqual(300);
    expect(await dailyTokens(k)).toBe(charged);
  });
});

describe.each(['reasoning', 'reasoning_content'])('a stream without max_tokens thinking in delta.%s', (field) => {
  it('is watched by its delivered text and cut before it runs a 1,000-token quota past its limit', async () => {
    const head = { id: 'g', object: 'chat.completion.chunk', created: 1, model: 'deepseek-reasoner' };
    const text = 'abcd'.repeat(25); // 100 bytes a event
    const items: SseItem[] = Array.from({ length: 50 }, () => ({ data: { ...head, choices: [{ index: 0, delta: { [field]: text }, finish_reason: null }] } }));
    items.push({ data: { ...head, choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: 'stop' }] } });
    items.push({ data: { ...head, choices: [], usage: { prompt_tokens: 10, completion_tokens: 1251, total_tokens: 1261 } } });
    fake.script((req) => (req.method === 'POST' ? { type: 'sse', items } : undefined));
    const k = await createKey(h.gw, 'compat', ['--daily-tokens', '1000']);
    await synced();
    const res = await request(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'deepseek-reasoner', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = await res.body.text();
    expect(body).toContain('"code":"quota_exceeded"');
    await new Promise((r) => setTimeout(r, 100));
    expect(await dailyTokens(k)).toBeLessThanOrEqual(1000 + 100); // at most one event past the quota
  });
});

describe.each([
  { name: 'plain image parts', extra: {} },
  { name: 'image parts with an empty text member', extra: { text: '' } },
])('$name', ({ extra }) => {
  it('reserve a media part each: a 3,000-token quota admits one request with two images, not two', async () => {
    // The upstream bills each image the gateway's guess per media part (1,105 tokens), plus 10.
    fake.script((req) => {
      if (req.method !== 'POST') return undefined;
      const b = req.body as { messages: { content: unknown }[] };
      const images = b.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((p) => (p as { type: string }).type === 'image_url').length;
      const prompt = 10 + 1105 * images;
      return {
        type: 'json',
        body: {
          id: 'c', object: 'chat.completion', created: 1, model: 'm',
          choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'ok' } }],
          usage: { prompt_tokens: prompt, completion_tokens: 1, total_tokens: prompt + 1 },
        },
      };
    });
    const k = await createKey(h.gw, 'compat', ['--daily-tokens', '3000']);
    await synced();
    const part = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' }, ...extra };
    const body = { model: 'v/m', max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, part, part] }] };
    const replies = await Promise.all([chat(h.url, k.key, body), chat(h.url, k.key, body)]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 429]);
    expect(await dailyTokens(k)).toBeLessThanOrEqual(3000);
  });
});

describe("OpenRouter's models fallback list", () => {
  const echoFirstFallback = () =>
    fake.script((req) => {
      if (req.method !== 'POST') return undefined;
      const b = req.body as { models?: string[] };
      // As OpenRouter when the first model fails: the next one serves (and is billed).
      if (Array.isArray(b.models) && b.models.length > 0) return defaultReply({ ...(req.body as object), model: b.models[0] });
      return undefined;
    });

  it('refuses a fallback the key may not use, before anything reaches the upstream', async () => {
    echoFirstFallback();
    const k = await createKey(h.gw, 'router', ['--models', 'openai/gpt-4o-mini']);
    await synced();
    expect((await chat(h.url, k.key, hello('anthropic/claude-3.5-sonnet'))).status).toBe(403);
    const r = await chat(h.url, k.key, hello('openai/gpt-4o-mini', { models: ['anthropic/claude-3.5-sonnet'] }));
    expect(r.status).toBe(403);
    expect(r.json()).toMatchObject({ error: { code: 'model_not_allowed', param: 'models' } });
    expect(fake.requests).toHaveLength(0);
  });

  it('passes a list of allowed models on as it came', async () => {
    echoFirstFallback();
    const k = await createKey(h.gw, 'router', ['--models', 'openai/*']);
    await synced();
    const r = await chat(h.url, k.key, hello('openai/gpt-4o-mini', { models: ['openai/gpt-4o', 'openai/gpt-4o-mini'] }));
    expect(r.status).toBe(200);
    expect((fake.requests[0]!.body as { models: unknown }).models).toEqual(['openai/gpt-4o', 'openai/gpt-4o-mini']);
  });

  it('refuses a malformed list with a clear error', async () => {
    const k = await createKey(h.gw, 'router', []);
    await synced();
    for (const models of ['openai/gpt-4o', [1, 2], Array.from({ length: 17 }, (_, i) => `m/${i}`)]) {
      const r = await chat(h.url, k.key, hello('openai/gpt-4o-mini', { models }));
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: { code: 'invalid_request', param: 'models' } });
    }
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a fallback without a price when the org refuses unknown models, and prices the reservation at the dearest', async () => {
    echoFirstFallback();
    await ok(h.gw, ['models', 'refresh', '--org', 'strict']); // the fake's catalog and prices
    const cheap = 'meta-llama/llama-3.1-8b-instruct'; // $0.02 / $0.05 a million tokens
    const dear = 'anthropic/claude-3.5-sonnet'; // $3 / $15
    const k = await createKey(h.gw, 'strict', ['--budget', '0.001', '--budget-period', 'day']);
    await synced();
    const r = await chat(h.url, k.key, hello(cheap, { max_tokens: 100, models: ['vendor/unpriced-model'] }));
    expect(r.status).toBe(404);
    expect(r.json()).toMatchObject({ error: { code: 'model_not_found', param: 'models' } });
    expect(fake.requests.filter((q) => q.method === 'POST')).toHaveLength(0);
    // Alone the cheap model fits a budget of a tenth of a cent; with a dear fallback (100
    // completion tokens at $15 a million are $0.0015) the worst case does not.
    const refused = await chat(h.url, k.key, hello(cheap, { max_tokens: 100, models: [dear] }));
    expect(refused.status).toBe(402);
    expect(refused.json()).toMatchObject({ error: { code: 'budget_exceeded' } });
    expect((await chat(h.url, k.key, hello(cheap, { max_tokens: 100 }))).status).toBe(200);
  });
});

describe('keys and models at the edge', () => {
  it('takes the key from x-api-key when Authorization carries no Bearer token (Basic auth of a reverse proxy)', async () => {
    const k = await createKey(h.gw, 'router', []);
    await synced();
    const r = await call(h.url, '/v1/models', { headers: { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': k.key } });
    expect(r.status).toBe(200);
    // A Bearer token still decides over x-api-key.
    const bad = await call(h.url, '/v1/models', { headers: { authorization: 'Bearer sk-not-a-key', 'x-api-key': k.key } });
    expect(bad.status).toBe(401);
  });

  it('GET /v1/models does not list a model every request would refuse (no price, unknown models refused)', async () => {
    const k = await createKey(h.gw, 'strict', ['--models', 'vendor/unpriced-model']);
    await synced();
    const listed = (await call(h.url, '/v1/models', { key: k.key })).json<{ data: Array<{ id: string }> }>().data.map((m) => m.id);
    expect(listed).not.toContain('vendor/unpriced-model');
    const r = await chat(h.url, k.key, hello('vendor/unpriced-model', { max_tokens: 5 }));
    expect(r.status).toBe(404);
  });
});
