// Reading usage: summaries from the daily rollups (fast with millions of events), paged raw
// events of one key, a constant-memory iterator for exports, and pruning of raw events.
import { and, asc, desc, eq, gt, gte, lt, or, type SQL, sql } from 'drizzle-orm';
import type { UsageEvent } from '../db/schema.js';
import type { Db } from '../db/store.js';
import { usageError } from '../errors.js';
import type { ServiceContext } from './context.js';
import { recordChange } from './audit.js';
import { requireKey, requireOrg, requireUser } from './resolve.js';
import {
  addTotals,
  eventColumns,
  eventWhere,
  rollupColumns,
  rollupWhere,
  splitRange,
  type Totals,
  type UsageFilter,
  ZERO_TOTALS,
} from './usage-totals.js';
import { DAY_MS, startOfUtcDay, startOfUtcMonth, utcDay } from './usage-windows.js';

export const SUMMARY_GROUPS = ['day', 'model', 'key', 'user'] as const;
export type SummaryGroup = (typeof SUMMARY_GROUPS)[number];

export interface SummaryQuery {
  org?: string;
  key?: string;
  user?: string;
  since?: Date;
  by?: SummaryGroup;
}

export interface SummaryRow extends Totals {
  group: string | null;
}

export interface UsageSummary {
  totals: Totals;
  since: Date | null;
  by: SummaryGroup | null;
  rows: SummaryRow[] | null;
}

async function resolveFilter(ctx: ServiceContext, q: { org?: string; key?: string; user?: string }): Promise<UsageFilter> {
  const db = ctx.store.db;
  const f: UsageFilter = {};
  if (q.org) f.orgId = (await requireOrg(db, ctx, q.org)).id;
  if (q.key) f.keyIds = [(await requireKey(db, ctx, q.key)).id];
  if (q.user) f.userId = (await requireUser(db, ctx, q.user)).id;
  return f;
}

/** Totals (and optionally groups) since a time, from rollups plus the raw part of a first partial day. */
export async function usageSummary(ctx: ServiceContext, q: SummaryQuery = {}): Promise<UsageSummary> {
  const { db, t } = ctx.store;
  if (q.by && !(SUMMARY_GROUPS as readonly string[]).includes(q.by)) throw usageError(`unknown grouping '${q.by}': use day, model, key or user`, 'by');
  const f = await resolveFilter(ctx, q);
  const range = splitRange(q.since ?? null);
  const d = t.usageDaily;
  const e = t.usageEvents;
  const rollupKey = { day: d.day, model: d.model, key: d.keyId, user: d.userId };
  const eventKey = { model: e.model, key: e.keyId, user: sql<string>`coalesce(${e.userId}, '')` };
  const groups = new Map<string, Totals>();
  const add = (g: string, v: Totals) => groups.set(g, addTotals(groups.get(g) ?? ZERO_TOTALS, v));
  const rWhere = and(...rollupWhere(ctx, f, range.fromDay));
  const eWhere = range.rawFrom ? and(...eventWhere(ctx, f, range.rawFrom, range.rawTo ?? undefined)) : undefined;
  if (q.by) {
    const col = rollupKey[q.by];
    const rows = await db.select({ g: col, ...rollupColumns(ctx) }).from(d).where(rWhere).groupBy(col);
    for (const { g, ...v } of rows) add(String(g), v);
    if (eWhere && q.by === 'day') {
      // The raw part is one partial day: the day `since` falls in.
      const [raw] = await db.select(eventColumns(ctx)).from(e).where(eWhere);
      if (raw && raw.requests > 0) add(utcDay(range.rawFrom!), raw);
    } else if (eWhere) {
      const ecol = eventKey[q.by as Exclude<SummaryGroup, 'day'>];
      const raw = await db.select({ g: ecol, ...eventColumns(ctx) }).from(e).where(eWhere).groupBy(ecol);
      for (const { g, ...v } of raw) if (v.requests > 0) add(String(g), v);
    }
  } else {
    const [rolled] = await db.select(rollupColumns(ctx)).from(d).where(rWhere);
    add('', rolled ?? ZERO_TOTALS);
    if (eWhere) {
      const [raw] = await db.select(eventColumns(ctx)).from(e).where(eWhere);
      add('', raw ?? ZERO_TOTALS);
    }
  }
  const totals = [...groups.values()].reduce(addTotals, ZERO_TOTALS);
  if (!q.by) return { totals, since: q.since ?? null, by: null, rows: null };
  const rows = [...groups.entries()].map(([g, v]) => ({ group: g === '' ? null : g, ...v }));
  if (q.by === 'day') rows.sort((a, b) => String(a.group).localeCompare(String(b.group)));
  else rows.sort((a, b) => b.costMicros - a.costMicros || b.requests - a.requests || String(a.group).localeCompare(String(b.group)));
  return { totals, since: q.since ?? null, by: q.by, rows };
}

