// Regression test from the review of 2026-12-07 (r7): what the comment below describes was a bug, fixed then.
// Review r7: Redis emptied (FLUSHALL, or a restart without persistence) while a request is in
// flight, and that request's settlement is the first thing to touch its counter afterwards.
// SETTLE_LUA does not create a missing calendar key (it "will be seeded from the store, which
// holds this request too"), then settle() peeks, and the peek seeds the key from the store —
// before billing.ts has handed the request's usage event to the sink (record() runs after the
// settle resolves). The seed cannot contain the request, the settle did not add it: the shared
// counter misses it for the rest of the window while the store counts it.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type RunningProxy } from '../../src/proxy/main.js';
import { call, chat, createKey, createOrg, freshStore, hello, MASTER_KEY, ok, waitForEvents } from '../proxy/harness.js';
import { type Gated, M, startGated, until } from '../proxy/gated-upstream.js';
import { type PrivateRedis, startPrivateRedis } from './instances.js';

interface LimitView {
  scope: string;
  metric: string;
  window: string;
  used: number;
}

let up: Gated;
let redis: PrivateRedis;
beforeAll(async () => {
  up = await startGated();
  redis = await startPrivateRedis();
});
afterAll(async () => {
  await redis?.close();
  await up?.close();
});

describe('Redis emptied while a request is in flight (two instances, Postgres)', () => {
  it('the in-flight request still counts in the shared daily counter once it settles', async () => {
    const { db, gw } = await freshStore('postgres');
    await createOrg(gw, 'fl', ['--provider', 'openai-compatible', '--base-url', up.url, '--unknown-models', 'free']);
    const k = await createKey(gw, 'fl', ['--tpd', '100000']);
    const opts = { dbUrl: db, redisUrl: redis.url, redisPrefix: 'r7f:', port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50 };
    const a: RunningProxy = await startProxy({ ...opts, instanceId: 'r7-a' });
    const b: RunningProxy = await startProxy({ ...opts, instanceId: 'r7-b' });
    const flusher = new Redis(redis.url);
    try {
      const tpd = async (url: string) => {
        const u = await call(url, '/v1/usage', { key: k.key });
        return u.json<{ limits: LimitView[] }>().limits.find((l) => l.scope === `key:${k.id}` && l.metric === 'tokens' && l.window === 'day')?.used;
      };
      // 100 tokens spent before, written to the store.
      expect((await chat(a.url, k.key, hello(M, { max_tokens: 10, messages: [{ role: 'user', content: 'burn 90 10' }] }))).status).toBe(200);
      await waitForEvents(db, k.id, 1);
      expect(await tpd(a.url)).toBe(100);

      // Admitted on instance a, answered (300 tokens) once the gate opens.
      const pending = chat(a.url, k.key, hello(M, { max_tokens: 10, messages: [{ role: 'user', content: 'hold burn 290 10' }] }));
      await until('the request at the upstream', () => (up.waiting() === 1 ? true : undefined));
      await flusher.flushall();
      up.open();
      expect((await pending).status).toBe(200);
      const events = await waitForEvents(db, k.id, 2);
      const stored = events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
      expect(stored).toBe(400);
      const q = (await ok(gw, ['quotas', 'get', k.id])) as { daily: { used: number } };
      expect(q.daily.used).toBe(400);

      // The shared counter, as each instance reads it: it should hold both requests.
      expect(await tpd(a.url)).toBe(400);
      expect(await tpd(b.url)).toBe(400);
    } finally {
      flusher.disconnect();
      await a.close();
      await b.close();
    }
  }, 60_000);
});
