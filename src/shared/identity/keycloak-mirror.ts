// Keycloak users mirrored into the store: one `users` row per realm user (source 'keycloak',
// external_id = its `sub`), so keys, limits and usage attach to it and the proxy's snapshot
// sees its status. A disabled (or deleted) Keycloak user becomes a disabled row, and the
// change is recorded, so the proxy refuses the user's keys on its next refresh.
import { and, eq, ne } from 'drizzle-orm';
import type { User } from '../db/schema.js';
import type { Db } from '../db/store.js';
import { conflict } from '../errors.js';
import { newId } from '../ids.js';
import { recordChange } from '../services/audit.js';
import type { ServiceContext } from '../services/context.js';
import { findOrg } from '../services/resolve.js';

/** What the store keeps of a realm user. */
export interface KeycloakUserState {
  id: string;
  username: string;
  email: string | null;
  enabled: boolean;
  /** Gateway roles directly mapped to the user. */
  roles: string[];
  /** Group names (an `org:<name>` group puts the user in that org). */
  groups: string[];
  /** From an `org:<name>` group, else the `gateway_org` attribute. */
  orgName: string | null;
}

export type MirrorOutcome = 'created' | 'updated' | 'unchanged';

export interface Mirrored {
  user: User;
  outcome: MirrorOutcome;
}

/** A command's change to audit even when the row itself does not change (e.g. a non-gateway role). */
export interface AuditedAction {
  action: string;
  details?: Record<string, unknown>;
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export async function mirrorUser(ctx: ServiceContext, k: KeycloakUserState, audited?: AuditedAction): Promise<Mirrored> {
  return ctx.store.transaction(async (tx) => {
    const existing = await findMirror(tx, ctx, k);
    const org = k.orgName ? await findOrg(tx, ctx, k.orgName) : undefined;
    const email = k.email ? await freeEmail(tx, ctx, k.email, existing?.id) : null;
    const wanted = {
      username: k.username, email, status: k.enabled ? 'active' : 'disabled', roles: [...k.roles].sort(), groups: [...k.groups].sort(),
      orgId: org?.id ?? null, source: 'keycloak', externalId: k.id,
    };
    const now = ctx.now();
    let user: User;
    let outcome: MirrorOutcome;
    if (!existing) {
      user = { id: newId('usr'), ...wanted, createdAt: now, updatedAt: now };
      await tx.insert(ctx.store.t.users).values(user);
      outcome = 'created';
    } else {
      const changed = Object.entries(wanted).filter(([k2, v]) => {
        const old = existing[k2 as keyof typeof wanted];
        return Array.isArray(v) ? !same(v, old as string[]) : v !== old;
      });
      outcome = changed.length ? 'updated' : 'unchanged';
      user = outcome === 'updated' ? { ...existing, ...wanted, updatedAt: now } : existing;
      if (outcome === 'updated') await tx.update(ctx.store.t.users).set({ ...wanted, updatedAt: now }).where(eq(ctx.store.t.users.id, existing.id));
    }
    if (audited || outcome !== 'unchanged') {
      const action = audited?.action ?? 'users.sync';
      const details = { source: 'keycloak', keycloak_id: k.id, username: k.username, status: user.status, ...audited?.details };
      await recordChange(tx, ctx, action, { type: 'user', id: user.id }, outcome === 'unchanged' ? details : { ...details, mirror: outcome });
    }
    return { user, outcome };
  });
}

/** A store row whose Keycloak user is gone: disabled, so its keys stop working, and kept for history. */
export async function disableOrphan(ctx: ServiceContext, row: User): Promise<User> {
  return ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    await tx.update(ctx.store.t.users).set({ status: 'disabled', updatedAt: now }).where(eq(ctx.store.t.users.id, row.id));
    await recordChange(tx, ctx, 'users.sync', { type: 'user', id: row.id }, { source: 'keycloak', keycloak_id: row.externalId, reason: 'deleted in Keycloak', status: 'disabled' });
    return { ...row, status: 'disabled', updatedAt: now };
  });
}

/** The row mirroring this Keycloak user; else a local row of the same username, which it adopts. */
async function findMirror(tx: Db, ctx: ServiceContext, k: KeycloakUserState): Promise<User | undefined> {
  const { t } = ctx.store;
  const [byId] = await tx.select().from(t.users).where(eq(t.users.externalId, k.id)).limit(1);
  if (byId) return byId;
  const [byName] = await tx.select().from(t.users).where(eq(t.users.username, k.username)).limit(1);
  if (!byName) return undefined;
  if (byName.externalId !== null) {
    throw conflict(`store user '${k.username}' (${byName.id}) already mirrors another Keycloak user (${byName.externalId}); delete or rename it first`);
  }
  return byName;
}

/** The email, unless another row holds it (the store keeps emails unique; Keycloak may not). */
async function freeEmail(tx: Db, ctx: ServiceContext, email: string, self: string | undefined): Promise<string | null> {
  const { t } = ctx.store;
  const other = self ? and(eq(t.users.email, email), ne(t.users.id, self)) : eq(t.users.email, email);
  const [clash] = await tx.select({ id: t.users.id }).from(t.users).where(other).limit(1);
  return clash ? null : email;
}

export async function keycloakRows(ctx: ServiceContext): Promise<User[]> {
  const { db, t } = ctx.store;
  return db.select().from(t.users).where(eq(t.users.source, 'keycloak'));
}
