// Daily and monthly token quotas per key: the tokens/day and tokens/month rows of the limit
// table, shown with what is used since the window began or since the latest `quotas reset`.
import { and, asc, eq, gte, inArray, max, sql } from 'drizzle-orm';
import type { ApiKey } from '../db/schema.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { getKey, updateKey } from './keys.js';
import { countingStart } from './limit-usage.js';
import { limitsFromFlags } from './limits.js';
import { requireKey, requireOrg } from './resolve.js';
import { keyWithDescendants } from './scopes.js';
import { usageSince } from './usage-totals.js';
import { isDayAligned, laterStart, utcDay, windowResetsAt, windowStart } from './usage-windows.js';

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

/**
 * Every key (of one org) with its quotas; keys without quotas show used tokens only. A fixed
 * number of queries whatever the number of keys (keys, limits, resets, this month's rollups per
 * key and day); only a key whose quota was reset in the middle of a day this month is read on
 * its own, since that needs the raw events of part of a day.
 */
export async function listQuotas(ctx: ServiceContext, filter: { org?: string } = {}): Promise<KeyQuota[]> {
  const { db, t } = ctx.store;
  const now = ctx.now();
  const orgId = filter.org ? (await requireOrg(db, ctx, filter.org)).id : undefined;
  const keys = await db
    .select()
    .from(t.apiKeys)
    .where(orgId ? eq(t.apiKeys.orgId, orgId) : undefined)
    .orderBy(asc(t.apiKeys.createdAt));
  if (keys.length === 0) return [];
  // With --org, only that org's keys' rows are read.
  const orgKeys = orgId ? db.select({ id: t.apiKeys.id }).from(t.apiKeys).where(eq(t.apiKeys.orgId, orgId)) : undefined;
  const limits = await db
    .select()
    .from(t.limits)
    .where(and(eq(t.limits.scopeType, 'key'), eq(t.limits.metric, 'tokens'), orgKeys ? inArray(t.limits.scopeId, orgKeys) : undefined));
  // A key's usage counts against its ancestors: the key tree (parent and child share an org), read once.
  const children = new Map<string, string[]>();
  for (const k of await db
    .select({ id: t.apiKeys.id, parentId: t.apiKeys.parentId })
    .from(t.apiKeys)
    .where(orgId ? eq(t.apiKeys.orgId, orgId) : undefined)) {
    if (!k.parentId) continue;
    const list = children.get(k.parentId);
    if (list) list.push(k.id);
    else children.set(k.parentId, [k.id]);
  }
  const resets = new Map<string, Date>();
  for (const r of await db
    .select({ scopeId: t.limitResets.scopeId, window: t.limitResets.window, resetAt: max(t.limitResets.resetAt) })
    .from(t.limitResets)
    .where(and(eq(t.limitResets.scopeType, 'key'), inArray(t.limitResets.window, ['day', 'month']), orgKeys ? inArray(t.limitResets.scopeId, orgKeys) : undefined))
    .groupBy(t.limitResets.scopeId, t.limitResets.window)) {
    if (r.resetAt) resets.set(`${r.scopeId}:${r.window}`, new Date(r.resetAt));
  }
  // This month's tokens per key and UTC day, from the rollups.
  const monthStart = windowStart('month', now)!;
  const byKeyDay = new Map<string, Map<string, number>>();
  for (const r of await db
    .select({ keyId: t.usageDaily.keyId, day: t.usageDaily.day, tokens: sql<number>`coalesce(sum(${t.usageDaily.totalTokens}), 0)`.mapWith(Number) })
    .from(t.usageDaily)
    .where(and(gte(t.usageDaily.day, utcDay(monthStart)), orgId ? eq(t.usageDaily.orgId, orgId) : undefined))
    .groupBy(t.usageDaily.keyId, t.usageDaily.day)) {
    let days = byKeyDay.get(r.keyId);
    if (!days) {
      days = new Map();
      byKeyDay.set(r.keyId, days);
    }
    days.set(r.day, r.tokens);
  }
  const tree = (id: string): string[] => {
    const seen = new Set([id]);
    const all = [id];
    for (let i = 0; i < all.length; i++) {
      for (const c of children.get(all[i]!) ?? []) {
        if (seen.has(c)) continue;
        seen.add(c);
        all.push(c);
      }
    }
    return all;
  };
  const tokensSince = (ids: string[], since: Date) => {
    const from = utcDay(since);
    let sum = 0;
    for (const id of ids) for (const [day, tokens] of byKeyDay.get(id) ?? []) if (day >= from) sum += tokens;
    return sum;
  };
  const out: KeyQuota[] = [];
  for (const key of keys) {
    const maxes = tokenMaxes(limits.filter((l) => l.scopeId === key.id));
    const since = (w: QuotaWindow) => laterStart(windowStart(w, now), resets.get(`${key.id}:${w}`) ?? null)!;
    const day = since('day');
    const month = since('month');
    if (!isDayAligned(day) || !isDayAligned(month)) {
      out.push(await quotaOf(ctx, key, maxes)); // a reset split a day: part of it is read from raw events
      continue;
    }
    const ids = tree(key.id);
    out.push({
      key,
      daily: state(maxes.day, tokensSince(ids, day), day, windowResetsAt('day', now)!),
      monthly: state(maxes.month, tokensSince(ids, month), month, windowResetsAt('month', now)!),
    });
  }
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
