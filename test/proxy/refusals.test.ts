// Every refusal: status, OpenAI error body naming what refused and why, and its headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness({ proxy: { maxBodyBytes: 2048, trustedProxies: ['127.0.0.1/32'] } });
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

type Err = { error: { message: string; type: string; param: string | null; code: string } & Record<string, unknown> };

async function refused(key: string, body: unknown, status: number, code: string, headers?: Record<string, string>) {
  const r = await chat(h.url, key, body, headers);
  expect(r.status, r.text).toBe(status);
  const e = r.json<Err>();
  expect(e.error).toMatchObject({ code });
  expect(Object.keys(e.error)).toEqual(expect.arrayContaining(['message', 'type', 'param', 'code']));
  expect(r.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
  return { r, e: e.error };
}

describe('401: key problems', () => {
  it('refuses a missing, malformed or unknown key with invalid_api_key', async () => {
    await refused('', hello(M), 401, 'invalid_api_key');
    await refused('sk-not-ours', hello(M), 401, 'invalid_api_key');
    await refused(`gw_live_abcdefghijkl_${'x'.repeat(43)}`, hello(M), 401, 'invalid_api_key');
  });

  it('accepts the key in x-api-key too', async () => {
    const k = await createKey(h.gw, 'acme');
    await synced();
    const r = await call(h.url, '/v1/chat/completions', { body: hello(M), headers: { 'x-api-key': k.key } });
    expect(r.status).toBe(200);
  });

  it('refuses revoked, disabled and expired keys with their own codes', async () => {
    const revoked = await createKey(h.gw, 'acme');
    const disabled = await createKey(h.gw, 'acme');
    const expiring = await createKey(h.gw, 'acme', ['--expires-in', '1s']);
    await ok(h.gw, ['keys', 'revoke', revoked.id, '--yes']);
    await ok(h.gw, ['keys', 'update', disabled.id, '--status', 'disabled']);
    await new Promise((r) => setTimeout(r, 1100));
    await synced();
    await refused(revoked.key, hello(M), 401, 'key_revoked');
    await refused(disabled.key, hello(M), 401, 'key_disabled');
    await refused(expiring.key, hello(M), 401, 'key_expired');
  });
});

describe('403: policy', () => {
  it('refuses a model outside the key rules or the org rules with model_not_allowed', async () => {
    const k = await createKey(h.gw, 'acme', ['--models', 'mock/llama-3-8b']);
    await synced();
    const { e } = await refused(k.key, hello(M), 403, 'model_not_allowed');
    expect(e.param).toBe('model');
    expect((await chat(h.url, k.key, hello('mock/llama-3-8b'))).status).toBe(200);
  });

  it('refuses a model a parent key does not allow (child ∩ ancestors)', async () => {
    const parent = await createKey(h.gw, 'acme', ['--models', 'mock/*']);
    const child = await createKey(h.gw, 'acme', ['--parent', parent.id, '--models', 'mock/echo']);
    await synced();
    await refused(child.key, hello(M), 403, 'model_not_allowed');
    expect((await chat(h.url, child.key, hello('mock/echo'))).status).toBe(200);
  });

  it('refuses an address outside the IP allow-list, honouring X-Forwarded-For only from trusted proxies', async () => {
    const v4 = await createKey(h.gw, 'acme', ['--ip', '203.0.113.0/24']);
    const v6 = await createKey(h.gw, 'acme', ['--ip', '2001:db8::/32']);
    await synced();
    const { e } = await refused(v4.key, hello(M), 403, 'ip_not_allowed');
    expect(e.message).toContain('127.0.0.1');
    expect((await chat(h.url, v4.key, hello(M), { 'x-forwarded-for': '203.0.113.9' })).status).toBe(200);
    // The client's own claim left of an untrusted hop is ignored: the last untrusted hop is the client.
    await refused(v4.key, hello(M), 403, 'ip_not_allowed', { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' });
    expect((await chat(h.url, v6.key, hello(M), { 'x-forwarded-for': '2001:db8::7' })).status).toBe(200);
    await refused(v6.key, hello(M), 403, 'ip_not_allowed', { 'x-forwarded-for': '2001:db9::7' });
  });

  it('reads a forwarded hop with a port, and admits no one on an allow-list when a hop is garbled', async () => {
    // Some load balancers write the client's port too. A hop that is no address used to fall
    // back to the peer (the trusted proxy), admitting every client on a key whose allow-list
    // holds the proxy's network.
    const v4 = await createKey(h.gw, 'acme', ['--ip', '203.0.113.0/24']);
    const v6 = await createKey(h.gw, 'acme', ['--ip', '2001:db8::/32']);
    const proxyNet = await createKey(h.gw, 'acme', ['--ip', '127.0.0.0/8']);
    await synced();
    expect((await chat(h.url, v4.key, hello(M), { 'x-forwarded-for': '203.0.113.9:51234' })).status).toBe(200);
    expect((await chat(h.url, v6.key, hello(M), { 'x-forwarded-for': '[2001:db8::7]:443' })).status).toBe(200);
    await refused(proxyNet.key, hello(M), 403, 'ip_not_allowed', { 'x-forwarded-for': 'not-an-address' });
    expect((await chat(h.url, proxyNet.key, hello(M))).status).toBe(200); // the proxy itself, no header
  });

  it('refuses a request whose Referer is not allowed', async () => {
    const k = await createKey(h.gw, 'acme', ['--referrer', '*.example.com']);
    await synced();
    await refused(k.key, hello(M), 403, 'referrer_not_allowed');
    await refused(k.key, hello(M), 403, 'referrer_not_allowed', { referer: 'https://evil.test/x' });
    expect((await chat(h.url, k.key, hello(M), { referer: 'https://app.example.com/page' })).status).toBe(200);
  });
});

describe('400, 404, 413: bad requests are refused and nothing is billed', () => {
  let key: string;
  let id: string;
  beforeAll(async () => {
    ({ key, id } = await createKey(h.gw, 'acme', ['--daily-tokens', '100000']));
    await synced();
  });

  it('names malformed JSON, wrong types and missing fields', async () => {
    await refused(key, '{"model": "x", ', 400, 'invalid_request');
    const types = await refused(key, { model: M, messages: 'hi' }, 400, 'invalid_request');
    expect(types.e.param).toBe('messages');
    const missing = await refused(key, { messages: [{ role: 'user', content: 'x' }] }, 400, 'invalid_request');
    expect(missing.e.param).toBe('model');
    const maxTokens = await refused(key, hello(M, { max_tokens: -3 }), 400, 'invalid_request');
    expect(maxTokens.e.param).toBe('max_tokens');
    await refused(key, '[1,2]', 400, 'invalid_request');
  });

  it('refuses an unknown model with model_not_found and an unknown route with not_found', async () => {
    await refused(key, hello('nope/unknown'), 404, 'model_not_found');
    const r = await call(h.url, '/v1/embeddings', { key, body: {} });
    expect(r.status).toBe(404);
    expect(r.json<Err>().error.code).toBe('not_found');
    expect((await call(h.url, '/v1/chat/completions', { key })).status).toBe(405); // a known path, the wrong method
  });

  it('refuses a body over the configured limit with 413', async () => {
    await refused(key, hello(M, { pad: 'x'.repeat(4000) }), 413, 'request_too_large');
  });

  it('left the counters untouched', async () => {
    const usage = (await call(h.url, '/v1/usage', { key })).json<{ limits: { scope: string; used: number }[] }>();
    expect(usage.limits.find((l) => l.scope === `key:${id}`)?.used).toBe(0);
  });
});

describe('429 and 402: limits, quotas, budgets and credits', () => {
  it('returns 429 rate_limit_exceeded with Retry-After and x-ratelimit-* when the RPM is spent', async () => {
    const k = await createKey(h.gw, 'acme', ['--rpm', '2']);
    await synced();
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    const { r, e } = await refused(k.key, hello(M, { max_tokens: 5 }), 429, 'rate_limit_exceeded');
    expect(e).toMatchObject({ type: 'rate_limit_error', scope: `key:${k.id}`, metric: 'requests', window: 'minute', limit: 2, used: 2 });
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(61);
    expect(r.headers['x-ratelimit-limit-requests']).toBe('2');
    expect(r.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(r.headers['x-ratelimit-reset-requests']).toMatch(/s$/);
    expect(e.message).toMatch(/key:\w+.*minute/);
  });

  it('returns 429 quota_exceeded naming the daily window and its reset', async () => {
    const k = await createKey(h.gw, 'acme', ['--daily-tokens', '60']);
    await synced();
    const { r, e } = await refused(k.key, hello(M, { max_tokens: 50 }), 429, 'quota_exceeded');
    expect(e).toMatchObject({ scope: `key:${k.id}`, metric: 'tokens', window: 'day', limit: 60, used: 0 });
    // Refused with room left: the message says the worst case does not fit, and how big it is.
    expect(e.requested).toBeGreaterThan(60);
    expect(e.message).toContain(`this request reserves up to ${e.requested} tokens (its prompt bound plus max_tokens), more than the whole limit`);
    expect(e.resets_at).toMatch(/T00:00:00\.000Z$/);
    // No wait will make it fit: no Retry-After, and SDKs are told not to retry.
    expect(r.headers['retry-after']).toBeUndefined();
    expect(r.headers['x-should-retry']).toBe('false');
    expect(r.headers['x-ratelimit-limit-tokens']).toBe('60');
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
  });

  it('returns 429 request_cap_exceeded once the lifetime request cap is used', async () => {
    const k = await createKey(h.gw, 'acme', ['--max-requests', '1']);
    await synced();
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    const { r, e } = await refused(k.key, hello(M, { max_tokens: 5 }), 429, 'request_cap_exceeded');
    expect(e).toMatchObject({ window: 'total', resets_at: null });
    expect(r.headers['retry-after']).toBeUndefined();
  });

  it('returns 402 budget_exceeded when the cost budget cannot cover the worst case', async () => {
    const k = await createKey(h.gw, 'acme', ['--budget', '0.00001', '--budget-period', 'day']);
    await synced();
    const { e } = await refused(k.key, hello(M, { max_tokens: 1000 }), 402, 'budget_exceeded');
    expect(e).toMatchObject({ type: 'insufficient_quota', metric: 'cost', window: 'day', limit: 0.00001 });
  });

  it('returns 402 insufficient_credits when the prepaid balance cannot cover the worst case', async () => {
    const k = await createKey(h.gw, 'acme', ['--credits', '0.00002']);
    await synced();
    const { e } = await refused(k.key, hello(M, { max_tokens: 1000 }), 402, 'insufficient_credits');
    expect(e).toMatchObject({ scope: `key:${k.id}`, metric: 'credits' });
    expect(e.message).toMatch(/is too low \(\$0\.00002 left; this request reserves up to \$0\.\d+/);
    const small = await chat(h.url, k.key, hello(M, { max_tokens: 5 }));
    expect(small.status).toBe(200);
    expect(small.json<{ gateway_usage: { credits: { scope: string; remaining_usd: number }[] } }>().gateway_usage.credits[0]).toMatchObject({ scope: `key:${k.id}` });
  });

  it('counts a child key against its parent limits', async () => {
    const parent = await createKey(h.gw, 'acme', ['--rpm', '1']);
    const child = await createKey(h.gw, 'acme', ['--parent', parent.id]);
    await synced();
    expect((await chat(h.url, child.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    const { e } = await refused(parent.key, hello(M, { max_tokens: 5 }), 429, 'rate_limit_exceeded');
    expect(e.scope).toBe(`key:${parent.id}`);
  });
});
