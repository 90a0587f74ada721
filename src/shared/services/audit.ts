// Every change the proxy must see goes through `recordChange`: it writes the audit row and
// bumps config_version in the caller's transaction, so a change and its notice commit together.
import { and, desc, eq, gte, sql, type SQL } from 'drizzle-orm';
import type { AuditEntry } from '../db/schema.js';
import type { Db } from '../db/store.js';
import type { ServiceContext } from './context.js';

export const CONFIG_CHANNEL = 'gateway_config';

export async function recordChange(
  tx: Db,
  ctx: ServiceContext,
  action: string,
  target: { type: string; id: string },
  details: Record<string, unknown> = {},
): Promise<void> {
  const { t } = ctx.store;
  const now = ctx.now();
  await tx.insert(t.auditLog).values({
    ts: now,
    actor: ctx.actor,
    action,
    targetType: target.type,
    targetId: target.id,
    details,
  });
  await bumpConfigVersion(tx, ctx);
}

export async function bumpConfigVersion(tx: Db, ctx: ServiceContext): Promise<number> {
  const { t } = ctx.store;
  const [row] = await tx
    .insert(t.configVersion)
    .values({ id: 1, version: 1, updatedAt: ctx.now() })
    .onConflictDoUpdate({
      target: t.configVersion.id,
      set: { version: sql`${t.configVersion.version} + 1`, updatedAt: ctx.now() },
    })
    .returning({ version: t.configVersion.version });
  const version = Number(row?.version ?? 0);
  if (ctx.store.dialect === 'postgres') {
    // Delivered at commit, so listeners never see a version whose rows they cannot read yet.
    await tx.execute(sql`select pg_notify(${CONFIG_CHANNEL}, ${String(version)})`);
  }
  return version;
}

export async function currentConfigVersion(db: Db, ctx: Pick<ServiceContext, 'store'>): Promise<number> {
  const { t } = ctx.store;
  const [row] = await db.select({ version: t.configVersion.version }).from(t.configVersion).limit(1);
  return Number(row?.version ?? 0);
}

export interface AuditQuery {
  since?: Date;
  actor?: string;
  target?: string;
  action?: string;
  limit?: number;
}

export async function listAudit(ctx: ServiceContext, q: AuditQuery = {}): Promise<AuditEntry[]> {
  const { db, t } = ctx.store;
  const where: SQL[] = [];
  if (q.since) where.push(gte(t.auditLog.ts, q.since));
  if (q.actor) where.push(eq(t.auditLog.actor, q.actor));
  if (q.action) where.push(eq(t.auditLog.action, q.action));
  if (q.target) {
    const [type, id] = q.target.includes(':') ? q.target.split(':', 2) : [undefined, q.target];
    where.push(type ? and(eq(t.auditLog.targetType, type), eq(t.auditLog.targetId, id!))! : eq(t.auditLog.targetId, id!));
  }
  return db
    .select()
    .from(t.auditLog)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(t.auditLog.id))
    .limit(q.limit ?? 100);
}
