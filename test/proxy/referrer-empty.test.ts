// Regression test from the review of 2026-12-07 (r5): what the comment below describes was a bug, fixed then.
// Review r5: the referrer check reads `req.headers.referer ?? req.headers.origin`. An empty
// Referer header (`Referer:` with no value, which RFC 9110 does not allow as a URI and which
// some HTTP stacks send in place of none) is not nullish, so it hides an Origin header that the
// allow-list admits, and a request the README says is judged by "Referer (or Origin)" is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

describe('referrer allow-list: Referer, else Origin', () => {
  it('an empty Referer falls back to Origin, as an absent one does', async () => {
    const k = await createKey(h.gw, 'acme', ['--referrer', 'app.example.com']);
    await synced();
    const send = (headers: Record<string, string>) => chat(h.url, k.key, hello(M, { max_tokens: 5 }), headers);
    expect((await send({ origin: 'https://app.example.com' })).status).toBe(200);
    expect((await send({ referer: '', origin: 'https://evil.test' })).status).toBe(403);
    const r = await send({ referer: '', origin: 'https://app.example.com' });
    expect(r.status, r.text).toBe(200);
  });
});
