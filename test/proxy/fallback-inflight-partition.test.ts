// A request admitted by the local fallback (fail-open org, Redis partitioned) that is still in
// flight when Redis comes back with its data: the fallback hands the shared counters only its
// settled usage (the request's worst case stayed on them before: 5,065 counted for 51 used), and
// the request's real usage reaches them when it settles (a review of 2026-12-07 found it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy } from '../../src/proxy/main.js';
import { randomString } from '../../src/shared/ids.js';
import { defaultReply, type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { blackhole } from '../helpers/blackhole.js';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, freshStore, hello, MASTER_KEY, storedEvents, synced } from './harness.js';

let fake: FakeUpstream;
let release: () => void = () => {};
let held = 0;

beforeAll(async () => {
  fake = await startFakeUpstream();
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
afterAll(() => fake?.close());

const M = 'openai/gpt-4o-mini';
const body = (text: string, maxTokens: number) => hello(M, { max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });

describe('fallback request in flight across a Redis reconnection', () => {
  it('the shared daily counter equals the stored usage once the in-flight fallback request ends', async () => {
    const { db, gw } = await freshStore('sqlite');
    const target = new URL(REDIS_URL);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 6379) });
    const proxy = await startProxy({
      dbUrl: db,
      redisUrl: hole.via(REDIS_URL),
      redisPrefix: `r3fb${randomString(8)}:`,
      port: 0,
      masterKey: MASTER_KEY,
      pollIntervalMs: 100,
      flushIntervalMs: 50,
    });
    const counters = async () => (await call(proxy.url, '/readyz')).json<{ counters: string }>().counters;
    try {
      await createOrg(gw, 'fb-open', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free', '--failure-mode', 'open']);
      const k = await createKey(gw, 'fb-open', ['--daily-tokens', '1000000']);
      await synced();
      expect((await chat(proxy.url, k.key, body('warm up', 5))).status).toBe(200);
      expect(await counters()).toBe('redis');

      hole.swallow();
      const lostAt = Date.now();
      while ((await counters()) === 'redis' && Date.now() - lostAt < 5_000) {
        expect((await chat(proxy.url, k.key, body('during', 5))).status).toBe(200);
      }
      expect(await counters()).toMatch(/^fallback/);

      // Admitted by the fallback with a worst case of prompt + 5000 tokens, held at the upstream.
      const inFlight = chat(proxy.url, k.key, body('hold me', 5000));
      const t0 = Date.now();
      while (held < 1 && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
      expect(held).toBe(1);

      hole.heal();
      const healedAt = Date.now();
      let state = await counters();
      while (state !== 'redis' && Date.now() - healedAt < 15_000) {
        await new Promise((r) => setTimeout(r, 100));
        expect((await chat(proxy.url, k.key, body('after', 5))).status).toBe(200);
        state = await counters();
      }
      expect(state).toBe('redis');

      release();
      const r = await inFlight;
      expect(r.status).toBe(200);
      await new Promise((res) => setTimeout(res, 500));

      const events = await storedEvents(db, k.id);
      const stored = events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
      const usage = (await call(proxy.url, '/v1/usage', { key: k.key })).json<{ limits: { scope: string; window: string; metric: string; used: number }[] }>();
      const daily = usage.limits.find((l) => l.scope === `key:${k.id}` && l.window === 'day' && l.metric === 'tokens');
      // The held request used ~19 tokens; its 5000-token worst case must not stay on the counter.
      expect(daily?.used).toBe(stored);
    } finally {
      await proxy.close();
      await hole.close();
    }
  }, 60_000);
});
