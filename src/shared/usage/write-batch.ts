// Writes one batch of usage records in ONE transaction: raw events (idempotent on request id),
// daily rollups and credit charges for the events actually inserted, and keys' last use.
// On SQLite the batch runs as prepared statements on the better-sqlite3 handle (sqlite-batch.ts):
// Drizzle's per-batch SQL building cost the proxy ~90 µs of CPU per request. Postgres keeps
// the Drizzle statements below (set-based, one round trip each).
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db, Store } from '../db/store.js';
import { utcDay } from '../limits/windows.js';
import { sqliteBatchWriter } from './sqlite-batch.js';
import { sqliteWorkerWriter } from './sqlite-writer.js';
import type { UsageRecord } from './types.js';

export type BatchWriter = ((records: readonly UsageRecord[], instance: string, now: Date) => Promise<BatchResult>) & {
  /** Where SQLite batches run: 'worker' (a thread of their own) or the caller's thread. */
  readonly thread?: 'worker';
  /** Releases what the writer holds (its thread); called once the last batch is written. */
  close?(): Promise<void>;
};

/**
 * The writer for this store: on a SQLite file, prepared statements on a thread of their own
 * (sqlite-writer.ts); in-thread when there is no worker script (a standalone executable
 * carries one bundle) or the database is in memory; Drizzle on Postgres.
 */
export function batchWriter(store: Store, opts: { thread?: boolean } = {}): BatchWriter {
  const handle = store.dialect === 'sqlite' ? store.sqlite : undefined;
  if (!handle) return (records, instance, now) => writeBatch(store, records, instance, now);
  // Prepared on the first write, inside its transaction: a failure is that write's failure.
  let write: ReturnType<typeof sqliteBatchWriter> | null = null;
  const inThread: BatchWriter = async (records, instance, now) => {
    if (!records.length) return { inserted: 0, duplicates: 0 };
    // Without waiting for a write lock another connection holds (a gatewayctl transaction, a
    // sqlite3 shell, a backup): the sink retries with backoff, the records stay buffered, and
    // the event loop keeps serving meanwhile.
    return store.transaction(
      async () => {
        write ??= sqliteBatchWriter(handle);
        return write(records, instance, now);
      },
      { noWait: true },
    );
  };
  if (opts.thread !== true || handle.memory || store.bundled) return inThread;
  return sqliteWorkerWriter(handle.name, () => Number(handle.pragma('busy_timeout', { simple: true })), inThread) ?? inThread;
}

export interface BatchResult {
  inserted: number;
  duplicates: number;
}

export async function writeBatch(store: Store, records: readonly UsageRecord[], instance: string, now: Date): Promise<BatchResult> {
  if (!records.length) return { inserted: 0, duplicates: 0 };
  return store.transaction(async (tx) => {
    const { t } = store;
    const rows = await tx
      .insert(t.usageEvents)
      .values(
        records.map((r) => ({
          requestId: r.requestId,
          ts: new Date(r.ts),
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
          instance,
        })),
      )
      .onConflictDoNothing()
      .returning({ requestId: t.usageEvents.requestId });
    const insertedIds = new Set(rows.map((r) => r.requestId));
    // A duplicate id within the batch itself is inserted once; later copies are duplicates too.
    const fresh: UsageRecord[] = [];
    for (const r of records) {
      if (insertedIds.delete(r.requestId)) fresh.push(r);
    }
    await upsertRollups(tx, store, rollupGroups(fresh));
    await chargeCredits(tx, store, fresh, instance, now);
    await touchKeys(tx, store, fresh);
    return { inserted: fresh.length, duplicates: records.length - fresh.length };
  });
}

export interface RollupRow {
  day: string;
  orgId: string;
  keyId: string;
  userId: string;
  model: string;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costMicros: number;
}

