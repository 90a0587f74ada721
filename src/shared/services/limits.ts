// The one limit table: (scope, metric, window, max), optionally narrowed to one model.
import { and, eq } from 'drizzle-orm';
import type { Limit } from '../db/schema.js';
import type { Db } from '../db/store.js';
import { usageError } from '../errors.js';
import { newId } from '../ids.js';
import { microsToUsdNumber, usdToMicros } from '../money.js';
import type { ServiceContext } from './context.js';

export const SCOPE_TYPES = ['org', 'user', 'key'] as const;
export type ScopeType = (typeof SCOPE_TYPES)[number];
export const METRICS = ['requests', 'tokens', 'cost'] as const;
export type Metric = (typeof METRICS)[number];
export const WINDOWS = ['minute', 'hour', 'day', 'month', 'total'] as const;
export type Window = (typeof WINDOWS)[number];

export interface Scope {
  type: ScopeType;
  id: string;
}

export interface LimitSpec {
  metric: Metric;
  window: Window;
  /** Requests, tokens, or micro-dollars for cost. null removes the limit. */
  max: number | null;
  model?: string;
}

/** The flags every limit-setting command shares (keys create/update, limits set, quotas set). */
export interface LimitFlags {
  rpm?: number;
  rph?: number;
  rpd?: number;
  tpm?: number;
  tph?: number;
  tpd?: number;
  dailyTokens?: number;
  monthlyTokens?: number;
  maxRequests?: number;
  budgetUsd?: string;
  budgetPeriod?: string;
  model?: string;
}

type CountFlag = Exclude<keyof LimitFlags, 'budgetUsd' | 'budgetPeriod' | 'model'>;
const FLAG_MAP: [CountFlag, Metric, Window][] = [
  ['rpm', 'requests', 'minute'],
  ['rph', 'requests', 'hour'],
  ['rpd', 'requests', 'day'],
  ['tpm', 'tokens', 'minute'],
  ['tph', 'tokens', 'hour'],
  ['tpd', 'tokens', 'day'],
  ['dailyTokens', 'tokens', 'day'],
  ['monthlyTokens', 'tokens', 'month'],
  ['maxRequests', 'requests', 'total'],
];

/** Turns command flags into limit specs; 0 means "remove this limit". */
export function limitsFromFlags(flags: LimitFlags): LimitSpec[] {
  const out = new Map<string, LimitSpec>();
  const model = flags.model ?? '';
  for (const [flag, metric, window] of FLAG_MAP) {
    const v = flags[flag];
    if (v === undefined) continue;
    const key = `${metric}/${window}`;
    const prev = out.get(key);
    const max = v === 0 ? null : v;
    if (v < 0 || !Number.isSafeInteger(v)) throw usageError(`${flag} must be a non-negative integer`, flag);
    if (prev && prev.max !== max) throw usageError(`--tpd and --daily-tokens disagree (${prev.max} vs ${v})`);
    out.set(key, { metric, window, max, model });
  }
  if (flags.budgetUsd !== undefined) {
    const window = (flags.budgetPeriod ?? 'month') as Window;
    if (!['day', 'month', 'total'].includes(window)) {
      throw usageError(`invalid budget period '${flags.budgetPeriod}': use day, month or total`, 'budget_period');
    }
    const micros = usdToMicros(flags.budgetUsd);
    if (micros < 0) throw usageError('a budget cannot be negative', 'budget');
    out.set(`cost/${window}`, { metric: 'cost', window, max: micros === 0 ? null : micros, model });
  } else if (flags.budgetPeriod !== undefined) {
    throw usageError('--budget-period needs --budget');
  }
  return [...out.values()];
}

export function parseScope(text: string): Scope {
  const i = text.indexOf(':');
  const type = text.slice(0, i);
  const id = text.slice(i + 1);
  if (i <= 0 || !id || !(SCOPE_TYPES as readonly string[]).includes(type)) {
    throw usageError(`invalid scope '${text}': use key:<id>, user:<user> or org:<org>`, 'scope');
  }
  return { type: type as ScopeType, id };
}

export async function listLimits(db: Db, ctx: Pick<ServiceContext, 'store'>, scope: Scope): Promise<Limit[]> {
  const { t } = ctx.store;
  return db
    .select()
    .from(t.limits)
    .where(and(eq(t.limits.scopeType, scope.type), eq(t.limits.scopeId, scope.id)));
}

/** Upserts (or, for max null, removes) each spec on the scope, inside the caller's transaction. */
export async function applyLimits(tx: Db, ctx: ServiceContext, scope: Scope, specs: LimitSpec[]): Promise<void> {
  const { t } = ctx.store;
  const now = ctx.now();
  for (const s of specs) {
    const model = s.model ?? '';
    const match = and(
      eq(t.limits.scopeType, scope.type),
      eq(t.limits.scopeId, scope.id),
      eq(t.limits.model, model),
      eq(t.limits.metric, s.metric),
      eq(t.limits.window, s.window),
    );
    if (s.max === null) {
      await tx.delete(t.limits).where(match);
      continue;
    }
    if (!Number.isSafeInteger(s.max) || s.max < 0) throw usageError(`limit ${s.metric}/${s.window} must be a non-negative integer`);
    await tx
      .insert(t.limits)
      .values({ id: newId('lim'), scopeType: scope.type, scopeId: scope.id, model, metric: s.metric, window: s.window, max: s.max, createdAt: now, updatedAt: now })
      .onConflictDoUpdate({
        target: [t.limits.scopeType, t.limits.scopeId, t.limits.model, t.limits.metric, t.limits.window],
        set: { max: s.max, updatedAt: now },
      });
  }
}

export interface LimitView {
  scope: string;
  metric: Metric;
  window: Window;
  max: number;
  model: string | null;
}

/** The JSON form scripts rely on: cost limits are shown in USD. */
export function limitView(l: Limit): LimitView {
  return {
    scope: `${l.scopeType}:${l.scopeId}`,
    metric: l.metric as Metric,
    window: l.window as Window,
    max: l.metric === 'cost' ? microsToUsdNumber(l.max) : l.max,
    model: l.model === '' ? null : l.model,
  };
}
