// Two gateway-proxy processes on one Postgres store WITHOUT Redis: each counts in its own memory,
// seeded from the store when it first sees a counter, so the documented drift bound applies —
// the instances together admit at most N × what remained of a quota (here N = 2), each one alone
// never more than what remained; the usage the store records stays exact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { createKey, createOrg, freshStore, type Gw, waitForEvents } from '../proxy/harness.js';
import { ensureBuilt, get, msUntil, post, type ProxyProcess, startProxyProcess } from './instances.js';

let fake: FakeUpstream;
let db: string;
let gw: Gw;
let a: ProxyProcess;
let b: ProxyProcess;

beforeAll(async () => {
  ensureBuilt();
  fake = await startFakeUpstream();
  ({ db, gw } = await freshStore('postgres'));
  await createOrg(gw, 'solo', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  const started = await Promise.all(['proxy-a', 'proxy-b'].map((instanceId) => startProxyProcess({ db, instanceId })));
  [a, b] = [started[0]!, started[1]!];
}, 240_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await fake?.close();
});

const ask = (i: number) => ({ model: 'openai/gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: `request number ${i}` }] });
const charged = (replies: { status: number; json<T>(): T }[]) =>
  replies.filter((r) => r.status === 200).reduce((s, r) => s + r.json<{ gateway_usage: { total_tokens: number } }>().gateway_usage.total_tokens, 0);

describe('two instances without Redis (memory counters)', () => {
  it('each instance admits at most the remaining quota, so together at most N × it, and the store records every token', async () => {
    const k = await createKey(gw, 'solo', ['--daily-tokens', '1000']);
    for (const p of [a, b]) await msUntil(async () => (await get(p.url, '/v1/usage', k.key)).status === 200, 3_000);
    // One instance spends until refused, then the other: deterministic, unlike a race.
    const spendAll = async (p: ProxyProcess) => {
      const out = [];
      for (let i = 0; i < 100; i++) {
        const r = await post(p.url, '/v1/chat/completions', k.key, ask(i));
        out.push(r);
        if (r.status === 429) break;
      }
      return out;
    };
    const replies = [...(await spendAll(a)), ...(await spendAll(b))];
    expect(replies.filter((r) => r.status === 429)).toHaveLength(2);
    const byA = charged(replies.slice(0, replies.findIndex((r) => r.status === 429)));
    const byB = charged(replies) - byA;
    expect(byA).toBeLessThanOrEqual(1000);
    expect(byB).toBeLessThanOrEqual(1000);
    // Neither instance sees the other's spending: this is the drift Redis removes.
    expect(byA + byB).toBeGreaterThan(1000);
    const served = replies.filter((r) => r.status === 200).length;
    const events = await waitForEvents(db, k.id, served);
    expect(events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0)).toBe(byA + byB);
  });

  it('an instance started later is seeded with what the store already holds', async () => {
    const k = await createKey(gw, 'solo', ['--daily-tokens', '200']);
    await msUntil(async () => (await get(a.url, '/v1/usage', k.key)).status === 200, 3_000);
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => post(a.url, '/v1/chat/completions', k.key, ask(i))));
    const spent = charged(first);
    await waitForEvents(db, k.id, first.filter((r) => r.status === 200).length);
    const c = await startProxyProcess({ db, instanceId: 'proxy-c' });
    try {
      const used = (await get(c.url, '/v1/usage', k.key)).json<{ limits: { scope: string; used: number }[] }>().limits.find((l) => l.scope === `key:${k.id}`)?.used;
      expect(used).toBe(spent);
      const late = await Promise.all(Array.from({ length: 20 }, (_, i) => post(c.url, '/v1/chat/completions', k.key, ask(i))));
      expect(charged(late)).toBeLessThanOrEqual(200 - spent);
    } finally {
      await c.stop();
    }
  });
});
