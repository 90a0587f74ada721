// A limit or credit scope as an operator types it (key:<id>, user:<username>, org:<name>)
// resolved to the row it names, so every scope command answers "not found" the same way.
import { and, desc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/store.js';
import type { ServiceContext } from './context.js';
import { parseScope, type Scope } from './limits.js';
import { requireKey, requireOrg, requireUser } from './resolve.js';
import type { UsageFilter } from './usage-totals.js';

export interface ResolvedScope extends Scope {
  /** For people: the org or user name, or the key's name. */
  label: string;
}

export const scopeText = (s: Scope) => `${s.type}:${s.id}`;

/** Parses `text` and checks that what it names exists (not found → exit 3). */
export async function resolveScope(db: Db, ctx: ServiceContext, text: string): Promise<ResolvedScope> {
  const s = parseScope(text);
  if (s.type === 'key') {
    const key = await requireKey(db, ctx, s.id);
    return { type: 'key', id: key.id, label: key.name };
  }
  if (s.type === 'user') {
    const user = await requireUser(db, ctx, s.id);
    return { type: 'user', id: user.id, label: user.username };
  }
  const org = await requireOrg(db, ctx, s.id);
  return { type: 'org', id: org.id, label: org.name };
}

/** A key and all its descendants: a child's usage also counts against its ancestors (DESIGN §3). */
export async function keyWithDescendants(db: Db, ctx: Pick<ServiceContext, 'store'>, keyId: string): Promise<string[]> {
  const { t } = ctx.store;
  const all = [keyId];
  let frontier = [keyId];
  while (frontier.length) {
    const rows = await db.select({ id: t.apiKeys.id }).from(t.apiKeys).where(inArray(t.apiKeys.parentId, frontier));
    frontier = rows.map((r) => r.id).filter((id) => !all.includes(id));
    all.push(...frontier);
  }
  return all;
}

/** What usage counts against a scope. */
export async function scopeUsageFilter(db: Db, ctx: Pick<ServiceContext, 'store'>, s: Scope, model = ''): Promise<UsageFilter> {
  const base: UsageFilter = model ? { model } : {};
  if (s.type === 'org') return { ...base, orgId: s.id };
  if (s.type === 'user') return { ...base, userId: s.id };
  return { ...base, keyIds: await keyWithDescendants(db, ctx, s.id) };
}

/** The latest quota reset of a scope's window, if any. */
export async function latestReset(db: Db, ctx: Pick<ServiceContext, 'store'>, s: Scope, window: string): Promise<Date | null> {
  const { t } = ctx.store;
  const [row] = await db
    .select({ resetAt: t.limitResets.resetAt })
    .from(t.limitResets)
    .where(and(eq(t.limitResets.scopeType, s.type), eq(t.limitResets.scopeId, s.id), eq(t.limitResets.window, window)))
    .orderBy(desc(t.limitResets.resetAt))
    .limit(1);
  return row?.resetAt ?? null;
}
