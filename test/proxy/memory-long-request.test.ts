// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// the in-memory counters forget an open reservation an hour after it was made
// (MemoryLimitBackend.sweep, reservationTtlMs default 1 h) while its request is still running.
// When that request settles, settleSync finds no open reservation and applies nothing: the
// worst case reserved stays on every counter instead of the real usage (for good on credits
// and total windows), while the store charges the real usage. A single process has no crashed
// instance whose reservations need expiring: only running requests are forgotten.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, type SseItem, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced, waitForEvents } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let offset = 0;
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { now: () => Date.now() + offset } });
  await createOrg(h.gw, 'compat', ['--provider', 'openai-compatible', '--base-url', fake.url]);
  await ok(h.gw, ['models', 'refresh', '--org', 'compat']);
  // 1 micro-dollar a completion token, prompts free: costs are token counts.
  await ok(h.gw, ['models', 'price', 'set', M, '--prompt', '0', '--completion', '1']);
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});

const chunk = (text: string, delayMs?: number): SseItem => ({
  data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] },
  ...(delayMs ? { delayMs } : {}),
});

describe('a request running longer than the memory backend reservation TTL (1 h)', () => {
  it('is settled to its real usage on the credit counter, as the store charges it', async () => {
    const k = await createKey(h.gw, 'compat', ['--credits', '1']);
    await synced();
    // A: a stream capped at 100,000 tokens (reserves 100,000 micro-dollars of credit) that uses 5.
    fake.enqueue({
      type: 'sse',
      items: [chunk('Hello', 0), chunk(' world', 1500), { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } } }],
    });
    const a = chat(h.url, k.key, hello(M, { stream: true, max_tokens: 100_000 }));
    await new Promise((r) => setTimeout(r, 500));
    // Two hours later by the proxy's clock (the stream is still running), another request.
    offset = 2 * 3_600_000;
    fake.enqueue({ type: 'default' });
    const b = await chat(h.url, k.key, hello(M, { max_tokens: 3 }));
    expect(b.status).toBe(200);
    expect((await a).status).toBe(200);
    const events = await waitForEvents(h.db, k.id, 2);
    const stored = events.reduce((s, e) => s + e.costMicros, 0);
    // A: 5 tokens at the table's price (5); B: the fake's own usage.cost (14).
    expect(events.map((e) => e.costMicros).sort((x, y) => x - y)).toEqual([5, 14]);
    const usage = (await call(h.url, '/v1/usage', { key: k.key })).json<{ credits: { scope: string; used_usd: number }[] }>();
    const live = usage.credits.find((c) => c.scope === `key:${k.id}`)!;
    // What the gateway did: used_usd 0.100014 (A's whole reservation of 100,000 kept, plus B's 14).
    expect(Math.round(live.used_usd * 1e6)).toBe(stored);
  });

  it('control: the same two requests without the clock moving settle A to its real usage', async () => {
    const k = await createKey(h.gw, 'compat', ['--credits', '1']);
    await synced();
    fake.enqueue({
      type: 'sse',
      items: [chunk('Hello', 0), chunk(' world', 1500), { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } } }],
    });
    const a = chat(h.url, k.key, hello(M, { stream: true, max_tokens: 100_000 }));
    await new Promise((r) => setTimeout(r, 500));
    fake.enqueue({ type: 'default' });
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 3 }))).status).toBe(200);
    expect((await a).status).toBe(200);
    const events = await waitForEvents(h.db, k.id, 2);
    const stored = events.reduce((s, e) => s + e.costMicros, 0);
    const usage = (await call(h.url, '/v1/usage', { key: k.key })).json<{ credits: { scope: string; used_usd: number }[] }>();
    expect(Math.round(usage.credits.find((c) => c.scope === `key:${k.id}`)!.used_usd * 1e6)).toBe(stored);
  });
});
