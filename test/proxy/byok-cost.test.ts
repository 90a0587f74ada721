// Regression test from the review of 2026-12-07 (r2): what the comment below describes was a bug, fixed then.
// OpenRouter with BYOK (the org's own provider key registered at OpenRouter): usage.cost is only
// OpenRouter's credit charge (a ~5% fee, often 0), while usage.cost_details.upstream_inference_cost
// is what the provider charged the org's own key for the same request (protocols.md A.3: "only
// meaningful for BYOK"; OpenRouter's usage-accounting page: "cost: the total amount charged to
// your account; cost_details.upstream_inference_cost: the actual cost charged by the upstream AI
// provider"). The gateway bills usage.cost alone, so budgets and credits see a BYOK request as
// (nearly) free.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let key: string;
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness();
  await createOrg(h.gw, 'router', ['--provider', 'openrouter', '--base-url', fake.url, '--unknown-models', 'free']);
  key = (await createKey(h.gw, 'router', ['--daily-tokens', '1000000'])).key;
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

// $0.00045 charged by the provider to the org's own key, $0.0000225 (5%) by OpenRouter.
const usage = {
  prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500, cost: 0.0000225, is_byok: true,
  prompt_tokens_details: { cached_tokens: 0 },
  cost_details: { upstream_inference_cost: 0.00045, upstream_inference_prompt_cost: 0.00015, upstream_inference_completions_cost: 0.0003 },
  completion_tokens_details: { reasoning_tokens: 0 },
};
const EXPECTED_MICROS = 473; // 22.5 + 450, rounded half up

describe('BYOK requests through OpenRouter', () => {
  it('bill what the request cost the org (OpenRouter fee + provider charge), not the fee alone: JSON', async () => {
    fake.enqueue({
      type: 'json',
      body: { id: 'gen-1', provider: 'OpenAI', model: M, object: 'chat.completion', created: 1, choices: [{ index: 0, logprobs: null, finish_reason: 'stop', message: { role: 'assistant', content: 'Hello!' } }], usage },
    });
    const r = await chat(h.url, key, hello(M, { max_tokens: 600 }));
    expect(r.status).toBe(200);
    expect(r.json<{ gateway_usage: { cost_micros: number } }>().gateway_usage.cost_micros).toBe(EXPECTED_MICROS);
  });

  it('bill what the request cost the org: stream', async () => {
    const head = { id: 'gen-2', provider: 'OpenAI', model: M, object: 'chat.completion.chunk', created: 1 };
    fake.enqueue({
      type: 'sse',
      items: [
        { data: { ...head, choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello!' }, finish_reason: null }] } },
        { data: { ...head, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] } },
        { data: { ...head, choices: [], usage } },
      ],
    });
    const r = await chat(h.url, key, hello(M, { max_tokens: 600, stream: true }));
    const id = r.headers['x-request-id'] as string;
    const u = await call(h.url, `/v1/usage?request_id=${id}`, { key });
    expect(u.json<{ request: { cost_micros: number } }>().request.cost_micros).toBe(EXPECTED_MICROS);
  });

  it('bills by the price table when BYOK comes without the provider charge (the fee alone is not the cost)', async () => {
    const priced = 'anthropic/claude-3.5-sonnet'; // $3 and $15 a million in the fake's catalog
    await ok(h.gw, ['models', 'refresh', '--org', 'router']);
    await synced();
    const { upstream_inference_cost: _gone, ...details } = usage.cost_details;
    fake.enqueue({
      type: 'json',
      body: { id: 'gen-3', model: priced, object: 'chat.completion', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Hi' } }], usage: { ...usage, cost_details: details } },
    });
    const r = await chat(h.url, key, hello(priced, { max_tokens: 600 }));
    expect(r.status).toBe(200);
    // 1000 prompt tokens at $3/M + 500 completion tokens at $15/M = $0.0105.
    expect(r.json<{ gateway_usage: { cost_micros: number } }>().gateway_usage.cost_micros).toBe(10_500);
  });
});
