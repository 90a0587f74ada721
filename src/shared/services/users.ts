// Users behind one interface: the local directory (users in the store, the embedded default)
// now, a Keycloak directory later, and the `users` commands never know which one they talk to.
import { and, asc, eq, inArray, type SQL } from 'drizzle-orm';
import type { ApiKey, User } from '../db/schema.js';
import type { Db } from '../db/store.js';
import { conflict, usageError } from '../errors.js';
import { newId } from '../ids.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { findUser, requireOrg, requireUser } from './resolve.js';

export const ROLES = ['gateway-admin', 'org-admin', 'gateway-user'] as const;
export type Role = (typeof ROLES)[number];
export const USER_STATUSES = ['active', 'disabled'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

export interface UserInput {
  username?: string;
  email?: string | null;
  /** org id or name; null detaches the user */
  org?: string | null;
  roles?: string[];
  groups?: string[];
}

export interface UserFilter {
  org?: string;
  status?: string;
  role?: string;
}

/** What to do with a deleted user's keys. */
export type KeyDisposition = { action: 'revoke' } | { action: 'reassign'; to: string };

export interface DeletedUser {
  user: User;
  keys: { revoked: string[]; reassigned: string[]; to: string | null };
}

export interface UserDirectory {
  readonly kind: 'local' | 'keycloak';
  list(filter?: UserFilter): Promise<User[]>;
  get(ref: string): Promise<User>;
  create(username: string, input: UserInput): Promise<User>;
  update(ref: string, input: UserInput): Promise<User>;
  setStatus(ref: string, status: UserStatus): Promise<User>;
  addRole(ref: string, role: string): Promise<User>;
  removeRole(ref: string, role: string): Promise<User>;
  addGroup(ref: string, group: string): Promise<User>;
  removeGroup(ref: string, group: string): Promise<User>;
  /** Keys bound to the user that are not revoked: what a delete must decide about. */
  liveKeys(ref: string): Promise<ApiKey[]>;
  delete(ref: string, keys?: KeyDisposition): Promise<DeletedUser>;
}

const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const GROUP_RE = /^[A-Za-z0-9][A-Za-z0-9._/ -]{0,63}$/;

export function checkUsername(name: string): string {
  if (!USERNAME_RE.test(name) || /^usr_[0-9a-z]{12}$/.test(name)) {
    throw usageError(`invalid username '${name}': letters, digits, '.', '_', '@' or '-' (max 64)`, 'username');
  }
  return name;
}

export function checkEmail(email: string): string {
  if (!EMAIL_RE.test(email)) throw usageError(`invalid email '${email}'`, 'email');
  return email.toLowerCase();
}

export function checkRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) throw usageError(`unknown role '${role}': use one of ${ROLES.join(', ')}`, 'role');
  return role as Role;
}

export function checkGroup(group: string): string {
  if (!GROUP_RE.test(group)) throw usageError(`invalid group '${group}': letters, digits, '.', '_', '/', ' ' or '-' (max 64)`, 'group');
  return group;
}

const uniq = (xs: string[]) => [...new Set(xs)];

export function localDirectory(ctx: ServiceContext): UserDirectory {
  return new LocalUserDirectory(ctx);
}

class LocalUserDirectory implements UserDirectory {
  readonly kind = 'local' as const;

  constructor(private readonly ctx: ServiceContext) {}

  async list(filter: UserFilter = {}): Promise<User[]> {
    const { db, t } = this.ctx.store;
    const where: SQL[] = [];
    if (filter.org) where.push(eq(t.users.orgId, (await requireOrg(db, this.ctx, filter.org)).id));
    if (filter.status) where.push(eq(t.users.status, checkStatus(filter.status)));
    const rows = await db
      .select()
      .from(t.users)
      .where(where.length ? and(...where) : undefined)
      .orderBy(asc(t.users.username));
    return filter.role ? rows.filter((u) => u.roles.includes(checkRole(filter.role!))) : rows;
  }

  get(ref: string): Promise<User> {
    return requireUser(this.ctx.store.db, this.ctx, ref);
  }

