// Regression test from the review of 2026-12-07 (r3): what the comment below describes was a bug, fixed then
// (a prune now keeps the raw events of the days quota resets read, and says which).
// Review r3: `usage prune --before <start of today>` is accepted ("today's raw events feed rolling
// limits and quota resets"), but a monthly quota reset earlier this month also reads raw events:
// the part of the reset's day after the reset is counted from usage_events (usage-totals.ts
// splitRange), not from the rollups. Pruning those events silently gives the key back what it
// spent after the reset: `quotas get`, `limits get` and a restarted proxy's seed (GET /v1/usage)
// all drop to what the rollups of later days hold (the key may spend its quota again).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/shared/db/store.js';
import { type RunningProxy, startProxy } from '../../src/proxy/main.js';
import { call, createKey, createOrg, freshStore, type Gw, MASTER_KEY, ok } from '../proxy/harness.js';
import { seedUsage } from './usage-fixtures.js';

const DAY = 86_400_000;
const now = new Date();
const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
const yesterday = today - DAY;
// The reset's day must be an earlier day of this month: not possible on the 1st (UTC).
const firstOfMonth = now.getUTCDate() === 1;

let db: string;
let gw: Gw;
let key: { id: string; key: string };
let orgId: string;
let proxy: RunningProxy | undefined;

beforeAll(async () => {
  ({ db, gw } = await freshStore('sqlite'));
  orgId = (await createOrg(gw, 'acme')).id;
  key = await createKey(gw, 'acme', ['--monthly-tokens', '1000']);
  if (firstOfMonth) return;
  await seedUsage(db, [
    // Before the reset: not counted. After it: 200 tokens count against the monthly quota.
    { ts: new Date(yesterday + 6 * 3_600_000), orgId, keyId: key.id, model: 'mock/echo', promptTokens: 60, completionTokens: 40, costMicros: 10 },
    { ts: new Date(yesterday + 18 * 3_600_000), orgId, keyId: key.id, model: 'mock/echo', promptTokens: 150, completionTokens: 50, costMicros: 20 },
    // Forty days ago: no reset reads that day, so it is pruned.
    { ts: new Date(today - 40 * DAY), orgId, keyId: key.id, model: 'mock/echo', promptTokens: 5, completionTokens: 5, costMicros: 1 },
  ]);
  // `quotas reset --monthly` run yesterday at noon (the CLI dates it "now", so it is written here).
  const store = await openStore(db);
  try {
    await store.db.insert(store.t.limitResets).values({ scopeType: 'key', scopeId: key.id, window: 'month', resetAt: new Date(yesterday + 12 * 3_600_000), actor: 'test' });
  } finally {
    await store.close();
  }
}, 60_000);
afterAll(async () => {
  await proxy?.close();
});

type Quota = { monthly: { used: number; remaining: number } };

describe.skipIf(firstOfMonth)('usage prune and the raw part of a reset day', () => {
  it('a monthly quota reset yesterday keeps counting the 200 tokens used after it once raw events before today are pruned', async () => {
    const before = (await ok(gw, ['quotas', 'get', key.id])) as Quota;
    expect(before.monthly.used).toBe(200);
    expect(before.monthly.remaining).toBe(800);

    // Allowed: the cut is the start of today. The reset's day keeps its raw events.
    const pruned = (await ok(gw, ['usage', 'prune', '--before', new Date(today).toISOString(), '--yes'])) as { deleted: number; kept_days: string[] };
    expect(pruned).toMatchObject({ deleted: 1, kept_days: [new Date(yesterday).toISOString().slice(0, 10)] });

    const after = (await ok(gw, ['quotas', 'get', key.id])) as Quota;
    const limits = (await ok(gw, ['limits', 'get', `key:${key.id}`])) as { limits: { metric: string; window: string; used: number }[] };
    // A proxy started now seeds its counter from the same reading.
    proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50 });
    const usage = (await call(proxy.url, '/v1/usage', { key: key.key })).json<{ limits: { metric: string; window: string; used: number; remaining: number }[] }>();
    const live = usage.limits.find((l) => l.metric === 'tokens' && l.window === 'month');

    expect({
      quotas_get_used: after.monthly.used,
      limits_get_used: limits.limits.find((l) => l.metric === 'tokens' && l.window === 'month')?.used,
      proxy_used: live?.used,
      proxy_remaining: live?.remaining,
    }).toEqual({ quotas_get_used: 200, limits_get_used: 200, proxy_used: 200, proxy_remaining: 800 });
  });

});