export interface EventPage {
  keyId: string;
  events: UsageEvent[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

function encodeCursor(ev: UsageEvent): string {
  return Buffer.from(JSON.stringify([ev.ts.getTime(), ev.requestId])).toString('base64url');
}

function decodeCursor(cursor: string): { ts: Date; id: string } {
  try {
    const [ms, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof ms === 'number' && Number.isFinite(ms) && typeof id === 'string') return { ts: new Date(ms), id };
  } catch {
    // reported below
  }
  throw usageError(`invalid cursor '${cursor}': pass the next_cursor of a previous page`, 'cursor');
}

/** A key's recent events, newest first, paged by (ts, request_id). */
export async function keyUsageEvents(ctx: ServiceContext, keyRef: string, q: { since?: Date; limit?: number; cursor?: string } = {}): Promise<EventPage> {
  const { db, t } = ctx.store;
  const key = await requireKey(db, ctx, keyRef);
  const limit = q.limit ?? 50;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw usageError('--limit must be between 1 and 10000', 'limit');
  const e = t.usageEvents;
  const where: SQL[] = [eq(e.keyId, key.id)];
  if (q.since) where.push(gte(e.ts, q.since));
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    where.push(or(lt(e.ts, c.ts), and(eq(e.ts, c.ts), lt(e.requestId, c.id)))!);
  }
  const rows = await db.select().from(e).where(and(...where)).orderBy(desc(e.ts), desc(e.requestId)).limit(limit + 1);
  const events = rows.slice(0, limit);
  return { keyId: key.id, events, nextCursor: rows.length > limit ? encodeCursor(events[events.length - 1]!) : null };
}

/** All events matching a filter, oldest first, one page in memory at a time (keyset paging). */
export async function* iterateUsageEvents(
  ctx: ServiceContext,
  q: { org?: string; key?: string; user?: string; since?: Date; pageSize?: number } = {},
): AsyncGenerator<UsageEvent[]> {
  const { db, t } = ctx.store;
  const f = await resolveFilter(ctx, q);
  const e = t.usageEvents;
  const pageSize = q.pageSize ?? 1000;
  let after: { ts: Date; id: string } | null = null;
  for (;;) {
    const where = eventWhere(ctx, f, q.since);
    if (after) where.push(or(gt(e.ts, after.ts), and(eq(e.ts, after.ts), gt(e.requestId, after.id)))!);
    const page = await db.select().from(e).where(and(...where)).orderBy(asc(e.ts), asc(e.requestId)).limit(pageSize);
    if (page.length === 0) return;
    yield page;
    if (page.length < pageSize) return;
    const last = page[page.length - 1]!;
    after = { ts: last.ts, id: last.requestId };
  }
}

/**
 * The UTC days before `before` whose raw events a quota reset still reads, as day starts (ms):
 * a counter restarted by a reset counts the rest of the reset's day from raw events (the day's
 * rollup also holds what came before the reset; see splitRange in usage-totals.ts) and the whole
 * days after it from the rollups. So the day of a month reset this month, and of any total-window
 * or every-window reset, must keep its raw events. Day resets of earlier days and rolling windows
 * no longer read them.
 */
async function daysResetsRead(ctx: ServiceContext, db: Db, before: Date): Promise<number[]> {
  const { t } = ctx.store;
  const rows = await db.select({ window: t.limitResets.window, resetAt: t.limitResets.resetAt }).from(t.limitResets).where(lt(t.limitResets.resetAt, before));
  const month = startOfUtcMonth(ctx.now()).getTime();
  const days = new Set<number>();
  for (const r of rows) {
    const at = r.resetAt.getTime();
    if (r.window === 'total' || r.window === 'all' || (r.window === 'month' && at >= month)) days.add(startOfUtcDay(r.resetAt).getTime());
  }
  return [...days].sort((a, b) => a - b);
}

/** The ranges [from, to) of raw events a prune before `before` deletes: all before it, but the days quota resets read. */
async function pruneRanges(ctx: ServiceContext, db: Db, before: Date): Promise<{ ranges: Array<[Date | null, Date]>; keptDays: string[] }> {
  const kept = await daysResetsRead(ctx, db, before);
  const ranges: Array<[Date | null, Date]> = [];
  let from: Date | null = null;
  for (const day of kept) {
    const start = new Date(day);
    if (from === null || start > from) ranges.push([from, start]);
    from = new Date(day + DAY_MS);
  }
  if (from === null || before > from) ranges.push([from, before]);
  return { ranges, keptDays: kept.map((d) => utcDay(new Date(d))) };
}

function inRange(t: ServiceContext['store']['t'], [from, to]: [Date | null, Date]): SQL {
  return from === null ? lt(t.usageEvents.ts, to) : and(gte(t.usageEvents.ts, from), lt(t.usageEvents.ts, to))!;
}

/** How many raw events a prune before `before` would delete (see pruneUsage), and the days it keeps. */
export async function countEventsBefore(ctx: ServiceContext, before: Date): Promise<{ events: number; keptDays: string[] }> {
  const { db, t } = ctx.store;
  const { ranges, keptDays } = await pruneRanges(ctx, db, before);
  let events = 0;
  for (const r of ranges) {
    const [row] = await db.select({ n: sql<number>`count(*)`.mapWith(Number) }).from(t.usageEvents).where(inRange(t, r));
    events += row?.n ?? 0;
  }
  return { events, keptDays };
}

/**
 * Deletes raw events older than `before`; the daily rollups stay, so summaries do not change.
 * Today's events are refused: rolling limits and reset quotas still read them.
 */
export function checkPruneBefore(ctx: ServiceContext, before: Date): void {
  const today = startOfUtcDay(ctx.now());
  if (before > today) throw usageError(`--before must be no later than the start of today (${today.toISOString()}): today's raw events feed rolling limits and quota resets`, 'before');
}

/**
 * Deletes the raw events before `before`, except on the days a quota reset still reads (see
 * daysResetsRead: pruning those gave a key back what it had spent since a reset this month).
 */
export async function pruneUsage(ctx: ServiceContext, before: Date): Promise<{ deleted: number; before: Date; keptDays: string[] }> {
  checkPruneBefore(ctx, before);
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const { ranges, keptDays } = await pruneRanges(ctx, tx as unknown as Db, before);
    let deleted = 0;
    for (const r of ranges) {
      const [row] = await tx.select({ n: sql<number>`count(*)`.mapWith(Number) }).from(t.usageEvents).where(inRange(t, r));
      await tx.delete(t.usageEvents).where(inRange(t, r));
      deleted += row?.n ?? 0;
    }
    await recordChange(tx, ctx, 'usage.prune', { type: 'usage', id: 'events' }, { before: before.toISOString(), deleted, kept_days: keptDays });
    return { deleted, before, keptDays };
  });
}
