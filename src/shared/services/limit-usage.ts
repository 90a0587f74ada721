// Current use next to each limit: what `limits get` shows. Rolling minute/hour windows read raw
// events; day/month/total windows read the rollups (plus the raw part of a day a reset split).
import type { Limit } from '../db/schema.js';
import type { Db } from '../db/store.js';
import type { ServiceContext } from './context.js';
import { listLimits, type Metric, type Scope, type Window } from './limits.js';
import { latestReset, type ResolvedScope, resolveScope, scopeUsageFilter } from './scopes.js';
import { type Totals, usageSince } from './usage-totals.js';
import { laterStart, windowResetsAt, windowStart } from './usage-windows.js';

export interface LimitUse {
  limit: Limit;
  /** requests, tokens, or micro-dollars */
  used: number;
  remaining: number;
  /** Start of what is counted: the window start, or a later quota reset; null = all time. */
  since: Date | null;
  /** Next calendar reset; null for rolling and total windows. */
  resetsAt: Date | null;
}

export function pickMetric(totals: Totals, metric: Metric): number {
  if (metric === 'requests') return totals.requests;
  if (metric === 'tokens') return totals.totalTokens;
  return totals.costMicros;
}

/** Where counting starts for a scope's window: the window start or a later reset. */
export async function countingStart(db: Db, ctx: ServiceContext, scope: Scope, window: Window, now: Date): Promise<Date | null> {
  const start = windowStart(window, now);
  if (window === 'minute' || window === 'hour') return start;
  return laterStart(start, await latestReset(db, ctx, scope, window));
}

export async function usesOf(db: Db, ctx: ServiceContext, scope: Scope, limits: Limit[]): Promise<LimitUse[]> {
  const now = ctx.now();
  // Limits that share a model and window share one range: read it once.
  const cache = new Map<string, Promise<{ totals: Totals; since: Date | null }>>();
  const read = (model: string, window: Window) => {
    const k = `${model}\u0000${window}`;
    let p = cache.get(k);
    if (!p) {
      p = (async () => {
        const since = await countingStart(db, ctx, scope, window, now);
        const filter = await scopeUsageFilter(db, ctx, scope, model);
        return { totals: await usageSince(db, ctx, filter, since), since };
      })();
      cache.set(k, p);
    }
    return p;
  };
  const out: LimitUse[] = [];
  for (const limit of limits) {
    const window = limit.window as Window;
    const { totals, since } = await read(limit.model, window);
    const used = pickMetric(totals, limit.metric as Metric);
    out.push({ limit, used, remaining: Math.max(0, limit.max - used), since, resetsAt: windowResetsAt(window, now) });
  }
  return out;
}

const WINDOW_ORDER: Window[] = ['minute', 'hour', 'day', 'month', 'total'];
const METRIC_ORDER: Metric[] = ['requests', 'tokens', 'cost'];

export function sortLimits(limits: Limit[]): Limit[] {
  return [...limits].sort(
    (a, b) =>
      a.model.localeCompare(b.model) ||
      METRIC_ORDER.indexOf(a.metric as Metric) - METRIC_ORDER.indexOf(b.metric as Metric) ||
      WINDOW_ORDER.indexOf(a.window as Window) - WINDOW_ORDER.indexOf(b.window as Window),
  );
}

/** `limits get`: every limit of the scope with its current use. */
export async function scopeLimitsWithUse(ctx: ServiceContext, scopeText: string): Promise<{ scope: ResolvedScope; uses: LimitUse[] }> {
  const db = ctx.store.db;
  const scope = await resolveScope(db, ctx, scopeText);
  const limits = sortLimits(await listLimits(db, ctx, scope));
  return { scope, uses: await usesOf(db, ctx, scope, limits) };
}
