// Regression test from the review of 2026-12-07 (of that day's own fixes): what the comment below describes was a bug, fixed then.
// keys delete refuses a child key only when usage_events holds a row for it. After
// `usage prune` (events before today may be pruned), the child's usage lives on in usage_daily,
// which the seeder reads through the key tree for monthly/total limits: the child is deleted and
// its usage drops out of its parent's monthly quota.
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { openStore } from '../../src/shared/db/store.js';
import { createKey, createOrg, freshStore, ok } from './harness.js';

describe('keys delete after usage prune', () => {
  it('refuses a child key whose usage is only in the daily rollups (it still counts against its parent)', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'acme');
    const parent = await createKey(gw, 'acme', ['--monthly-tokens', '100000']);
    const child = await createKey(gw, 'acme', ['--parent', parent.id]);
    const store = await openStore(db);
    try {
      const [row] = await store.db.select().from(store.t.apiKeys).where(eq(store.t.apiKeys.id, child.id));
      const now = new Date();
      const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().slice(0, 10);
      // What a request of the child earlier this month leaves once its raw events are pruned.
      await store.db.insert(store.t.usageDaily).values({
        day: monthStart, orgId: row!.orgId, keyId: child.id, userId: row!.userId ?? '', model: 'mock/echo',
        requests: 1, errors: 0, promptTokens: 100, completionTokens: 400, totalTokens: 500, costMicros: 0,
      } as never);
    } finally {
      await store.close();
    }
    const monthly = async () => ((await ok(gw, ['quotas', 'get', parent.id])) as { monthly: { used: number } }).monthly.used;
    expect(await monthly()).toBe(500);
    const r = await gw(['keys', 'delete', child.id, '--yes', '--json']);
    expect({ code: r.code, parentMonthlyUsed: await monthly() }).toEqual({ code: 4, parentMonthlyUsed: 500 });
  });
});
