// Regression test from the review of 2026-12-07 (r1): what the comment below describes was a bug, fixed then.
// Review r1: a stream without max_tokens reserves the default cap (100 here) and asks for more
// room ("extension") as its text outgrows it. The extension is judged with the counters the
// request was ADMITTED under (AdmissionPlan.counters: their ids, their `max`, their `since`), not
// with the configuration in force when the extension is asked for. So a change made while the
// stream runs is ignored by the stream:
//   - a quota reset: the extension lands on the pre-reset counter (memory: dropped by retain() and
//     seeded again from the store since midnight; Redis: the pre-reset key) and the stream is cut
//     by usage that was reset;
//   - a limit raised: the old max cuts it; a limit removed: the removed limit still cuts it;
//   - credits topped up: the old grant cuts it (insufficient_credits);
//   - a limit lowered: the old, higher max lets it run past the new limit.
// Every stream here: one 20-byte event, a pause (the change is made and seen by the proxy), then
// ten more 20-byte events (a delivered-token bound of 220, so extensions up to 300 completion
// tokens), then usage {prompt 10, completion 55}. The prompt's bound is 41 tokens ('hello there
// world', one message), so the admission reserves 41 + 100 = 141 tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomString } from '../../src/shared/ids.js';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, type Harness, hello, type KeyJson, ok, startHarness, waitForEvents } from './harness.js';
import { type Gated, M, startGated, until } from './gated-upstream.js';

interface LimitView {
  scope: string;
  metric: string;
  window: string;
  limit: number;
  used: number;
}
interface CreditView {
  scope: string;
  granted_usd: number;
}

const setups = [
  { name: 'memory counters, SQLite', dialect: 'sqlite' as const, redis: false },
  { name: 'Redis counters, Postgres', dialect: 'postgres' as const, redis: true },
];

