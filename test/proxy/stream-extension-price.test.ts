// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// a stream without max_tokens that outgrows its default cap reserves more room
// (extend()). The extension holds completion tokens only (requests: 0), but its cost is priced
// with costMicros(price, 0, tokens), which adds the model's per-request price again: every
// extension reserves one more request fee. A stream well inside its cost budget is cut.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, type SseItem, startFakeUpstream } from '../fakes/upstream.js';
import { chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced, waitForEvents } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { defaultMaxTokens: 100 } });
  await createOrg(h.gw, 'compat', ['--provider', 'openai-compatible', '--base-url', fake.url]);
  await ok(h.gw, ['models', 'refresh', '--org', 'compat']);
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const chunk = (text: string): SseItem => ({
  data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] },
});
// 10 events of 20 bytes: 200 bytes of text (the watch's bound: 200 tokens), 50 tokens really.
const items: SseItem[] = [
  ...Array.from({ length: 10 }, () => chunk('x'.repeat(19) + ' ')),
  { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 10, completion_tokens: 50, total_tokens: 60 } } },
];

describe('stream extension of a model with a per-request price', () => {
  it('reserves completion tokens only, not the request fee again (the stream fits its budget and is not cut)', async () => {
    // $0 a million prompt tokens, $1 a million completion tokens (1 micro-dollar a token), $0.001 a request.
    await ok(h.gw, ['models', 'price', 'set', M, '--prompt', '0', '--completion', '1', '--request', '0.001']);
    // Budget: 1,500 micro-dollars. Admission reserves 100 tokens (100) + the request (1,000) = 1,100.
    // One extension of 100 tokens needs 100 more: 1,200, within the budget. The real bill is 1,050.
    const k = await createKey(h.gw, 'compat', ['--budget', '0.0015', '--budget-period', 'total']);
    await synced();
    fake.enqueue({ type: 'sse', items });
    const r = await chat(h.url, k.key, hello(M, { stream: true }));
    expect(r.status).toBe(200);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    // What the gateway did: cut the stream with budget_exceeded after 100 bytes, because the
    // extension asked for 100 + 1,000 (a second request fee): 2,200 > 1,500.
    expect(r.text).not.toContain('budget_exceeded');
    expect(ev).toMatchObject({ errorCode: null, completionTokens: 50, costMicros: 1050 });
  });

  it('control: the same stream and budget without a request fee are served whole', async () => {
    await ok(h.gw, ['models', 'price', 'set', M, '--prompt', '0', '--completion', '1', '--request', '0']);
    // Without the fee the same numbers less 1,000: budget 500, admission 100, extension 100.
    const k = await createKey(h.gw, 'compat', ['--budget', '0.0005', '--budget-period', 'total']);
    await synced();
    fake.enqueue({ type: 'sse', items });
    const r = await chat(h.url, k.key, hello(M, { stream: true }));
    expect(r.text).not.toContain('budget_exceeded');
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev).toMatchObject({ errorCode: null, completionTokens: 50, costMicros: 50 });
  });
});