/** usage_daily increments of freshly inserted records, one row per (day, org, key, user, model). */
export function rollupGroups(records: readonly UsageRecord[]): RollupRow[] {
  const groups = new Map<string, RollupRow>();
  let dayStart = Number.NaN;
  let day = '';
  // The group of the previous record: a batch is mostly runs of one key and model, and those
  // skip building and hashing the composite id (a string of five parts per record).
  let last: RollupRow | null = null;
  let lastUser: string | null = null;
  for (const r of records) {
    // A batch is a second or so of events: the day's text is computed once per day seen.
    if (!(r.ts >= dayStart && r.ts < dayStart + 86_400_000)) {
      dayStart = r.ts - (((r.ts % 86_400_000) + 86_400_000) % 86_400_000);
      day = utcDay(r.ts);
    }
    let g: RollupRow;
    if (last !== null && last.day === day && last.orgId === r.orgId && last.keyId === r.keyId && lastUser === r.userId && last.model === r.model) g = last;
    else {
      // NUL-separated: ids never hold NUL, and the model, which might, comes last.
      const id: string = `${day}\u0000${r.orgId}\u0000${r.keyId}\u0000${r.userId ?? ''}\u0000${r.model}`;
      const found = groups.get(id);
      if (found === undefined) {
        g = { day, orgId: r.orgId, keyId: r.keyId, userId: r.userId ?? '', model: r.model, requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, costMicros: 0 };
        groups.set(id, g);
      } else g = found;
      last = g;
      lastUser = r.userId;
    }
    g.requests += 1;
    g.errors += r.status >= 400 ? 1 : 0;
    g.promptTokens += r.promptTokens;
    g.completionTokens += r.completionTokens;
    g.totalTokens += r.totalTokens;
    g.costMicros += r.costMicros;
  }
  return [...groups.values()];
}

/** Credit charged per scope ('org:…', 'key:…', 'user:…') by freshly inserted records. */
export function creditCharges(records: readonly UsageRecord[]): Map<string, number> {
  const charges = new Map<string, number>();
  for (const r of records) {
    if (r.costMicros <= 0) continue;
    for (const scope of r.creditScopes) charges.set(scope, (charges.get(scope) ?? 0) + r.costMicros);
  }
  return charges;
}

/** The latest use of each key among freshly inserted records. */
export function lastUses(records: readonly UsageRecord[]): Map<string, number> {
  const latest = new Map<string, number>();
  for (const r of records) latest.set(r.keyId, Math.max(latest.get(r.keyId) ?? 0, r.ts));
  return latest;
}

async function upsertRollups(tx: Db, store: Store, groups: readonly RollupRow[]): Promise<void> {
  if (!groups.length) return;
  const d = store.t.usageDaily;
  // Table-qualified: Postgres finds a bare column name ambiguous next to `excluded`.
  const add = (col: string) => sql`${sql.identifier('usage_daily')}.${sql.identifier(col)} + excluded.${sql.identifier(col)}`;
  await tx
    .insert(d)
    .values([...groups])
    .onConflictDoUpdate({
      target: [d.day, d.orgId, d.keyId, d.userId, d.model],
      set: {
        requests: add('requests'),
        errors: add('errors'),
        promptTokens: add('prompt_tokens'),
        completionTokens: add('completion_tokens'),
        totalTokens: add('total_tokens'),
        costMicros: add('cost_micros'),
      },
    });
}

async function chargeCredits(tx: Db, store: Store, records: readonly UsageRecord[], instance: string, now: Date): Promise<void> {
  const charges = creditCharges(records);
  if (!charges.size) return;
  await tx.insert(store.t.creditLedger).values(
    [...charges].map(([scope, micros]) => {
      const i = scope.indexOf(':');
      return {
        scopeType: scope.slice(0, i),
        scopeId: scope.slice(i + 1),
        amountMicros: -micros,
        kind: 'charge',
        reason: 'usage',
        actor: `proxy:${instance}`,
        createdAt: now,
      };
    }),
  );
}

async function touchKeys(tx: Db, store: Store, records: readonly UsageRecord[]): Promise<void> {
  const k = store.t.apiKeys;
  for (const [id, ts] of lastUses(records)) {
    const at = new Date(ts);
    await tx
      .update(k)
      .set({ lastUsedAt: at })
      .where(and(eq(k.id, id), or(isNull(k.lastUsedAt), lt(k.lastUsedAt, at))));
  }
}
