// Usage in a time range, read so it stays fast with millions of events: whole UTC days come
// from the usage_daily rollups, and only a range that starts mid-day (a rolling window, a
// quota reset, `--since 30d`) reads raw usage_events for the part of that first day.
import { and, eq, gte, inArray, lt, type SQL, sql } from 'drizzle-orm';
import type { AnyColumn } from 'drizzle-orm';
import type { Db } from '../db/store.js';
import type { ServiceContext } from './context.js';
import { isDayAligned, nextUtcDay, utcDay } from './usage-windows.js';

export interface UsageFilter {
  orgId?: string;
  /** One key, or a key and its descendants (their usage also counts against it). */
  keyIds?: readonly string[];
  /** '' in the rollups means "no user"; give a real user id here. */
  userId?: string;
  /** A model id, or a pattern ending in '*' */
  model?: string;
}

export interface Totals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costMicros: number;
}

export const ZERO_TOTALS: Totals = { requests: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, costMicros: 0 };

export function addTotals(a: Totals, b: Totals): Totals {
  return {
    requests: a.requests + b.requests,
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    costMicros: a.costMicros + b.costMicros,
  };
}

// Postgres returns sum(bigint) as a numeric string; SQLite as a number. Both become a JS number
// (sums of micro-dollars stay exact below 2^53, i.e. $9 billion).
const sumOf = (col: AnyColumn) => sql<number>`coalesce(sum(${col}), 0)`.mapWith(Number);
const countAll = () => sql<number>`count(*)`.mapWith(Number);

type Ctx = { store: Pick<ServiceContext['store'], 't'> };

export function rollupColumns(ctx: Ctx) {
  const d = ctx.store.t.usageDaily;
  return {
    requests: sumOf(d.requests),
    promptTokens: sumOf(d.promptTokens),
    completionTokens: sumOf(d.completionTokens),
    totalTokens: sumOf(d.totalTokens),
    costMicros: sumOf(d.costMicros),
  };
}

export function eventColumns(ctx: Ctx) {
  const e = ctx.store.t.usageEvents;
  return {
    requests: countAll(),
    promptTokens: sumOf(e.promptTokens),
    completionTokens: sumOf(e.completionTokens),
    totalTokens: sumOf(e.totalTokens),
    costMicros: sumOf(e.costMicros),
  };
}

/**
 * A limit's model is an id or a pattern ('openai/*'), matched as the proxy matches it: a
 * case-sensitive prefix. (SQLite's LIKE ignores ASCII case, which made a restarted proxy seed
 * 'OpenAI/GPT-4o' into an 'openai/*' counter that live counting never charged.)
 */
function modelCondition(col: AnyColumn, model: string): SQL {
  if (!model.endsWith('*')) return eq(col, model);
  const prefix = model.slice(0, -1);
  if (prefix === '') return sql`1 = 1`;
  return sql`substr(${col}, 1, ${[...prefix].length}) = ${prefix}`;
}

export function rollupWhere(ctx: Ctx, f: UsageFilter, fromDay?: string, toDay?: string): SQL[] {
  const d = ctx.store.t.usageDaily;
  const where: SQL[] = [];
  if (f.orgId) where.push(eq(d.orgId, f.orgId));
  if (f.keyIds) where.push(f.keyIds.length === 1 ? eq(d.keyId, f.keyIds[0]!) : inArray(d.keyId, [...f.keyIds]));
  if (f.userId) where.push(eq(d.userId, f.userId));
  if (f.model) where.push(modelCondition(d.model, f.model));
  if (fromDay) where.push(gte(d.day, fromDay));
  if (toDay) where.push(lt(d.day, toDay));
  return where;
}

export function eventWhere(ctx: Ctx, f: UsageFilter, from?: Date, to?: Date): SQL[] {
  const e = ctx.store.t.usageEvents;
  const where: SQL[] = [];
  if (f.orgId) where.push(eq(e.orgId, f.orgId));
  if (f.keyIds) where.push(f.keyIds.length === 1 ? eq(e.keyId, f.keyIds[0]!) : inArray(e.keyId, [...f.keyIds]));
  if (f.userId) where.push(eq(e.userId, f.userId));
  if (f.model) where.push(modelCondition(e.model, f.model));
  if (from) where.push(gte(e.ts, from));
  if (to) where.push(lt(e.ts, to));
  return where;
}

/**
 * How a range [from, now] splits: raw events for [from, firstWholeDay) when `from` is not a UTC
 * midnight, rollups for every day from firstWholeDay on (today's rollup holds today so far).
 */
export function splitRange(from: Date | null): { rawFrom: Date | null; rawTo: Date | null; fromDay: string | undefined } {
  if (!from) return { rawFrom: null, rawTo: null, fromDay: undefined };
  if (isDayAligned(from)) return { rawFrom: null, rawTo: null, fromDay: utcDay(from) };
  const boundary = nextUtcDay(from);
  return { rawFrom: from, rawTo: boundary, fromDay: utcDay(boundary) };
}

/** Totals of everything matching `f` from `from` (null = all time) until now. */
export async function usageSince(db: Db, ctx: Ctx, f: UsageFilter, from: Date | null): Promise<Totals> {
  if (f.keyIds && f.keyIds.length === 0) return ZERO_TOTALS;
  const { t } = ctx.store;
  const range = splitRange(from);
  const [rolled] = await db
    .select(rollupColumns(ctx))
    .from(t.usageDaily)
    .where(and(...rollupWhere(ctx, f, range.fromDay)));
  let total = rolled ?? ZERO_TOTALS;
  if (range.rawFrom && range.rawTo) {
    const [raw] = await db
      .select(eventColumns(ctx))
      .from(t.usageEvents)
      .where(and(...eventWhere(ctx, f, range.rawFrom, range.rawTo)));
    if (raw) total = addTotals(total, raw);
  }
  return total;
}
