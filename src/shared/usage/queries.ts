// Usage already in the store for a window: whole days from the usage_daily rollups, the partial
// first day (after a quota reset) from raw usage_events. Seeds the limit counters after a
// restart and answers `quotas get` / GET /v1/usage. Dialect-neutral, like the services.
import { and, eq, gt, gte, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { Db, Store } from '../db/store.js';
import { effectiveSince, utcDay, utcDayStart } from '../limits/windows.js';
import { modelMatches } from '../model-patterns.js';
import type { Metric, ScopeType, Window } from '../services/limits.js';

export interface UsageFilter {
  orgId?: string;
  userId?: string;
  /** A key and its descendants: a child's usage counts against every ancestor. */
  keyIds?: readonly string[];
  /** Model id or pattern ('openai/*'); '' or undefined = every model. */
  model?: string;
}

export interface UsageTotals {
  requests: number;
  tokens: number;
  /** micro-dollars */
  costMicros: number;
}

const DAY_MS = 86_400_000;
const num = (v: unknown) => Number(v ?? 0);

/** Totals for usage at or after `since` (ms epoch; 0 = all time). */
export async function usageSince(store: Pick<Store, 'db' | 't'>, filter: UsageFilter, since: number): Promise<UsageTotals> {
  const { db, t } = store;
  const dayStart = since > 0 ? utcDayStart(since) : 0;
  const partial = since > dayStart;
  const d = t.usageDaily;
  const dailyWhere: SQL[] = [];
  if (filter.orgId) dailyWhere.push(eq(d.orgId, filter.orgId));
  if (filter.userId) dailyWhere.push(eq(d.userId, filter.userId));
  if (filter.keyIds) dailyWhere.push(inArray(d.keyId, [...filter.keyIds]));
  if (since > 0) dailyWhere.push(partial ? gt(d.day, utcDay(since)) : gte(d.day, utcDay(since)));
  const daily = await db
    .select({
      model: d.model,
      requests: sql<string | number>`sum(${d.requests})`,
      tokens: sql<string | number>`sum(${d.totalTokens})`,
      cost: sql<string | number>`sum(${d.costMicros})`,
    })
    .from(d)
    .where(and(...dailyWhere))
    .groupBy(d.model);
  const rows = [...daily];
  if (partial) rows.push(...(await partialDay(db, store.t, filter, since, dayStart + DAY_MS)));
  const out: UsageTotals = { requests: 0, tokens: 0, costMicros: 0 };
  for (const r of rows) {
    if (filter.model && !modelMatches(filter.model, r.model)) continue;
    out.requests += num(r.requests);
    out.tokens += num(r.tokens);
    out.costMicros += num(r.cost);
  }
  return out;
}

async function partialDay(db: Db, t: Store['t'], filter: UsageFilter, since: number, until: number) {
  const e = t.usageEvents;
  const where: SQL[] = [gte(e.ts, new Date(since)), lt(e.ts, new Date(until))];
  if (filter.orgId) where.push(eq(e.orgId, filter.orgId));
  if (filter.userId) where.push(eq(e.userId, filter.userId));
  if (filter.keyIds) where.push(inArray(e.keyId, [...filter.keyIds]));
  return db
    .select({
      model: e.model,
      requests: sql<string | number>`count(*)`,
      tokens: sql<string | number>`sum(${e.totalTokens})`,
      cost: sql<string | number>`sum(${e.costMicros})`,
    })
    .from(e)
    .where(and(...where))
    .groupBy(e.model);
}

/** Everything charged to a credit scope (a positive number). */
export async function creditsCharged(store: Pick<Store, 'db' | 't'>, scopeType: ScopeType, scopeId: string): Promise<number> {
  const { db, t } = store;
  const c = t.creditLedger;
  const [row] = await db
    .select({ sum: sql<string | number | null>`sum(${c.amountMicros})` })
    .from(c)
    .where(and(eq(c.scopeType, scopeType), eq(c.scopeId, scopeId), eq(c.kind, 'charge')));
  return -num(row?.sum);
}

export const metricOf = (totals: UsageTotals, metric: Metric): number =>
  metric === 'requests' ? totals.requests : metric === 'tokens' ? totals.tokens : totals.costMicros;

export interface WindowQuery {
  scopeType: ScopeType;
  scopeId: string;
  metric: Metric;
  window: Window;
  model?: string;
  /** For key scopes, the key and its descendants (default: the key alone). */
  keyIds?: readonly string[];
  /** A quota reset (or any later start) inside the window. */
  since?: number;
}

/**
 * What the store holds for a limit's current window. Calendar windows and total are exact up
 * to the last usage flush; minute/hour windows are answered from raw events.
 */
export async function usedInWindow(store: Pick<Store, 'db' | 't'>, q: WindowQuery, now: number): Promise<number> {
  const rolling = q.window === 'minute' ? 60_000 : q.window === 'hour' ? 3_600_000 : 0;
  const since = rolling ? Math.max(now - rolling, q.since ?? 0) : effectiveSince(q.window, q.since, now);
  const filter: UsageFilter = { model: q.model };
  if (q.scopeType === 'org') filter.orgId = q.scopeId;
  else if (q.scopeType === 'user') filter.userId = q.scopeId;
  else filter.keyIds = q.keyIds ?? [q.scopeId];
  return metricOf(await usageSince(store, filter, since), q.metric);
}
