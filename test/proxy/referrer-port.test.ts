// Regression test from the review of 2026-12-07 (r5): what the comment below describes was a bug, fixed then.
// Review r5: referrer rules with a port. `gatewayctl keys create --referrer` accepts a port on a
// wildcard rule ('*.example.com:8443') and a scheme's default port ('example.com:443'), and
// saves them; the proxy then refuses every request, whatever its Referer, because the wildcard
// branch compares the port-less host against a suffix that carries the port, and WHATWG URL
// drops a scheme's default port from `host` before the exact comparison.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

const status = async (key: string, referer: string) => (await chat(h.url, key, hello(M, { max_tokens: 5 }), { referer })).status;

describe('referrer rules that name a port', () => {
  it('a wildcard rule with a port admits a subdomain on that port, and only on it', async () => {
    const k = await createKey(h.gw, 'acme', ['--referrer', '*.example.com:8443']);
    await synced();
    expect(await status(k.key, 'https://app.example.com:8443/page')).toBe(200);
    expect(await status(k.key, 'https://app.example.com:9443/page')).toBe(403);
    expect(await status(k.key, 'https://app.evil.test:8443/page')).toBe(403);
  });

  it("a rule naming the scheme's default port admits that origin (the browser omits :443 from Referer)", async () => {
    const k = await createKey(h.gw, 'acme', ['--referrer', 'example.com:443']);
    await synced();
    expect(await status(k.key, 'https://example.com/page')).toBe(200);
    expect(await status(k.key, 'https://example.com:443/page')).toBe(200);
    expect(await status(k.key, 'https://example.com:8443/page')).toBe(403);
  });
});
