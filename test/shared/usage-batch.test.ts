// The hand-written usage batch writers (sqlite-batch.ts, pg-batch.ts): every field of an event
// stored exactly as recorded, whatever its text; the rollups, credit charges and last use of what
// was inserted; and two instances writing overlapping batches at once on one store.
import { asc, eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { batchWriter } from '../../src/shared/usage/write-batch.js';
import type { UsageRecord } from '../../src/shared/usage/types.js';
import { DIALECTS } from '../helpers/stores.js';
import { type World, world } from './snapshot-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Text a hand-built array literal or statement could get wrong: quotes, backslashes, the
// array syntax's own braces and commas, a NULL that is text, spaces, non-ASCII, and empty.
const AWKWARD = ['a "quoted" model', 'back\\slash\\', '{braces,and,commas}', 'NULL', 'null', ' spaced out ', 'ünïcödé/模型 🚀', "it's", 'tab\there', 'line\nbreak', ''];

function base(w: World, i: number): UsageRecord {
  return {
    requestId: `req_batch_${i}`,
    ts: 1_765_432_100_123 + i * 1_001,
    orgId: w.orgId,
    userId: i % 2 ? w.userId : null,
    keyId: i % 2 ? w.child.key.id : w.parent.key.id,
    ancestorKeyIds: [],
    model: AWKWARD[i % AWKWARD.length]!,
    provider: i % 3 ? 'openrouter' : 'openai-compatible',
    promptTokens: 10 + i,
    completionTokens: i % 4 === 0 ? 0 : 20 + i,
    totalTokens: 10 + i + (i % 4 === 0 ? 0 : 20 + i),
    costMicros: i === 3 ? 9_000_000_000_123 : 100 + i,
    status: i % 5 === 0 ? 502 : 200,
    errorCode: i % 5 === 0 ? 'upstream_error' : null,
    latencyMs: 12.5 + i,
    ttfbMs: i % 3 === 0 ? null : 3.4 + i,
    stream: i % 2 === 0,
    usageSource: (['upstream', 'estimated', 'none'] as const)[i % 3]!,
    creditScopes: i % 2 ? [`user:${w.userId}`, `org:${w.orgId}`] : [],
  };
}

describe.each(DIALECTS)('usage batch writer on %s', (dialect) => {
  async function setup() {
    const w = await world(dialect);
    cleanups.push(() => w.store.close());
    return w;
  }

  it('stores every field of every event exactly as recorded, whatever its text', async () => {
    const w = await setup();
    const records = Array.from({ length: 24 }, (_, i) => base(w, i));
    const write = batchWriter(w.store);
    const now = new Date(1_765_500_000_987);
    expect(await write(records, 'inst "1"', now)).toEqual({ inserted: 24, duplicates: 0 });

    const { db, t } = w.store;
    const rows = await db.select().from(t.usageEvents).orderBy(asc(t.usageEvents.ts));
    expect(rows).toHaveLength(24);
    rows.forEach((row, i) => {
      const r = records[i]!;
      expect({ ...row, ts: (row.ts as Date).getTime() }).toEqual({
        requestId: r.requestId,
        ts: r.ts,
        orgId: r.orgId,
        userId: r.userId,
        keyId: r.keyId,
        model: r.model,
        provider: r.provider,
        promptTokens: r.promptTokens,
        completionTokens: r.completionTokens,
        totalTokens: r.totalTokens,
        costMicros: r.costMicros,
        status: r.status,
        errorCode: r.errorCode,
        latencyMs: Math.round(r.latencyMs),
        ttfbMs: r.ttfbMs === null ? null : Math.round(r.ttfbMs),
        stream: r.stream,
        usageSource: r.usageSource,
        instance: 'inst "1"',
      });
    });

    // Rollups: one row per (day, key, user, model), summing exactly the events in it.
    const daily = await db.select().from(t.usageDaily);
    expect(daily.reduce((s, d) => s + Number(d.requests), 0)).toBe(24);
    expect(daily.reduce((s, d) => s + Number(d.costMicros), 0)).toBe(records.reduce((s, r) => s + r.costMicros, 0));
    expect(daily.reduce((s, d) => s + Number(d.errors), 0)).toBe(records.filter((r) => r.status >= 400).length);
    for (const d of daily) {
      const mine = records.filter((r) => r.model === d.model && r.keyId === d.keyId && (r.userId ?? '') === d.userId);
      expect(Number(d.totalTokens)).toBe(mine.reduce((s, r) => s + r.totalTokens, 0));
    }
    expect(new Set(daily.map((d) => d.model))).toEqual(new Set(AWKWARD));

    // Credit charges: one ledger row per scope, by this instance, dated by the batch.
    const ledger = await db.select().from(t.creditLedger).where(eq(t.creditLedger.kind, 'charge'));
    const charged = records.filter((r) => r.creditScopes.length > 0).reduce((s, r) => s + r.costMicros, 0);
    expect(ledger.map((l) => [`${l.scopeType}:${l.scopeId}`, Number(l.amountMicros), l.actor, (l.createdAt as Date).getTime()]).sort()).toEqual(
      [
        [`org:${w.orgId}`, -charged, 'proxy:inst "1"', now.getTime()],
        [`user:${w.userId}`, -charged, 'proxy:inst "1"', now.getTime()],
      ].sort(),
    );

    // Last use: each key's latest event; an older batch afterwards does not move it back.
    const lastOf = async (id: string) => ((await db.select({ at: t.apiKeys.lastUsedAt }).from(t.apiKeys).where(eq(t.apiKeys.id, id)))[0]?.at as Date | null)?.getTime();
    const latest = (key: string) => Math.max(...records.filter((r) => r.keyId === key).map((r) => r.ts));
    expect(await lastOf(w.child.key.id)).toBe(latest(w.child.key.id));
    expect(await lastOf(w.parent.key.id)).toBe(latest(w.parent.key.id));
    await write([{ ...base(w, 1), requestId: 'req_batch_old', ts: 1_700_000_000_000 }], 'inst "1"', now);
    expect(await lastOf(w.child.key.id)).toBe(latest(w.child.key.id));
  });

  it('a model name with a NUL does not fail the batch (Postgres text cannot hold one): stored with U+FFFD there, as is on SQLite', async () => {
    const w = await setup();
    const write = batchWriter(w.store);
    const records = [
      { ...base(w, 1), requestId: 'req_nul_1', model: 'a\u0000b' },
      { ...base(w, 1), requestId: 'req_nul_2', model: 'a\uFFFDb' },
      { ...base(w, 1), requestId: 'req_nul_3', model: 'plain' },
    ];
    expect(await write(records, 'i', new Date())).toEqual({ inserted: 3, duplicates: 0 });
    const { db, t } = w.store;
    const models = (await db.select({ m: t.usageEvents.model }).from(t.usageEvents).orderBy(asc(t.usageEvents.requestId))).map((r) => r.m);
    const nul = dialect === 'postgres' ? 'a\uFFFDb' : 'a\u0000b';
    expect(models).toEqual([nul, 'a\uFFFDb', 'plain']);
    const daily = await db.select().from(t.usageDaily);
    expect(daily.reduce((s, d) => s + Number(d.requests), 0)).toBe(3);
  });

  it('two instances writing overlapping batches at once: every event once, rollups exact, no batch lost to a deadlock', async () => {
    const w = await setup();
    // On Postgres each write takes its own pooled connection: the two run truly at once.
    const writers = [batchWriter(w.store), batchWriter(w.store)];
    const keys = [w.child.key.id, w.parent.key.id];
    const models = ['m/a', 'm/b', 'm/c', 'm/d'];
    let seq = 0;
    // Each instance's batches touch the same rollup rows and keys, in opposite orders.
    const batch = (instance: number) =>
      Array.from({ length: 40 }, (_, j) => {
        const k = instance === 0 ? j : 39 - j;
        return { ...base(w, 0), requestId: `req_par_${seq++}`, keyId: keys[Math.floor(k / 4) % 2]!, userId: null, model: models[k % 4]!, totalTokens: 7, costMicros: 5, status: 200, errorCode: null };
      });
    const failures: unknown[] = [];
    await Promise.all(
      writers.map(async (write, i) => {
        for (let b = 0; b < 15; b++) await write(batch(i), `inst-${i}`, new Date()).catch((err: unknown) => failures.push(err));
      }),
    );
    expect(failures).toEqual([]);
    const { db, t } = w.store;
    const events = await db.select({ id: t.usageEvents.requestId }).from(t.usageEvents);
    expect(events).toHaveLength(2 * 15 * 40);
    const daily = await db.select().from(t.usageDaily);
    expect(daily.reduce((s, d) => s + Number(d.requests), 0)).toBe(1200);
    expect(daily.reduce((s, d) => s + Number(d.totalTokens), 0)).toBe(1200 * 7);
    expect(daily).toHaveLength(keys.length * models.length);
  });
});
