// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// a mock org whose models are not in the price table is priced from the mock catalog
// (resolvePrice in routes/chat.ts). The catalog holds USD per token ('0.00000015'); it is turned
// into micro-dollars per million tokens as usdToMicros(usd) * 1e6, which first rounds the
// per-token price to whole micro-dollars: $0.15 a million becomes $0, $0.60 a million $1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOCK_MODELS } from '../../src/shared/mock-catalog.js';
import { perTokenUsdToMicrosPerM, tokenCostMicros } from '../../src/shared/money.js';
import { chat, createKey, createOrg, type Harness, storedEvents, startHarness, synced, waitForEvents } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme'); // --provider mock, no `models refresh`
}, 60_000);
afterAll(() => h?.close());

describe('the built-in mock provider priced from its catalog', () => {
  it('bills mock/gpt-4o-mini at its catalog price ($0.15 / $0.60 a million tokens)', async () => {
    const k = await createKey(h.gw, 'acme');
    await synced();
    const m = MOCK_MODELS.find((x) => x.id === 'mock/gpt-4o-mini')!;
    // A long prompt, so the prompt side is worth whole micro-dollars.
    const content = 'lorem ipsum dolor sit amet '.repeat(2_000);
    const r = await chat(h.url, k.key, { model: m.id, messages: [{ role: 'user', content }], max_tokens: 200 });
    expect(r.status).toBe(200);
    const g = r.json<{ gateway_usage: { prompt_tokens: number; completion_tokens: number; cost_micros: number } }>().gateway_usage;
    expect(g.prompt_tokens).toBeGreaterThan(5_000);
    const expected = tokenCostMicros(g.prompt_tokens, perTokenUsdToMicrosPerM(m.pricing.prompt)) + tokenCostMicros(g.completion_tokens, perTokenUsdToMicrosPerM(m.pricing.completion));
    const [ev] = await waitForEvents(h.db, k.id, 1);
    // What the gateway did: the prompt billed $0 and the completion at $1 a million.
    expect({ gateway: g.cost_micros, stored: ev!.costMicros }).toEqual({ gateway: expected, stored: expected });
    void storedEvents;
  });
});
