import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/shared/db/store.js';
import { cliFor } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';
import { seedUsage } from './usage-fixtures.js';

interface QuotaWindowJson {
  limit: number | null;
  used: number;
  remaining: number | null;
  resets_at: string;
}
interface QuotaJson {
  key_id: string;
  daily: QuotaWindowJson;
  monthly: QuotaWindowJson;
}
interface LimitUseJson {
  metric: string;
  window: string;
  max: number;
  used: number;
  remaining: number;
  model: string | null;
  resets_at: string | null;
}

const DAY = 86_400_000;

async function setup(dialect: (typeof DIALECTS)[number]) {
  const url = await freshStoreUrl(dialect);
  const gw = cliFor(url);
  await gw(['init']);
  const org = (await gw(['orgs', 'create', 'acme', '--provider', 'mock', '--json'])).json<{ id: string }>().id;
  const user = (await gw(['users', 'create', 'alice', '--org', 'acme', '--json'])).json<{ id: string }>().id;
  const key = (await gw(['keys', 'create', '--org', 'acme', '--user', 'alice', '--json'])).json<{ id: string }>().id;
  return { url, gw, org, user, key };
}

const ev = (orgId: string, keyId: string, userId: string | null, ts: Date, tokens: number, model = 'mock/gpt-4o-mini', costMicros = 10) => ({
  ts,
  orgId,
  keyId,
  userId,
  model,
  promptTokens: tokens - Math.floor(tokens / 2),
  completionTokens: Math.floor(tokens / 2),
  costMicros,
});

/** The latest moment before now that is still today and this month, for usage "earlier today". */
function earlierToday(now: Date, msBefore: number): Date {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return new Date(Math.max(midnight, now.getTime() - msBefore));
}

