// Writes one batch of usage records in ONE transaction: raw events (idempotent on request id),
// daily rollups and credit charges for the events actually inserted, and keys' last use.
// Both dialects run hand-written statements: prepared statements on the better-sqlite3 handle
// (sqlite-batch.ts) and unnest() over column arrays on Postgres (pg-batch.ts). Drizzle's
// per-batch SQL building cost the proxy ~90 µs of CPU a request on SQLite and about as much
// as serving the request on Postgres.
import { pgClientTransaction, type Store } from '../db/store.js';
import { utcDay } from '../limits/windows.js';
import { writeBatchPg } from './pg-batch.js';
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
 * carries one bundle) or the database is in memory; unnest() statements on Postgres (pg-batch.ts).
 */
export function batchWriter(store: Store, opts: { thread?: boolean } = {}): BatchWriter {
  const handle = store.dialect === 'sqlite' ? store.sqlite : undefined;
  if (!handle) {
    const pool = store.pool;
    if (!pool) throw new Error(`no way to write usage to a ${store.dialect} store`);
    return async (records, instance, now) => {
      if (!records.length) return { inserted: 0, duplicates: 0 };
      return pgClientTransaction(pool, (client) => writeBatchPg(client, records, instance, now));
    };
  }
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
