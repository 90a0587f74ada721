// `quotas list` reads every key's quotas in a fixed number of queries; it must say exactly what
// `quotas get` says key by key: children counted against parents, resets at midnight and in the
// middle of a day, last month's usage left out, keys without quotas.
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/shared/db/store.js';
import { createKey } from '../../src/shared/services/keys.js';
import { applyLimits } from '../../src/shared/services/limits.js';
import { createOrg } from '../../src/shared/services/orgs.js';
import { getQuota, listQuotas } from '../../src/shared/services/quotas.js';
import { DIALECTS } from '../helpers/stores.js';
import { contextFor, world } from './snapshot-fixtures.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe.each(DIALECTS)('quotas list on %s', (dialect) => {
  it('equals quotas get for every key, with fixed queries for all but keys reset mid-day', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const { store } = w;
    const { t } = store;
    const now = new Date(Date.UTC(2030, 0, 15, 18));
    const ctx = contextFor(store, () => now);
    const third = await createKey(w.ctx, w.orgId, { type: 'org', name: 'third' });
    const fourth = await createKey(w.ctx, w.orgId, { type: 'org', name: 'fourth' });
    await store.transaction(async (tx) => {
      await applyLimits(tx, w.ctx, { type: 'key', id: w.parent.key.id }, [
        { metric: 'tokens', window: 'day', max: 5_000 },
        { metric: 'tokens', window: 'month', max: 50_000 },
      ]);
      await applyLimits(tx, w.ctx, { type: 'key', id: third.key.id }, [{ metric: 'tokens', window: 'month', max: 900 }]);
    });
    const rollup = (day: string, keyId: string, userId: string, totalTokens: number) => ({
      day, orgId: w.orgId, keyId, userId, model: 'mock/echo', requests: 1, errors: 0, promptTokens: totalTokens, completionTokens: 0, totalTokens, costMicros: 1,
    });
    await store.db.insert(t.usageDaily).values([
      rollup('2029-12-31', w.parent.key.id, '', 1_000_000), // last month: never counted
      rollup('2030-01-02', w.parent.key.id, '', 300),
      rollup('2030-01-10', w.child.key.id, w.userId, 200),
      rollup('2030-01-15', w.child.key.id, w.userId, 40),
      rollup('2030-01-15', w.parent.key.id, '', 7),
      rollup('2030-01-03', third.key.id, '', 11),
      rollup('2030-01-12', third.key.id, '', 13),
      rollup('2030-01-15', fourth.key.id, '', 17), // = its raw events of today below
      rollup('2030-01-14', fourth.key.id, '', 19),
    ]);
    // The fourth key's raw events of today, around a reset at 12:00 that splits the day.
    const event = (requestId: string, at: Date, totalTokens: number) => ({
      requestId, ts: at, orgId: w.orgId, userId: null, keyId: fourth.key.id, model: 'mock/echo', provider: 'mock', promptTokens: totalTokens, completionTokens: 0,
      totalTokens, costMicros: 1, status: 200, errorCode: null, latencyMs: 1, ttfbMs: 1, stream: false, usageSource: 'upstream', instance: 't',
    });
    await store.db.insert(t.usageEvents).values([event('r1', new Date(Date.UTC(2030, 0, 15, 9)), 10), event('r2', new Date(Date.UTC(2030, 0, 15, 15)), 7)]);
    await store.db.insert(t.limitResets).values([
      { scopeType: 'key', scopeId: third.key.id, window: 'month', resetAt: new Date(Date.UTC(2030, 0, 10)), actor: 't' }, // at midnight
      { scopeType: 'key', scopeId: third.key.id, window: 'month', resetAt: new Date(Date.UTC(2029, 11, 20)), actor: 't' }, // older, ignored
      { scopeType: 'key', scopeId: fourth.key.id, window: 'day', resetAt: new Date(Date.UTC(2030, 0, 15, 12)), actor: 't' }, // mid-day
    ]);

    // Another org's key, with its own quota and reset: listed without --org, never mixed in with it.
    const other = await createOrg(w.ctx, 'globex', { provider: 'mock' });
    const outsider = await createKey(w.ctx, other.id, { type: 'org', name: 'outsider' });
    await store.transaction((tx) => applyLimits(tx, w.ctx, { type: 'key', id: outsider.key.id }, [{ metric: 'tokens', window: 'day', max: 77 }]));
    await store.db.insert(t.limitResets).values({ scopeType: 'key', scopeId: outsider.key.id, window: 'day', resetAt: new Date(Date.UTC(2030, 0, 15)), actor: 't' });
    await store.db.insert(t.usageDaily).values({ ...rollup('2030-01-15', outsider.key.id, '', 5), orgId: other.id });

    const all = await listQuotas(ctx);
    expect(all).toEqual(await Promise.all(all.map((q) => getQuota(ctx, q.key.id))));
    expect(all.find((q) => q.key.name === 'outsider')).toMatchObject({ daily: { limit: 77, used: 5 } });
    const listed = await listQuotas(ctx, { org: 'acme' });
    expect(listed).toEqual(all.filter((q) => q.key.orgId === w.orgId));
    expect(listed.map((q) => q.key.name)).toEqual(['parent', 'child', 'third', 'fourth']);
    const byName = Object.fromEntries(listed.map((q) => [q.key.name, q]));
    expect(byName.parent).toMatchObject({ daily: { limit: 5_000, used: 47, remaining: 4_953 }, monthly: { limit: 50_000, used: 547 } });
    expect(byName.child).toMatchObject({ daily: { limit: null, used: 40 }, monthly: { used: 240 } });
    expect(byName.third).toMatchObject({ daily: { used: 0 }, monthly: { limit: 900, used: 13, since: new Date(Date.UTC(2030, 0, 10)) } });
    expect(byName.fourth).toMatchObject({ daily: { used: 7, since: new Date(Date.UTC(2030, 0, 15, 12)) }, monthly: { used: 36 } });
  });
});
