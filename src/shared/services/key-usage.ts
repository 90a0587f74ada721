// `keys usage-summary`: a key's today, this month and all time, from the daily rollups.
import { and, desc, sql } from 'drizzle-orm';
import type { ApiKey } from '../db/schema.js';
import type { Db } from '../db/store.js';
import type { ServiceContext } from './context.js';
import { requireKey } from './resolve.js';
import { addTotals, rollupColumns, rollupWhere, type Totals, type UsageFilter, ZERO_TOTALS } from './usage-totals.js';
import { startOfUtcDay, startOfUtcMonth, utcDay } from './usage-windows.js';

export interface PeriodUsage extends Totals {
  /** The model with the most requests in the period, or null when there were none. */
  topModel: string | null;
  /** total tokens / requests, rounded to an integer; 0 without requests */
  avgTokensPerRequest: number;
}

export interface KeyUsageSummary {
  key: ApiKey;
  today: PeriodUsage;
  month: PeriodUsage;
  allTime: PeriodUsage;
}

/** Totals of a filter since a day (inclusive; undefined = all time), with the busiest model. */
export async function periodUsage(db: Db, ctx: Pick<ServiceContext, 'store'>, f: UsageFilter, fromDay?: string): Promise<PeriodUsage> {
  const d = ctx.store.t.usageDaily;
  const cols = rollupColumns(ctx);
  const rows = await db
    .select({ model: d.model, ...cols })
    .from(d)
    .where(and(...rollupWhere(ctx, f, fromDay)))
    .groupBy(d.model)
    .orderBy(desc(sql`sum(${d.requests})`), d.model);
  const totals = rows.reduce<Totals>((acc, { model: _m, ...v }) => addTotals(acc, v), ZERO_TOTALS);
  return {
    ...totals,
    topModel: rows[0] && rows[0].requests > 0 ? rows[0].model : null,
    avgTokensPerRequest: totals.requests ? Math.round(totals.totalTokens / totals.requests) : 0,
  };
}

export async function keyUsageSummary(ctx: ServiceContext, keyRef: string): Promise<KeyUsageSummary> {
  const db = ctx.store.db;
  const key = await requireKey(db, ctx, keyRef);
  const now = ctx.now();
  const f: UsageFilter = { keyIds: [key.id] };
  return {
    key,
    today: await periodUsage(db, ctx, f, utcDay(startOfUtcDay(now))),
    month: await periodUsage(db, ctx, f, utcDay(startOfUtcMonth(now))),
    allTime: await periodUsage(db, ctx, f),
  };
}