describe.each(DIALECTS)('gatewayctl quotas and limits on %s', (dialect) => {
  it('quotas set/get/list show limit, used, remaining and reset time; reset --daily zeroes the window and is audited', async () => {
    const { url, gw, org, user, key } = await setup(dialect);
    const now = new Date();
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const earlierThisMonth = now.getTime() - monthStart.getTime() > 2 * DAY ? new Date(now.getTime() - 2 * DAY) : null;
    await seedUsage(url, [
      ev(org, key, user, earlierToday(now, 60_000), 300),
      ev(org, key, user, earlierToday(now, 120_000), 200),
      ...(earlierThisMonth ? [ev(org, key, user, earlierThisMonth, 1000)] : []),
      ev(org, key, user, new Date(monthStart.getTime() - DAY), 7777), // last month: never counted
    ]);
    const set = await gw(['quotas', 'set', key, '--daily-tokens', '2000', '--monthly-tokens', '50000', '--json']);
    expect(set.code).toBe(0);
    const q = set.json<QuotaJson>();
    const monthUsed = 500 + (earlierThisMonth ? 1000 : 0);
    expect(q.key_id).toBe(key);
    expect(q.daily).toMatchObject({ limit: 2000, used: 500, remaining: 1500 });
    expect(q.monthly).toMatchObject({ limit: 50000, used: monthUsed, remaining: 50000 - monthUsed });
    const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    expect(q.daily.resets_at).toBe(tomorrow.toISOString());
    expect(q.monthly.resets_at).toBe(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString());

    const human = await gw(['quotas', 'get', key]);
    expect(human.stdout).toContain('500 of 2000 tokens used, 1500 left');
    const list = await gw(['quotas', 'list', '--org', 'acme', '--json']);
    expect(list.json<QuotaJson[]>()).toHaveLength(1);
    expect((await gw(['quotas', 'list'])).stdout).toContain('500 / 2000');

    const reset = await gw(['quotas', 'reset', key, '--daily', '--json']);
    expect(reset.code).toBe(0);
    expect(reset.json<QuotaJson>().daily).toMatchObject({ limit: 2000, used: 0, remaining: 2000 });
    expect(reset.json<QuotaJson>().monthly.used).toBe(monthUsed);
    // Usage after the reset counts again (raw events of the partial day).
    await seedUsage(url, [ev(org, key, user, new Date(Date.now() + 5), 40)]);
    const after = (await gw(['quotas', 'get', key, '--json'])).json<QuotaJson>();
    expect(after.daily.used).toBe(40);
    expect(after.monthly.used).toBe(monthUsed + 40);

    const store = await openStore(url);
    try {
      const rows = await store.db.select().from(store.t.limitResets);
      expect(rows).toMatchObject([{ scopeType: 'key', scopeId: key, window: 'day', actor: 'os:tester' }]);
    } finally {
      await store.close();
    }
    const audit = await gw(['audit', 'list', '--action', 'quotas.reset', '--json']);
    expect(audit.json<{ target: string }[]>()).toMatchObject([{ target: `key:${key}` }]);
    expect((await gw(['quotas', 'reset', key, '--monthly'])).stdout).toContain('monthly quota');
  });

  it('quotas: exits 2 on a negative quota or a missing window flag, 3 on an unknown key', async () => {
    const { gw, key } = await setup(dialect);
    expect((await gw(['quotas', 'set', key, '--daily-tokens', '-5'])).code).toBe(2);
    expect((await gw(['quotas', 'set', key, '--daily-tokens', 'lots'])).code).toBe(2);
    expect((await gw(['quotas', 'set', key])).code).toBe(2);
    expect((await gw(['quotas', 'reset', key])).code).toBe(2);
    expect((await gw(['quotas', 'reset', key, '--daily', '--monthly'])).code).toBe(2);
    const missing = await gw(['quotas', 'get', 'k000000000000', '--json']);
    expect(missing.code).toBe(3);
    expect(missing.errorJson().error.code).toBe('not_found');
    expect((await gw(['quotas', 'reset', 'k000000000000', '--daily'])).code).toBe(3);
    expect((await gw(['quotas', 'list', '--org', 'nope'])).code).toBe(3);
  });

  it('limits set/get on org, user and key scopes show current use; minute/hour use is rolling from raw events', async () => {
    const { url, gw, org, user, key } = await setup(dialect);
    const other = (await gw(['keys', 'create', '--org', 'acme', '--json'])).json<{ id: string }>().id;
    const now = Date.now();
    await seedUsage(url, [
      ev(org, key, user, new Date(now - 10_000), 100, 'mock/gpt-4o-mini', 2500),
      ev(org, key, user, new Date(now - 20_000), 50, 'mock/echo', 0),
      ev(org, key, user, new Date(now - 30 * 60_000), 1000, 'mock/gpt-4o-mini', 1000),
      ev(org, other, null, new Date(now - 5_000), 7, 'mock/echo', 0),
    ]);
    const setOrg = await gw(['limits', 'set', 'org:acme', '--rpm', '600', '--tph', '100000', '--json']);
    expect(setOrg.code).toBe(0);
    expect(setOrg.json<{ scope: string }>().scope).toBe(`org:${org}`);
    const orgLimits = (await gw(['limits', 'get', 'org:acme', '--json'])).json<{ limits: LimitUseJson[] }>().limits;
    expect(orgLimits).toEqual([
      expect.objectContaining({ metric: 'requests', window: 'minute', max: 600, used: 3, remaining: 597, resets_at: null }),
      expect.objectContaining({ metric: 'tokens', window: 'hour', max: 100000, used: 1157 }),
    ]);

    expect((await gw(['limits', 'set', 'user:alice', '--budget', '5', '--budget-period', 'day'])).code).toBe(0);
    const userLimits = (await gw(['limits', 'get', `user:${user}`, '--json'])).json<{ limits: LimitUseJson[] }>().limits;
    // The day window is the UTC day: within half an hour after midnight the oldest event is yesterday's.
    const dayStart = now - (now % 86_400_000);
    const spentToday = ((now - 10_000 >= dayStart ? 2500 : 0) + (now - 30 * 60_000 >= dayStart ? 1000 : 0)) / 1e6;
    expect(userLimits).toEqual([expect.objectContaining({ metric: 'cost', window: 'day', max: 5, remaining: 5 - spentToday })]);
    expect(userLimits[0]!.used).toBeCloseTo(spentToday, 9);

    const perModel = await gw(['limits', 'set', `key:${key}`, '--model', 'mock/echo', '--rpm', '2', '--json']);
    expect(perModel.json<{ limits: LimitUseJson[] }>().limits).toEqual([expect.objectContaining({ model: 'mock/echo', max: 2 })]);
    const keyLimits = (await gw(['limits', 'get', `key:${key}`, '--json'])).json<{ limits: LimitUseJson[] }>().limits;
    expect(keyLimits).toEqual([expect.objectContaining({ model: 'mock/echo', metric: 'requests', window: 'minute', used: 1, remaining: 1 })]);

    const human = await gw(['limits', 'get', 'org:acme']);
    expect(human.stdout).toContain('rolling');
    expect(human.stdout).toMatch(/requests.*minute.*600.*3.*597/);
    expect((await gw(['limits', 'set', 'org:acme', '--rpm', '0'])).stdout).toContain('tokens/hour');
  });

  it("a parent key's use includes its child keys' usage", async () => {
    const { url, gw, org, key } = await setup(dialect);
    await gw(['keys', 'update', key, '--tpd', '1000']);
    const child = (await gw(['keys', 'create', '--org', 'acme', '--parent', key, '--type', 'org', '--json'])).json<{ id: string }>().id;
    await seedUsage(url, [ev(org, child, null, earlierToday(new Date(), 1000), 30), ev(org, key, null, earlierToday(new Date(), 2000), 20)]);
    const uses = (await gw(['limits', 'get', `key:${key}`, '--json'])).json<{ limits: LimitUseJson[] }>().limits;
    expect(uses).toEqual([expect.objectContaining({ metric: 'tokens', window: 'day', used: 50 })]);
    expect((await gw(['quotas', 'get', key, '--json'])).json<QuotaJson>().daily.used).toBe(50);
  });

  it('limits: exits 2 on an unknown scope or no limit flags, 3 when the scope does not exist', async () => {
    const { gw } = await setup(dialect);
    const bad = await gw(['limits', 'get', 'team:x', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.errorJson().error.message).toContain('key:<id>, user:<user> or org:<org>');
    expect((await gw(['limits', 'get', 'acme'])).code).toBe(2);
    expect((await gw(['limits', 'set', 'org:acme'])).code).toBe(2);
    expect((await gw(['limits', 'set', 'org:acme', '--budget-period', 'day'])).code).toBe(2);
    expect((await gw(['limits', 'set', 'org:acme', '--budget', 'ten'])).code).toBe(2);
    expect((await gw(['limits', 'get', 'org:nope'])).code).toBe(3);
    expect((await gw(['limits', 'get', 'user:nobody'])).code).toBe(3);
    expect((await gw(['limits', 'set', 'key:k000000000000', '--rpm', '1'])).code).toBe(3);
  });
});
