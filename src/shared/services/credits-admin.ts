// `credits add|balance` over the ledger in credits.ts: every top-up or correction is a row,
// audited; balances are exact integer sums of micro-dollars.
import { asc, sql } from 'drizzle-orm';
import { usageError } from '../errors.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { addCredits, creditBalance } from './credits.js';
import type { Scope, ScopeType } from './limits.js';
import { type ResolvedScope, resolveScope } from './scopes.js';

export interface ScopeBalance {
  scope: Scope;
  /** micro-dollars */
  balance: number;
  entries: number;
}

/** Adds (or, negative, takes back) credits. A negative amount must say why. */
export async function addScopeCredits(ctx: ServiceContext, scopeText: string, amountMicros: number, reason: string | null): Promise<ScopeBalance & { resolved: ResolvedScope }> {
  if (!Number.isSafeInteger(amountMicros) || amountMicros === 0) throw usageError('the amount must be a non-zero USD amount such as 25 or -3.50', 'usd');
  const why = reason?.trim() || null;
  if (amountMicros < 0 && !why) throw usageError('a negative amount needs --reason', 'reason');
  return ctx.store.transaction(async (tx) => {
    const scope = await resolveScope(tx, ctx, scopeText);
    await addCredits(tx, ctx, scope, amountMicros, why);
    await recordChange(tx, ctx, 'credits.add', { type: scope.type, id: scope.id }, { amount_micros: amountMicros, reason: why });
    const { balance, entries } = await creditBalance(tx, ctx, scope);
    return { scope: { type: scope.type, id: scope.id }, resolved: scope, balance, entries };
  });
}

export async function scopeBalance(ctx: ServiceContext, scopeText: string): Promise<ScopeBalance> {
  const scope = await resolveScope(ctx.store.db, ctx, scopeText);
  const { balance, entries } = await creditBalance(ctx.store.db, ctx, scope);
  return { scope: { type: scope.type, id: scope.id }, balance, entries };
}

/** Every scope that has a ledger, with its balance. */
export async function allBalances(ctx: ServiceContext): Promise<ScopeBalance[]> {
  const { db, t } = ctx.store;
  const l = t.creditLedger;
  const rows = await db
    .select({
      type: l.scopeType,
      id: l.scopeId,
      balance: sql<number>`coalesce(sum(${l.amountMicros}), 0)`.mapWith(Number),
      entries: sql<number>`count(*)`.mapWith(Number),
    })
    .from(l)
    .groupBy(l.scopeType, l.scopeId)
    .orderBy(asc(l.scopeType), asc(l.scopeId));
  return rows.map((r) => ({ scope: { type: r.type as ScopeType, id: r.id }, balance: r.balance, entries: r.entries }));
}
