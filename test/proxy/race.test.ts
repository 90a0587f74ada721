// 200 concurrent requests race for a key's last 1,000 tokens. Each reserves its prompt's upper
// bound plus max_tokens before going upstream, so the admitted total can never pass the quota:
// the overspend bound with max_tokens is zero, on one instance (memory counters) and with
// counters in Redis.
import { randomString } from '../../src/shared/ids.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, type Harness, hello, startHarness, synced, waitForEvents } from './harness.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(() => fake?.close());

const setups = [
  { name: 'SQLite store, memory counters', dialect: 'sqlite' as const, redis: false },
  { name: 'Postgres store, Redis counters', dialect: 'postgres' as const, redis: true },
];

describe.each(setups)('racing for the last 1,000 tokens ($name)', ({ dialect, redis }) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ dialect, proxy: redis ? { redisUrl: REDIS_URL, redisPrefix: `gw-test-${randomString(8)}:` } : {} });
    await createOrg(h.gw, 'racers', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(() => h?.close());

  it('200 concurrent requests with max_tokens overspend by zero', async () => {
    const k = await createKey(h.gw, 'racers', ['--daily-tokens', '1000']);
    await synced();
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => chat(h.url, k.key, hello('openai/gpt-4o-mini', { max_tokens: 10, messages: [{ role: 'user', content: `request number ${i}` }] }))),
    );
    const served = replies.filter((r) => r.status === 200);
    const refused = replies.filter((r) => r.status === 429);
    expect(served.length + refused.length).toBe(200);
    expect(refused.every((r) => r.json<{ error: { code: string } }>().error.code === 'quota_exceeded')).toBe(true);
    const charged = served.reduce((s, r) => s + r.json<{ gateway_usage: { total_tokens: number } }>().gateway_usage.total_tokens, 0);
    expect(served.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(charged).toBeLessThanOrEqual(1000);
    const usage = (await call(h.url, '/v1/usage', { key: k.key })).json<{ limits: { scope: string; used: number; remaining: number }[] }>();
    const quota = usage.limits.find((l) => l.scope === `key:${k.id}`)!;
    expect(quota.used).toBe(charged);
    // Every request the upstream answered was billed, and nothing else reached the upstream.
    const events = await waitForEvents(h.db, k.id, served.length);
    expect(events).toHaveLength(served.length);
    expect(events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0)).toBe(charged);
  });
});