  async create(username: string, input: UserInput): Promise<User> {
    const ctx = this.ctx;
    checkUsername(username);
    const email = input.email ? checkEmail(input.email) : null;
    const roles = uniq((input.roles?.length ? input.roles : ['gateway-user']).map(checkRole));
    const groups = uniq((input.groups ?? []).map(checkGroup));
    if (!input.org && !roles.includes('gateway-admin')) throw usageError('a user belongs to an org: pass --org (only a gateway-admin may have none)', 'org');
    return ctx.store.transaction(async (tx) => {
      const org = input.org ? await requireOrg(tx, ctx, input.org) : null;
      await this.checkUnique(tx, username, email);
      const now = ctx.now();
      const row: User = {
        id: newId('usr'),
        orgId: org?.id ?? null,
        username,
        email,
        status: 'active',
        roles,
        groups,
        source: 'local',
        externalId: null,
        createdAt: now,
        updatedAt: now,
      };
      await tx.insert(ctx.store.t.users).values(row);
      await recordChange(tx, ctx, 'users.create', { type: 'user', id: row.id }, { username, org: row.orgId, roles });
      return row;
    });
  }

  private async checkUnique(tx: Db, username: string | undefined, email: string | null | undefined, except?: string) {
    if (username) {
      const clash = await findUser(tx, this.ctx, username);
      if (clash && clash.id !== except && clash.username === username) throw conflict(`user '${username}' already exists`);
    }
    if (email) {
      const { t } = this.ctx.store;
      const [clash] = await tx.select({ id: t.users.id }).from(t.users).where(eq(t.users.email, email));
      if (clash && clash.id !== except) throw conflict(`a user with email '${email}' already exists`);
    }
  }

  async update(ref: string, input: UserInput): Promise<User> {
    const ctx = this.ctx;
    const changed = Object.entries(input).filter(([, v]) => v !== undefined).map(([k]) => k);
    if (changed.length === 0) throw usageError('nothing to update: pass at least one option');
    return this.mutate(ref, 'users.update', async (tx, user) => {
      const patch: Partial<User> = {};
      if (input.username !== undefined) patch.username = checkUsername(input.username);
      if (input.email !== undefined) patch.email = input.email === null || input.email === '' ? null : checkEmail(input.email);
      if (input.roles !== undefined) patch.roles = uniq(input.roles.map(checkRole));
      if (input.groups !== undefined) patch.groups = uniq(input.groups.map(checkGroup));
      if (input.org !== undefined) patch.orgId = input.org === null ? null : (await requireOrg(tx, ctx, input.org)).id;
      await this.checkUnique(tx, patch.username, patch.email, user.id);
      return { patch, details: { changed } };
    });
  }

  setStatus(ref: string, status: UserStatus): Promise<User> {
    checkStatus(status);
    return this.mutate(ref, status === 'active' ? 'users.enable' : 'users.disable', async (_tx, user) => {
      if (user.status === status) throw conflict(`user '${user.username}' is already ${status === 'active' ? 'enabled' : 'disabled'}`);
      return { patch: { status }, details: {} };
    });
  }

  addRole(ref: string, role: string): Promise<User> {
    const r = checkRole(role);
    return this.mutate(ref, 'users.roles.add', async (_tx, user) => {
      if (user.roles.includes(r)) throw conflict(`user '${user.username}' already has role ${r}`);
      return { patch: { roles: [...user.roles, r] }, details: { role: r } };
    });
  }

  removeRole(ref: string, role: string): Promise<User> {
    const r = checkRole(role);
    return this.mutate(ref, 'users.roles.remove', async (_tx, user) => {
      if (!user.roles.includes(r)) throw usageError(`user '${user.username}' does not have role ${r}`, 'role');
      return { patch: { roles: user.roles.filter((x) => x !== r) }, details: { role: r } };
    });
  }

  addGroup(ref: string, group: string): Promise<User> {
    const g = checkGroup(group);
    return this.mutate(ref, 'users.groups.add', async (_tx, user) => {
      if (user.groups.includes(g)) throw conflict(`user '${user.username}' is already in group '${g}'`);
      return { patch: { groups: [...user.groups, g] }, details: { group: g } };
    });
  }

  removeGroup(ref: string, group: string): Promise<User> {
    return this.mutate(ref, 'users.groups.remove', async (_tx, user) => {
      if (!user.groups.includes(group)) throw usageError(`user '${user.username}' is not in group '${group}'`, 'group');
      return { patch: { groups: user.groups.filter((x) => x !== group) }, details: { group } };
    });
  }

