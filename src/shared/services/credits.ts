// Prepaid credits are a ledger: top-ups and charges are rows; the balance is their sum.
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/store.js';
import type { ServiceContext } from './context.js';
import type { Scope } from './limits.js';

export async function addCredits(
  tx: Db,
  ctx: ServiceContext,
  scope: Scope,
  amountMicros: number,
  reason: string | null,
  kind: 'topup' | 'charge' | 'adjustment' = amountMicros >= 0 ? 'topup' : 'adjustment',
): Promise<void> {
  const { t } = ctx.store;
  await tx.insert(t.creditLedger).values({
    scopeType: scope.type,
    scopeId: scope.id,
    amountMicros,
    kind,
    reason,
    actor: ctx.actor,
    createdAt: ctx.now(),
  });
}

export async function creditBalance(db: Db, ctx: Pick<ServiceContext, 'store'>, scope: Scope): Promise<{ balance: number; entries: number }> {
  const { t } = ctx.store;
  const [row] = await db
    .select({
      balance: sql<string | number | null>`sum(${t.creditLedger.amountMicros})`,
      entries: sql<string | number>`count(*)`,
    })
    .from(t.creditLedger)
    .where(and(eq(t.creditLedger.scopeType, scope.type), eq(t.creditLedger.scopeId, scope.id)));
  return { balance: Number(row?.balance ?? 0), entries: Number(row?.entries ?? 0) };
}
