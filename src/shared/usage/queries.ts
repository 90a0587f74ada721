// Usage already in the store for a limit's window, in the proxy's terms (ms epoch, counter
// refs): seeds the limit counters after a restart. The reading itself is the services' one
// (services/usage-totals.ts), so there is a single definition of "usage since".
import { and, eq, sql } from 'drizzle-orm';
import { type UsageFilter as TotalsFilter, usageSince as totalsSince } from '../services/usage-totals.js';
import type { Store } from '../db/store.js';
import { effectiveSince } from '../limits/windows.js';
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

const num = (v: unknown) => Number(v ?? 0);

/**
 * Totals for usage at or after `since` (ms epoch; 0 = all time): the services' reading (whole
 * days from the rollups, the part of a first day from raw events), so the proxy's seeded
 * counters and `limits get` / `quotas get` count exactly the same rows.
 */
export async function usageSince(store: Pick<Store, 'db' | 't'>, filter: UsageFilter, since: number): Promise<UsageTotals> {
  const f: TotalsFilter = {};
  if (filter.orgId) f.orgId = filter.orgId;
  if (filter.userId) f.userId = filter.userId;
  if (filter.keyIds) f.keyIds = filter.keyIds;
  if (filter.model) f.model = filter.model;
  const t = await totalsSince(store.db, { store }, f, since > 0 ? new Date(since) : null);
  return { requests: t.requests, tokens: t.totalTokens, costMicros: t.costMicros };
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
