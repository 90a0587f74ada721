// `gatewayctl stats`: one look at the whole gateway — orgs, users, keys by status, and usage
// today and this month from the rollups, with the busiest keys and models this month.
import { desc, gte, sql } from 'drizzle-orm';
import type { ServiceContext } from './context.js';
import { periodUsage, type PeriodUsage } from './key-usage.js';
import { effectiveStatus, type KeyStatusView } from './keys.js';
import { rollupColumns } from './usage-totals.js';
import { startOfUtcDay, startOfUtcMonth, utcDay } from './usage-windows.js';

export interface TopRow {
  id: string;
  /** key name, or null for models */
  name: string | null;
  requests: number;
  totalTokens: number;
  costMicros: number;
}

export interface GatewayStats {
  orgs: number;
  users: { active: number; disabled: number };
  keys: Record<KeyStatusView, number>;
  today: PeriodUsage;
  month: PeriodUsage;
  topKeys: TopRow[];
  topModels: TopRow[];
}

export async function gatewayStats(ctx: ServiceContext, top = 5): Promise<GatewayStats> {
  const { db, t } = ctx.store;
  const now = ctx.now();
  const count = sql<number>`count(*)`.mapWith(Number);
  const [orgRow] = await db.select({ n: count }).from(t.orgs);
  const users = { active: 0, disabled: 0 };
  for (const r of await db.select({ status: t.users.status, n: count }).from(t.users).groupBy(t.users.status)) {
    if (r.status === 'active' || r.status === 'disabled') users[r.status] += r.n;
  }
  const keys: Record<KeyStatusView, number> = { active: 0, disabled: 0, revoked: 0, expired: 0 };
  const keyRows = await db.select({ status: t.apiKeys.status, expiresAt: t.apiKeys.expiresAt, id: t.apiKeys.id, name: t.apiKeys.name }).from(t.apiKeys);
  for (const k of keyRows) keys[effectiveStatus(k as Parameters<typeof effectiveStatus>[0], now)]++;
  const monthDay = utcDay(startOfUtcMonth(now));
  const d = t.usageDaily;
  const cols = rollupColumns(ctx);
  const topBy = async (col: typeof d.keyId | typeof d.model) =>
    db
      .select({ id: col, requests: cols.requests, totalTokens: cols.totalTokens, costMicros: cols.costMicros })
      .from(d)
      .where(gte(d.day, monthDay))
      .groupBy(col)
      .orderBy(desc(sql`sum(${d.costMicros})`), desc(sql`sum(${d.requests})`), col)
      .limit(top);
  const names = new Map(keyRows.map((k) => [k.id, k.name]));
  return {
    orgs: orgRow?.n ?? 0,
    users,
    keys,
    today: await periodUsage(db, ctx, {}, utcDay(startOfUtcDay(now))),
    month: await periodUsage(db, ctx, {}, monthDay),
    topKeys: (await topBy(d.keyId)).map((r) => ({ ...r, name: names.get(r.id) ?? null })),
    topModels: (await topBy(d.model)).map((r) => ({ ...r, name: null })),
  };
}

