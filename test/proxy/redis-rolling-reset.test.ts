// Regression test from the review of 2026-12-07 (r3): what the comment below describes was a bug, fixed then.
// Review r3: on Redis counters, the `resets_at` of a rolling (minute/hour) window in GET
// /v1/usage (and in gateway_usage / x-ratelimit-reset-* after a settlement) is computed as if the
// newest bucket were the current one (redis-backend.ts state(): bucketOf(now) when bucketAt is
// null), so it always says "one window from now". The memory backend answers from the newest
// bucket, and so does the 429's own reset (freeAt). With an exhausted --rpm, 50 s after the
// requests, /v1/usage on Redis says the window resets 61 s from now while the refusal, and the
// memory backend, say 11 s.
import { randomString } from '../../src/shared/ids.js';
import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

type Usage = { limits: { metric: string; window: string; used: number; remaining: number; resets_at: string | null }[] };

async function probe(redis: boolean) {
  // A whole second, so bucket arithmetic is plain: requests at t0, questions at t0 + 50 s.
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  let clock = t0;
  h = await startHarness({ proxy: { now: () => clock, ...(redis ? { redisUrl: REDIS_URL, redisPrefix: `gw-r3-${randomString(8)}:` } : {}) } });
  await createOrg(h.gw, 'acme');
  const key = await createKey(h.gw, 'acme', ['--rpm', '2']);
  await synced();
  expect((await chat(h.url, key.key, hello('mock/echo'))).status).toBe(200);
  expect((await chat(h.url, key.key, hello('mock/echo'))).status).toBe(200);
  clock = t0 + 50_000;
  const refused = await chat(h.url, key.key, hello('mock/echo'));
  const usage = (await call(h.url, '/v1/usage', { key: key.key })).json<Usage>();
  const rpm = usage.limits.find((l) => l.metric === 'requests' && l.window === 'minute')!;
  return {
    refused: refused.status,
    refusal_resets_at: refused.json<{ error: { resets_at: string } }>().error.resets_at,
    retry_after: refused.headers['retry-after'],
    usage_used: rpm.used,
    usage_resets_at: rpm.resets_at,
    expected: new Date(t0 + 1_000 + 60_000).toISOString(),
  };
}

describe('resets_at of a rolling window in GET /v1/usage', () => {
  it('memory counters: the window of two requests made 50 s ago frees 11 s from now (t0 + 61 s)', async () => {
    const p = await probe(false);
    expect(p).toEqual({ refused: 429, refusal_resets_at: p.expected, retry_after: '11', usage_used: 2, usage_resets_at: p.expected, expected: p.expected });
  });

  it('Redis counters: the same, not "61 s from now"', async () => {
    const p = await probe(true);
    expect(p).toEqual({ refused: 429, refusal_resets_at: p.expected, retry_after: '11', usage_used: 2, usage_resets_at: p.expected, expected: p.expected });
  });
});