describe.each(setups)('a stream without max_tokens whose configuration changes mid-stream ($name)', ({ dialect, redis }) => {
  let h: Harness;
  let up: Gated;

  beforeAll(async () => {
    up = await startGated();
    h = await startHarness({
      dialect,
      proxy: { defaultMaxTokens: 100, ...(redis ? { redisUrl: REDIS_URL, redisPrefix: `gw-r1-${randomString(8)}:` } : {}) },
    });
    await createOrg(h.gw, 'r1', ['--provider', 'openai-compatible', '--base-url', up.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await up?.close();
  });

  const usage = async (k: KeyJson) => (await call(h.url, '/v1/usage', { key: k.key })).json<{ limits: LimitView[]; credits: CreditView[] }>();
  const tpd = async (k: KeyJson) => (await usage(k)).limits.find((l) => l.scope === `key:${k.id}` && l.metric === 'tokens' && l.window === 'day');
  const ready = (k: KeyJson) => until('the key in the proxy', async () => ((await call(h.url, '/v1/usage', { key: k.key })).status === 200 ? true : undefined));

  /** Starts the stream, waits until it is paused at the gate, runs `change`, lets it finish. */
  async function streamAcross(k: KeyJson, change: () => Promise<void>) {
    const before = up.waiting();
    const pending = chat(h.url, k.key, hello(M, { stream: true }));
    await until('the stream at the gate', () => (up.waiting() === before + 1 ? true : undefined));
    await change();
    up.open();
    const r = await pending;
    const [ev] = await waitForEvents(h.db, k.id, 1 + (await burned(k)));
    return { r, ev: ev! };
  }
  const burns = new Map<string, number>();
  const burned = async (k: KeyJson) => burns.get(k.id) ?? 0;
  async function burn(k: KeyJson, prompt: number, completion: number) {
    const r = await chat(h.url, k.key, hello(M, { messages: [{ role: 'user', content: `burn ${prompt} ${completion}` }] }));
    expect(r.status).toBe(200);
    burns.set(k.id, (burns.get(k.id) ?? 0) + 1);
    await waitForEvents(h.db, k.id, burns.get(k.id)!);
  }
  const streamEvent = async (k: KeyJson) => (await waitForEvents(h.db, k.id, 1 + (await burned(k)))).find((e) => e.stream)!;

  it('control: with 820 of 1,000 daily tokens used and nothing changed, the stream is cut (quota_exceeded)', async () => {
    const k = await createKey(h.gw, 'r1', ['--tpd', '1000']);
    await ready(k);
    await burn(k, 810, 10);
    const { r } = await streamAcross(k, async () => {});
    expect(r.status).toBe(200);
    expect(r.text).toContain('"code":"quota_exceeded"');
    const ev = await streamEvent(k);
    expect(ev.errorCode).toBe('quota_exceeded');
  });

  it('quota reset mid-stream: the stream runs on the fresh quota and is not cut by the usage that was reset', async () => {
    const k = await createKey(h.gw, 'r1', ['--tpd', '1000']);
    await ready(k);
    await burn(k, 810, 10); // 820 of 1,000 used today
    const { r } = await streamAcross(k, async () => {
      await ok(h.gw, ['quotas', 'reset', k.id, '--daily']);
      // The proxy has reloaded: the key's daily counter is the fresh one (nothing used since the reset).
      await until('the reset in the proxy', async () => ((await tpd(k))?.used === 0 ? true : undefined));
    });
    expect(r.status).toBe(200);
    // What happens: the extension is reserved on the pre-reset counter (820 used) and the stream is
    // cut with quota_exceeded, though the quota was reset and 1,000 tokens are free.
    expect(r.text).not.toContain('quota_exceeded');
    const ev = await streamEvent(k);
    expect({ errorCode: ev.errorCode, promptTokens: ev.promptTokens, completionTokens: ev.completionTokens }).toEqual({ errorCode: null, promptTokens: 10, completionTokens: 55 });
  });

  it('limit raised mid-stream (200 → 100,000 tokens a day): the stream is not cut by the old max', async () => {
    const k = await createKey(h.gw, 'r1', ['--tpd', '200']);
    await ready(k);
    const { r } = await streamAcross(k, async () => {
      await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--tpd', '100000']);
      await until('the new max in the proxy', async () => ((await tpd(k))?.limit === 100000 ? true : undefined));
    });
    expect(r.status).toBe(200);
    // What happens: the extension (141 + 100 = 241) is checked against the max of 200 the request
    // was admitted under, and the stream is cut.
    expect(r.text).not.toContain('quota_exceeded');
    const ev = await streamEvent(k);
    expect({ errorCode: ev.errorCode, completionTokens: ev.completionTokens }).toEqual({ errorCode: null, completionTokens: 55 });
  });

  it('limit removed mid-stream: the stream is not cut by a limit that no longer exists', async () => {
    const k = await createKey(h.gw, 'r1', ['--tpd', '300']);
    await ready(k);
    await burn(k, 110, 10); // 120 of 300 used today; the stream's admission takes 141 more
    const { r } = await streamAcross(k, async () => {
      await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--tpd', '0']);
      await until('the limit gone from the proxy', async () => ((await usage(k)).limits.length === 0 ? true : undefined));
    });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('quota_exceeded');
    const ev = await streamEvent(k);
    expect({ errorCode: ev.errorCode, completionTokens: ev.completionTokens }).toEqual({ errorCode: null, completionTokens: 55 });
  });

  it('limit lowered mid-stream (100,000 → 200 tokens a day): the extensions respect the new max and the stream is cut', async () => {
    const k = await createKey(h.gw, 'r1', ['--tpd', '100000']);
    await ready(k);
    const { r } = await streamAcross(k, async () => {
      await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--tpd', '200']);
      await until('the new max in the proxy', async () => ((await tpd(k))?.limit === 200 ? true : undefined));
    });
    expect(r.status).toBe(200);
    // What happens: extensions of 100 and 100 are granted against the old max of 100,000: the
    // stream takes 141 + 200 = 341 on a counter whose limit is 200, and is served whole.
    expect(r.text).toContain('"code":"quota_exceeded"');
    const ev = await streamEvent(k);
    expect(ev.errorCode).toBe('quota_exceeded');
  });

  it('credits topped up mid-stream: the stream is not cut with insufficient_credits by the old grant', async () => {
    // 1 micro-dollar a completion token; the key holds 150 micro-dollars: the admission reserves
    // 100 (the default cap), an extension 100 more (200 > 150).
    await ok(h.gw, ['models', 'refresh', '--org', 'r1']);
    await ok(h.gw, ['models', 'price', 'set', M, '--prompt', '0', '--completion', '1']);
    const k = await createKey(h.gw, 'r1', ['--credits', '0.00015']);
    await ready(k);
    await until('the price in the proxy', async () => ((await usage(k)).credits.length === 1 ? true : undefined));
    const { r } = await streamAcross(k, async () => {
      await ok(h.gw, ['credits', 'add', `key:${k.id}`, '1']);
      await until('the top-up in the proxy', async () => ((await usage(k)).credits[0]?.granted_usd === 1.00015 ? true : undefined));
    });
    expect(r.status).toBe(200);
    // What happens: the extension is checked against the 150 micro-dollars granted at admission.
    expect(r.text).not.toContain('insufficient_credits');
    const ev = await streamEvent(k);
    expect({ errorCode: ev.errorCode, completionTokens: ev.completionTokens, costMicros: ev.costMicros }).toEqual({ errorCode: null, completionTokens: 55, costMicros: 55 });
  });
});
