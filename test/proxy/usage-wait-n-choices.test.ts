// Regression test from the review of 2026-12-07 (of that day's own fixes): what the comment below describes was a bug, fixed then.
// the usage wait after a hang-up ("nothing more being generated then", README) is
// entered on any chunk with a non-null finish_reason, so with n > 1 a hang-up after the first
// choice finished keeps the upstream generating the others for up to --disconnect-usage-wait-ms,
// and bills the client for text produced after it left.
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, type SseItem, startFakeUpstream } from '../fakes/upstream.js';
import { createKey, createOrg, type Harness, hello, startHarness, synced, waitForEvents } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { upstream: { headersMs: 2_000, bodyMs: 5_000 }, defaultMaxTokens: 20 } });
  await createOrg(h.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

const chunk = (index: number, delta: Record<string, unknown>, finish: string | null, delayMs?: number): SseItem => ({
  data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index, delta, finish_reason: finish }] },
  ...(delayMs ? { delayMs } : {}),
});

describe('hang-up after one of n choices finished', () => {
  it('aborts the upstream at once: the completion as a whole has not finished', async () => {
    const items: SseItem[] = [
      chunk(0, { content: 'short' }, null),
      chunk(1, { content: 'long' }, null),
      chunk(0, {}, 'stop'),
      // choice 1 is still being generated, for 1.5 s more
      ...Array.from({ length: 6 }, (_, i) => chunk(1, { content: ` more${i}` }, null, 250)),
      chunk(1, {}, 'stop'),
      { data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: 20, completion_tokens: 5000, total_tokens: 5020 } } },
      { raw: 'data: [DONE]\n\n' },
    ];
    fake.enqueue({ type: 'sse', items });
    const k = await createKey(h.gw, 'up');
    await synced();
    const controller = new AbortController();
    const res = await request(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(hello(M, { stream: true, n: 2 })),
      signal: controller.signal,
    });
    let received = '';
    let hungUpAt = 0;
    try {
      for await (const c of res.body) {
        received += c.toString();
        if (received.includes('"finish_reason":"stop"')) {
          hungUpAt = Date.now();
          controller.abort();
        }
      }
    } catch {
      // aborted on purpose
    }
    const [seen] = await fake.waitForRequests(1);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    await expect.poll(() => seen!.closedAt, { timeout: 4_000 }).toBeDefined();
    // The upstream was read on, and the client billed, for the 1.5 s of choice 1 after it left.
    expect({ usageSource: ev!.usageSource, completionTokens: ev!.completionTokens, upstreamReadAfterHangUpMs: seen!.closedAt! - hungUpAt })
      .toMatchObject({ usageSource: "estimated" });
    expect(seen!.closedAt! - hungUpAt).toBeLessThan(600);
  });
});
