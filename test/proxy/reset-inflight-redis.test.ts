// Regression test from the review of 2026-12-07 (r1): what the comment below describes was a bug, fixed then.
// Review r1: a request admitted BEFORE a quota reset and settled after the proxy reloaded it.
// Its usage event is dated at admission (billing.ts Bill.at), so the store counts it in the old
// window, not in the fresh one (`quotas get` says 0 used since the reset), and the memory backend
// agrees (chargeState skips a charge made before the counter's since). With Redis counters,
// billing's late charge (chargeLate → RedisLimitBackend.charge) adds it to the fresh counter:
// charge() keys the item with effectiveSince(window, c.since, at) = max(calendar start, reset)
// = the reset, which is the new window's key, though `at` is before the reset. The live counter
// then says 300 tokens used since the reset, the store 0; the quota just reset is 300 short.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomString } from '../../src/shared/ids.js';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness, waitForEvents } from './harness.js';
import { type Gated, M, startGated, until } from './gated-upstream.js';

interface LimitView {
  scope: string;
  metric: string;
  window: string;
  limit: number;
  used: number;
}

describe('a request admitted before a quota reset, settled after the reload (Redis counters, Postgres)', () => {
  let h: Harness;
  let up: Gated;

  beforeAll(async () => {
    up = await startGated();
    h = await startHarness({ dialect: 'postgres', proxy: { redisUrl: REDIS_URL, redisPrefix: `gw-r1-${randomString(8)}:` } });
    await createOrg(h.gw, 'r1', ['--provider', 'openai-compatible', '--base-url', up.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await up?.close();
  });

  it('is not counted in the window the reset started (live counter = store = 0)', async () => {
    const k = await createKey(h.gw, 'r1', ['--tpd', '1000']);
    const tpd = async () => {
      const u = await call(h.url, '/v1/usage', { key: k.key });
      if (u.status !== 200) return undefined;
      return u.json<{ limits: LimitView[] }>().limits.find((l) => l.scope === `key:${k.id}` && l.metric === 'tokens' && l.window === 'day');
    };
    await until('the key in the proxy', async () => ((await tpd()) ? true : undefined));

    // Admitted now, answered (300 tokens) only once the gate opens.
    const pending = chat(h.url, k.key, hello(M, { max_tokens: 10, messages: [{ role: 'user', content: 'hold burn 290 10' }] }));
    await until('the request at the upstream', () => (up.waiting() === 1 ? true : undefined));
    await ok(h.gw, ['quotas', 'reset', k.id, '--daily']);
    await until('the reset in the proxy', async () => ((await tpd())?.used === 0 ? true : undefined));
    up.open();
    const r = await pending;
    expect(r.status).toBe(200);
    const [ev] = await waitForEvents(h.db, k.id, 1);
    expect(ev!.promptTokens + ev!.completionTokens).toBe(300);

    // The store: nothing used since the reset (the event is dated before it).
    const stored = (await ok(h.gw, ['quotas', 'get', k.id])) as { daily: { used: number } };
    expect(stored.daily.used).toBe(0);
    // The live counter must agree. What happens with Redis: 300.
    expect((await tpd())!.used).toBe(0);
  });
});
