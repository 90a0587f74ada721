// Regression test from the review of 2026-12-07 (r2): what the comment below describes was a bug, fixed then.
// The official openai SDK (6.x) retries 408/409/429/5xx and sleeps whatever Retry-After says
// (no cap). A 429 from a quota that resets tomorrow, or from a request that can never fit its
// limit, must not make the SDK sleep for hours or retry: the app should get the error at once.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

/** An SDK client (default maxRetries: 2) whose every HTTP request to the gateway is counted. */
function countingClient(key: string) {
  const seen: number[] = [];
  const client = new OpenAI({
    apiKey: key,
    baseURL: `${h.url}/v1`,
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      seen.push(res.status);
      return res;
    },
  });
  return { client, seen };
}

/** The SDK call's outcome, or 'still waiting' when it has not settled within `ms`. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), ms);
  });
  try {
    return await Promise.race([p.then(() => 'resolved', (err: unknown) => err), waited]);
  } finally {
    clearTimeout(timer);
  }
}

describe('SDK retries against quota refusals', () => {
  it('a spent daily token quota (resets at midnight UTC) reaches the SDK caller as a RateLimitError at once, after one request', async () => {
    const k = await createKey(h.gw, 'acme', ['--daily-tokens', '200']);
    await synced();
    // Spend the quota.
    for (let i = 0; i < 20; i++) {
      const r = await chat(h.url, k.key, hello(M, { max_tokens: 5 }));
      if (r.status === 429) break;
      expect(r.status).toBe(200);
    }
    const { client, seen } = countingClient(k.key);
    const out = await settleWithin(client.chat.completions.create({ ...hello(M), max_tokens: 5 }), 4_000);
    expect(out).toBeInstanceOf(OpenAI.RateLimitError);
    expect(out).toMatchObject({ status: 429, code: 'quota_exceeded' });
    expect(seen).toEqual([429]);
  });

  it('a request larger than the daily quota itself (it can never be admitted) is not retried', async () => {
    const k = await createKey(h.gw, 'acme', ['--daily-tokens', '60']);
    await synced();
    const { client, seen } = countingClient(k.key);
    const out = await settleWithin(client.chat.completions.create({ ...hello(M), max_tokens: 50 }), 4_000);
    expect(out).toBeInstanceOf(OpenAI.RateLimitError);
    expect(out).toMatchObject({ status: 429, code: 'quota_exceeded' });
    expect(seen).toEqual([429]);
  });

  it('a spent lifetime request cap (it never resets) is not retried', async () => {
    const k = await createKey(h.gw, 'acme', ['--max-requests', '1']);
    await synced();
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    const { client, seen } = countingClient(k.key);
    const out = await settleWithin(client.chat.completions.create({ ...hello(M), max_tokens: 5 }), 4_000);
    expect(out).toBeInstanceOf(OpenAI.RateLimitError);
    expect(out).toMatchObject({ status: 429, code: 'request_cap_exceeded' });
    expect(seen).toEqual([429]);
  });
});
