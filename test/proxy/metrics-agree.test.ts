// Regression test from the review of 2026-12-07 (r3): what the comment below describes was a bug, fixed then.
// Review r3: /metrics against the store's own numbers.
// - gateway_cost_usd_total is a float sum of per-scrape increments (micros / 1e6 each time
//   /metrics is read), so it drifts from the exact micro-dollar total the store reports.
// - gateway_requests_total counts a JSON request whose client left before any answer as
//   status="200" (res.statusCode's default), while its usage event says 499.
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness, storedEvents, synced, waitForEvents } from './harness.js';

const M = 'openai/gpt-4o-mini';
let h: Harness;
let fake: FakeUpstream;

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness();
  await createOrg(h.gw, 'router', ['--provider', 'openrouter', '--base-url', fake.url, '--unknown-models', 'free', '--upstream-key-env', 'UK'], { env: { UK: 'sk-x' } });
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

function metric(text: string, line: string): number | null {
  const row = text.split('\n').find((l) => l.startsWith(`${line} `));
  return row === undefined ? null : Number(row.slice(line.length + 1));
}

describe('/metrics agrees with the store', () => {
  it('gateway_cost_usd_total after ten $0.10 requests, scraped after each, is 1 (the store says $1.000000)', async () => {
    const key = await createKey(h.gw, 'router');
    await synced();
    for (let i = 0; i < 10; i++) {
      fake.enqueue({
        type: 'json',
        body: {
          id: `gen-${i}`, object: 'chat.completion', created: 1, model: M,
          choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 8, completion_tokens: 1, total_tokens: 9, cost: 0.1 },
        },
      });
      const r = await chat(h.url, key.key, hello(M));
      expect(r.status).toBe(200);
      expect(r.json<{ gateway_usage: { cost_micros: number } }>().gateway_usage.cost_micros).toBe(100_000);
      await call(h.url, '/metrics'); // a Prometheus scrape between requests
    }
    await waitForEvents(h.db, key.id, 10);
    const summary = (await ok(h.gw, ['usage', 'summary', '--key', key.id])) as { cost_usd: number };
    expect(summary.cost_usd).toBe(1);
    const text = (await call(h.url, '/metrics')).text;
    expect(metric(text, 'gateway_cost_usd_total')).toBe(1);
  });

  it('a JSON request whose client hangs up before the answer is not counted as answered with status 200', async () => {
    const key = await createKey(h.gw, 'router');
    await synced();
    const before = (await call(h.url, '/metrics')).text;
    const ok200 = metric(before, 'gateway_requests_total{route="chat",status="200"}') ?? 0;
    fake.enqueue({ type: 'default', headerDelayMs: 1_500 });
    const controller = new AbortController();
    const leaving = request(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(hello(M)),
      signal: controller.signal,
    });
    leaving.catch(() => {});
    await fake.waitForRequests(1);
    controller.abort();
    await expect.poll(async () => (await storedEvents(h.db, key.id)).map((e) => [e.status, e.errorCode]), { timeout: 5_000 }).toEqual([[499, 'aborted']]);
    const after = (await call(h.url, '/metrics')).text;
    expect({
      status200: (metric(after, 'gateway_requests_total{route="chat",status="200"}') ?? 0) - ok200,
      status499: metric(after, 'gateway_requests_total{route="chat",status="499"}') ?? 0,
    }).toEqual({ status200: 0, status499: 1 });
  });
});
