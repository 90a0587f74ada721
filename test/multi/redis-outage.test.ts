// Redis dies under two running gateway-proxy processes: a fail-closed org gets 503 `unavailable`
// from both, a fail-open org keeps being served from each instance's local counters, /readyz
// says which counters are in use, and when Redis returns (empty: no persistence) both
// instances reconnect by themselves and the shared counters again hold everything spent today.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { createKey, createOrg, freshStore, type Gw, type KeyJson, storedEvents, waitForEvents } from '../proxy/harness.js';
import { ensureBuilt, get, msUntil, post, type PrivateRedis, type ProxyProcess, startPrivateRedis, startProxyProcess } from './instances.js';

let fake: FakeUpstream;
let redis: PrivateRedis;
let db: string;
let gw: Gw;
let a: ProxyProcess;
let b: ProxyProcess;
let open: KeyJson;
let closed: KeyJson;

beforeAll(async () => {
  ensureBuilt();
  fake = await startFakeUpstream();
  // Requests that say "slow" are held upstream, so they are in flight when Redis dies.
  fake.script((req) => (req.rawBody.includes('slow') ? { type: 'default', headerDelayMs: 1_500 } : undefined));
  redis = await startPrivateRedis();
  ({ db, gw } = await freshStore('postgres'));
  const upstream = ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free'];
  await createOrg(gw, 'open-org', [...upstream, '--failure-mode', 'open']);
  await createOrg(gw, 'closed-org', [...upstream, '--failure-mode', 'closed']);
  open = await createKey(gw, 'open-org', ['--daily-tokens', '1000000', '--rpm', '100000']);
  closed = await createKey(gw, 'closed-org', ['--daily-tokens', '1000000', '--rpm', '100000']);
  const started = await Promise.all(['proxy-a', 'proxy-b'].map((instanceId) => startProxyProcess({ db, instanceId, redisUrl: redis.url })));
  [a, b] = [started[0]!, started[1]!];
}, 240_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.close();
  await fake?.close();
});

const ask = (content: string) => ({ model: 'openai/gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content }] });
const chat = (p: ProxyProcess, k: KeyJson, content = 'hello there') => post(p.url, '/v1/chat/completions', k.key, ask(content));
const readyz = async (p: ProxyProcess) => (await get(p.url, '/readyz')).json<{ counters: string }>();
const dailyUsed = async (p: ProxyProcess, k: KeyJson) =>
  (await get(p.url, '/v1/usage', k.key)).json<{ limits: { scope: string; window: string; metric: string; used: number }[] }>().limits.find((l) => l.scope === `key:${k.id}` && l.window === 'day')?.used;

describe('Redis killed under two instances', () => {
  it('gives 503 to a fail-closed org and serves a fail-open org on both, then both recover when Redis returns', async () => {
    const served = { open: 0, closed: 0 };
    const tally = (org: 'open' | 'closed', r: Awaited<ReturnType<typeof chat>>) => {
      expect(r.status, r.text).toBe(200);
      served[org]++;
    };
    for (const p of [a, b]) {
      await msUntil(async () => (await chat(p, open)).status === 200, 3_000);
      await msUntil(async () => (await chat(p, closed)).status === 200, 3_000);
      served.open++;
      served.closed++;
      expect((await readyz(p)).counters).toBe('redis');
    }
    // Both instances read one shared counter.
    expect(await dailyUsed(b, open)).toBe(await dailyUsed(a, open));

    // In flight across the kill: reserved in Redis, settled while it is gone.
    const inFlight = [a, b].flatMap((p) => [chat(p, open, 'slow one'), chat(p, closed, 'slow two')]);
    await fake.waitForRequests(fake.requests.length + 4);
    await redis.kill();

    for (const p of [a, b]) {
      const refused = await chat(p, closed);
      expect(refused.status).toBe(503);
      expect(refused.json<{ error: { code: string } }>().error.code).toBe('unavailable');
      expect(refused.headers['retry-after']).toBe('1');
      for (let i = 0; i < 5; i++) tally('open', await chat(p, open));
      expect((await readyz(p)).counters).toMatch(/^fallback: /);
      expect((await get(p.url, '/metrics')).text).toMatch(/^gateway_limit_counters_fallback 1$/m);
      expect((await get(p.url, '/readyz')).status).toBe(200);
    }
    const held = await Promise.all(inFlight);
    for (const [i, r] of held.entries()) tally(i % 2 ? 'closed' : 'open', r);

    // What the store holds re-seeds the emptied counters; events not yet flushed when that happens
    // would be missed (at most one flush interval of traffic): wait for them to make this exact.
    await waitForEvents(db, open.id, served.open);
    await waitForEvents(db, closed.id, served.closed);
    await redis.restart();
    for (const p of [a, b]) {
      await msUntil(async () => (await chat(p, closed)).status === 200, 5_000);
      served.closed++;
      expect((await readyz(p)).counters).toBe('redis');
      expect((await get(p.url, '/metrics')).text).toMatch(/^gateway_limit_counters_fallback 0$/m);
      tally('open', await chat(p, open));
    }
    // The shared counters hold what was spent before, during and after the outage, on both.
    await waitForEvents(db, open.id, served.open);
    const events = await waitForEvents(db, closed.id, served.closed);
    expect(events).toHaveLength(served.closed);
    for (const p of [a, b]) expect(await dailyUsed(p, open)).toBe(await storedTokens(open.id));
    for (const p of [a, b]) expect(await dailyUsed(p, closed)).toBe(await storedTokens(closed.id));
  });
});

async function storedTokens(keyId: string): Promise<number> {
  return (await storedEvents(db, keyId)).reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
}
