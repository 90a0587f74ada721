// Daily and monthly token quotas per key: the tokens/day and tokens/month rows of the limit
// table, shown with what is used since the window began or since the latest `quotas reset`.
import { and, asc, eq } from 'drizzle-orm';
import type { ApiKey } from '../db/schema.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { getKey, updateKey } from './keys.js';
import { countingStart } from './limit-usage.js';
import { limitsFromFlags } from './limits.js';
import { requireKey, requireOrg } from './resolve.js';
import { keyWithDescendants } from './scopes.js';
import { usageSince } from './usage-totals.js';
import { windowResetsAt } from './usage-windows.js';

export type QuotaWindow = 'day' | 'month';

export interface QuotaState {
  /** tokens; null when the key has no such quota */
  limit: number | null;
  used: number;
  remaining: number | null;
  resetsAt: Date;
  /** Start of what is counted: the window start or a later reset. */
  since: Date;
}

export interface KeyQuota {
  key: ApiKey;
  daily: QuotaState;
  monthly: QuotaState;
}

function state(limit: number | null, used: number, since: Date, resetsAt: Date): QuotaState {
  return { limit, used, remaining: limit === null ? null : Math.max(0, limit - used), since, resetsAt };
}

async function quotaOf(ctx: ServiceContext, key: ApiKey, maxes: { day: number | null; month: number | null }): Promise<KeyQuota> {
  const db = ctx.store.db;
  const now = ctx.now();
  const scope = { type: 'key' as const, id: key.id };
  const keyIds = await keyWithDescendants(db, ctx, key.id);
  const one = async (window: QuotaWindow) => {
    const since = (await countingStart(db, ctx, scope, window, now))!;
    const totals = await usageSince(db, ctx, { keyIds }, since);
    return state(maxes[window], totals.totalTokens, since, windowResetsAt(window, now)!);
  };
  return { key, daily: await one('day'), monthly: await one('month') };
}

function tokenMaxes(limits: { metric: string; window: string; model: string; max: number }[]) {
  const find = (w: string) => limits.find((l) => l.metric === 'tokens' && l.window === w && l.model === '')?.max ?? null;
  return { day: find('day'), month: find('month') };
}

export async function getQuota(ctx: ServiceContext, keyRef: string): Promise<KeyQuota> {
  const { key, limits } = await getKey(ctx, keyRef);
  return quotaOf(ctx, key, tokenMaxes(limits));
}

/** Every key (of one org) with its quotas; keys without quotas show used tokens only. */
export async function listQuotas(ctx: ServiceContext, filter: { org?: string } = {}): Promise<KeyQuota[]> {
  const { db, t } = ctx.store;
  const orgId = filter.org ? (await requireOrg(db, ctx, filter.org)).id : undefined;
  const keys = await db
    .select()
    .from(t.apiKeys)
    .where(orgId ? eq(t.apiKeys.orgId, orgId) : undefined)
    .orderBy(asc(t.apiKeys.createdAt));
  const limits = await db
    .select()
    .from(t.limits)
    .where(and(eq(t.limits.scopeType, 'key'), eq(t.limits.metric, 'tokens')));
  const out: KeyQuota[] = [];
  for (const key of keys) out.push(await quotaOf(ctx, key, tokenMaxes(limits.filter((l) => l.scopeId === key.id))));
  return out;
}

export async function setQuota(ctx: ServiceContext, keyRef: string, q: { dailyTokens?: number; monthlyTokens?: number }): Promise<KeyQuota> {
  const specs = limitsFromFlags({ dailyTokens: q.dailyTokens, monthlyTokens: q.monthlyTokens });
  const { key, limits } = await updateKey(ctx, keyRef, { limits: specs });
  return quotaOf(ctx, key, tokenMaxes(limits));
}

/**
 * Zeroes the key's current daily or monthly window: a limit_resets row the proxy loads into its
 * snapshot, and from which `used` is counted from now on.
 */
export async function resetQuota(ctx: ServiceContext, keyRef: string, window: QuotaWindow): Promise<KeyQuota> {
  const key = await ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const row = await requireKey(tx, ctx, keyRef);
    await tx.insert(t.limitResets).values({ scopeType: 'key', scopeId: row.id, window, resetAt: ctx.now(), actor: ctx.actor });
    await recordChange(tx, ctx, 'quotas.reset', { type: 'key', id: row.id }, { window });
    return row;
  });
  return getQuota(ctx, key.id);
}