  async liveKeys(ref: string): Promise<ApiKey[]> {
    const { db } = this.ctx.store;
    const user = await requireUser(db, this.ctx, ref);
    return liveKeysOf(db, this.ctx, user.id);
  }

  async delete(ref: string, keys?: KeyDisposition): Promise<DeletedUser> {
    const ctx = this.ctx;
    return ctx.store.transaction(async (tx) => {
      const { t } = ctx.store;
      const user = await requireUser(tx, ctx, ref);
      const live = await liveKeysOf(tx, ctx, user.id);
      const ids = live.map((k) => k.id);
      const result: DeletedUser = { user, keys: { revoked: [], reassigned: [], to: null } };
      if (ids.length && !keys) {
        throw usageError(`user '${user.username}' has ${ids.length} key(s): pass --keys revoke, or --keys reassign --to <user>`, 'keys');
      }
      if (ids.length && keys?.action === 'revoke') {
        const now = ctx.now();
        await tx.update(t.apiKeys).set({ status: 'revoked', revokedAt: now, updatedAt: now, prevKeyHash: null, prevKeyExpiresAt: null }).where(inArray(t.apiKeys.id, ids));
        result.keys.revoked = ids;
      }
      if (ids.length && keys?.action === 'reassign') {
        const to = await requireUser(tx, ctx, keys.to);
        if (to.id === user.id) throw usageError('cannot reassign keys to the user being deleted', 'to');
        if (to.status !== 'active') throw usageError(`user '${to.username}' is disabled: enable it first or pick another user`, 'to');
        const foreign = live.filter((k) => to.orgId && k.orgId !== to.orgId);
        if (foreign.length) throw usageError(`user '${to.username}' belongs to another org than key(s) ${foreign.map((k) => k.id).join(', ')}`, 'to');
        await tx.update(t.apiKeys).set({ userId: to.id, updatedAt: ctx.now() }).where(inArray(t.apiKeys.id, ids));
        result.keys.reassigned = ids;
        result.keys.to = to.id;
      }
      await tx.delete(t.limits).where(and(eq(t.limits.scopeType, 'user'), eq(t.limits.scopeId, user.id)));
      await tx.delete(t.users).where(eq(t.users.id, user.id));
      await recordChange(tx, ctx, 'users.delete', { type: 'user', id: user.id }, { username: user.username, keys: result.keys });
      return result;
    });
  }

  /** Reads, patches and audits one user in a transaction; the proxy sees it on its next refresh. */
  private mutate(ref: string, action: string, change: (tx: Db, user: User) => Promise<{ patch: Partial<User>; details: Record<string, unknown> }>): Promise<User> {
    const ctx = this.ctx;
    return ctx.store.transaction(async (tx) => {
      const user = await requireUser(tx, ctx, ref);
      const { patch, details } = await change(tx, user);
      const next = { ...user, ...patch, updatedAt: ctx.now() };
      await tx.update(ctx.store.t.users).set({ ...patch, updatedAt: next.updatedAt }).where(eq(ctx.store.t.users.id, user.id));
      await recordChange(tx, ctx, action, { type: 'user', id: user.id }, details);
      return next;
    });
  }
}

function checkStatus(status: string): UserStatus {
  if (!(USER_STATUSES as readonly string[]).includes(status)) throw usageError(`unknown status '${status}': use active or disabled`, 'status');
  return status as UserStatus;
}

async function liveKeysOf(db: Db, ctx: ServiceContext, userId: string): Promise<ApiKey[]> {
  const { t } = ctx.store;
  const rows = await db.select().from(t.apiKeys).where(eq(t.apiKeys.userId, userId)).orderBy(asc(t.apiKeys.createdAt));
  return rows.filter((k) => k.status !== 'revoked');
}

/**
 * The local user an operator is: `os:<name>` maps to the user whose username is the OS user;
 * `user:<ref>` (a signed-in identity) to that user. Undefined when there is none.
 */
export async function operatorUser(ctx: ServiceContext): Promise<User | undefined> {
  const i = ctx.actor.indexOf(':');
  const kind = ctx.actor.slice(0, i);
  const name = ctx.actor.slice(i + 1);
  if (i <= 0 || !name) return undefined;
  const user = await findUser(ctx.store.db, ctx, name);
  if (!user) return undefined;
  return kind === 'os' && user.username !== name ? undefined : user;
}
