// Two real gateway-proxy processes on one Postgres store and one Redis: limits hold across both
// exactly as on one instance, a revoke reaches both within 2 s, and every request served by
// either lands in the store once, with rollups equal to the raw events.
import { randomString } from '../../src/shared/ids.js';
import { openStore } from '../../src/shared/db/store.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { REDIS_URL } from '../helpers/stores.js';
import { createKey, createOrg, freshStore, type Gw, ok, storedEvents, waitForEvents } from '../proxy/harness.js';
import { ensureBuilt, get, msUntil, post, type ProxyProcess, startProxyProcess } from './instances.js';

let fake: FakeUpstream;
let db: string;
let gw: Gw;
let a: ProxyProcess;
let b: ProxyProcess;
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  ensureBuilt();
  fake = await startFakeUpstream();
  ({ db, gw } = await freshStore('postgres'));
  await createOrg(gw, 'shared', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  const redisPrefix = `gw-multi-${randomString(8)}:`;
  const started = await Promise.all(['proxy-a', 'proxy-b'].map((instanceId) => startProxyProcess({ db, instanceId, redisUrl: REDIS_URL, redisPrefix })));
  [a, b] = [started[0]!, started[1]!];
}, 240_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await fake?.close();
});

const ask = (i: number, extra: Record<string, unknown> = {}) => ({ model: M, max_tokens: 10, messages: [{ role: 'user', content: `request number ${i}` }], ...extra });
const errorCode = (r: { json<T>(): T }) => r.json<{ error: { code: string } }>().error.code;

/** Waits until both instances know the key (GET /v1/usage spends nothing). */
async function knownToBoth(key: string): Promise<void> {
  for (const p of [a, b]) await msUntil(async () => (await get(p.url, '/v1/usage', key)).status === 200, 3_000);
}

describe('two instances, one store, one Redis', () => {
  it('200 concurrent requests split across both for the last 1,000 tokens overspend by zero', async () => {
    const k = await createKey(gw, 'shared', ['--daily-tokens', '1000']);
    await knownToBoth(k.key);
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => post(i % 2 ? b.url : a.url, '/v1/chat/completions', k.key, ask(i))));
    const served = replies.filter((r) => r.status === 200);
    const refused = replies.filter((r) => r.status === 429);
    expect(served.length + refused.length).toBe(200);
    expect(refused.every((r) => errorCode(r) === 'quota_exceeded')).toBe(true);
    const charged = served.reduce((s, r) => s + r.json<{ gateway_usage: { total_tokens: number } }>().gateway_usage.total_tokens, 0);
    expect(refused.length).toBeGreaterThan(0);
    expect(charged).toBeLessThanOrEqual(1000);
    // Both instances read the one shared counter.
    for (const p of [a, b]) {
      const usage = (await get(p.url, '/v1/usage', k.key)).json<{ limits: { scope: string; used: number }[] }>();
      expect(usage.limits.find((l) => l.scope === `key:${k.id}`)?.used).toBe(charged);
    }
    const events = await waitForEvents(db, k.id, served.length);
    expect(events).toHaveLength(served.length);
    expect(events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0)).toBe(charged);
  });

  it('a requests-per-minute limit admits exactly its max across both instances', async () => {
    const k = await createKey(gw, 'shared', ['--rpm', '25']);
    await knownToBoth(k.key);
    const replies = await Promise.all(Array.from({ length: 80 }, (_, i) => post(i % 2 ? b.url : a.url, '/v1/chat/completions', k.key, ask(i))));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(25);
    const refused = replies.filter((r) => r.status === 429);
    expect(refused).toHaveLength(55);
    expect(refused.every((r) => errorCode(r) === 'rate_limit_exceeded')).toBe(true);
  });

  it('a key revoked with gatewayctl is refused by both instances within 2 s', async () => {
    const k = await createKey(gw, 'shared');
    await knownToBoth(k.key);
    await ok(gw, ['keys', 'revoke', k.id, '--yes']);
    const revoked = async (url: string) => {
      const r = await post(url, '/v1/chat/completions', k.key, ask(0));
      return r.status === 401 && errorCode(r) === 'key_revoked';
    };
    const ms = await Promise.all([a, b].map((p) => msUntil(() => revoked(p.url), 2_000)));
    expect(Math.max(...ms)).toBeLessThan(2_000);
  });

  it('usage events equal the requests served by both instances, once each, and rollups equal the events', async () => {
    const k = await createKey(gw, 'shared', ['--daily-tokens', '10000000']);
    await knownToBoth(k.key);
    let servedBy = { 'proxy-a': 0, 'proxy-b': 0 };
    const workers = Array.from({ length: 20 }, async (_, w) => {
      for (let i = 0; i < 10; i++) {
        const p = (w + i) % 2 ? b : a;
        const r = await post(p.url, '/v1/chat/completions', k.key, ask(i, { stream: w % 3 === 0, stream_options: w % 3 === 0 ? { include_usage: true } : undefined }));
        expect(r.status).toBe(200);
        servedBy = { ...servedBy, [p.instanceId]: servedBy[p.instanceId as 'proxy-a'] + 1 };
      }
    });
    await Promise.all(workers);
    const events = await waitForEvents(db, k.id, 200);
    // Let any straggler flush, then count again: there must be nothing beyond what was served.
    await new Promise((r) => setTimeout(r, 500));
    expect(await storedEvents(db, k.id)).toHaveLength(200);
    expect(new Set(events.map((e) => e.requestId)).size).toBe(200);
    expect(events.every((e) => e.status === 200 && e.usageSource === 'upstream')).toBe(true);
    const store = await openStore(db);
    try {
      const rows = (await store.db.select().from(store.t.usageEvents)).filter((e) => e.keyId === k.id);
      const byInstance = { 'proxy-a': 0, 'proxy-b': 0 } as Record<string, number>;
      for (const e of rows) byInstance[e.instance] = (byInstance[e.instance] ?? 0) + 1;
      expect(byInstance).toEqual(servedBy);
      const rollups = (await store.db.select().from(store.t.usageDaily)).filter((r) => r.keyId === k.id);
      const sum = (xs: { [f: string]: unknown }[], f: string) => xs.reduce((s, x) => s + Number(x[f]), 0);
      expect(sum(rollups, 'requests')).toBe(200);
      expect(sum(rollups, 'totalTokens')).toBe(sum(rows, 'totalTokens'));
      expect(sum(rollups, 'costMicros')).toBe(sum(rows, 'costMicros'));
      expect(sum(rollups, 'promptTokens')).toBe(sum(rows, 'promptTokens'));
    } finally {
      await store.close();
    }
  });
});
