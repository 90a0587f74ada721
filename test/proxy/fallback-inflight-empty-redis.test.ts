// A request admitted by the local fallback (fail-open org, Redis dead) that is still in flight
// when Redis comes back EMPTY (a restart without persistence): the shared counter is seeded again
// from the store, which does not hold that request yet, so its settlement goes to the shared
// counter (it went to the drained fallback and was never counted in Redis before; a review of
// 2026-12-07 found it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy } from '../../src/proxy/main.js';
import { defaultReply, type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, freshStore, hello, MASTER_KEY, storedEvents, synced } from './harness.js';
import { type PrivateRedis, startPrivateRedis } from '../multi/instances.js';

let fake: FakeUpstream;
let redis: PrivateRedis;
let release: () => void = () => {};
let held = 0;

beforeAll(async () => {
  fake = await startFakeUpstream();
  redis = await startPrivateRedis();
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => {
    open = r;
  });
  release = () => open();
  fake.script(async (req) => {
    if (!req.rawBody.includes('hold')) return undefined;
    held++;
    await gate;
    return defaultReply(req.body);
  });
});
afterAll(async () => {
  await redis?.close();
  await fake?.close();
});

const M = 'openai/gpt-4o-mini';
const body = (text: string, maxTokens: number) => hello(M, { max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });

describe('fallback request in flight while Redis restarts empty', () => {
  it('the re-seeded shared daily counter equals the stored usage once the in-flight request ends', async () => {
    const { db, gw } = await freshStore('sqlite');
    const proxy = await startProxy({ dbUrl: db, redisUrl: redis.url, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50 });
    const counters = async () => (await call(proxy.url, '/readyz')).json<{ counters: string }>().counters;
    try {
      await createOrg(gw, 'fb-open', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free', '--failure-mode', 'open']);
      const k = await createKey(gw, 'fb-open', ['--daily-tokens', '1000000']);
      await synced();
      expect((await chat(proxy.url, k.key, body('warm up', 5))).status).toBe(200);
      expect(await counters()).toBe('redis');

      await redis.kill();
      const t1 = Date.now();
      while ((await counters()) === 'redis' && Date.now() - t1 < 5_000) await new Promise((r) => setTimeout(r, 20));
      expect(await counters()).toMatch(/^fallback/);
      // Admitted by the fallback, held at the upstream.
      const inFlight = chat(proxy.url, k.key, body('hold me', 5));
      const t0 = Date.now();
      while (held < 1 && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
      expect(held).toBe(1);

      await redis.restart();
      const t2 = Date.now();
      while ((await counters()) !== 'redis' && Date.now() - t2 < 10_000) await new Promise((r) => setTimeout(r, 50));
      expect(await counters()).toBe('redis');
      // A request re-seeds the shared counter from the store (the held request is not in it yet).
      expect((await chat(proxy.url, k.key, body('after', 5))).status).toBe(200);

      release();
      expect((await inFlight).status).toBe(200);
      await new Promise((res) => setTimeout(res, 500));

      const events = await storedEvents(db, k.id);
      expect(events).toHaveLength(3);
      const stored = events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
      const usage = (await call(proxy.url, '/v1/usage', { key: k.key })).json<{ limits: { scope: string; window: string; metric: string; used: number }[] }>();
      const daily = usage.limits.find((l) => l.scope === `key:${k.id}` && l.window === 'day' && l.metric === 'tokens');
      expect(daily?.used).toBe(stored);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
