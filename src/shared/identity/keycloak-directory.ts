// The users commands against a Keycloak realm: the realm is the source of truth (users, roles,
// groups, enabled), the store keeps one mirror row per realm user so keys and usage attach to
// it. Keycloak is written first and the mirror after; a failure part-way undoes what it can in
// Keycloak, and the store is only written by mirrorUser's single transaction.
import type { ApiKey, User } from '../db/schema.js';
import { conflict, notFound, usageError } from '../errors.js';
import type { ServiceContext } from '../services/context.js';
import { requireOrg } from '../services/resolve.js';
import {
  checkEmail, checkGroup, checkRole, checkUsername, type DeletedUser, type KeyDisposition, localDirectory,
  type UserDirectory, type UserFilter, type UserInput, type UserStatus,
} from '../services/users.js';
import type { KeycloakAdmin } from './keycloak-admin.js';
import { type AuditedAction, disableOrphan, keycloakRows, type Mirrored, mirrorUser } from './keycloak-mirror.js';
import { findRealmUser, type RealmUser, readRealm, readState } from './keycloak-users.js';
import { ORG_GROUP_PREFIX, orgFromGroup } from './principal.js';

export interface SyncReport {
  users: number;
  created: string[];
  updated: string[];
  /** Store rows whose Keycloak user is gone: disabled, their keys refused. */
  orphaned: string[];
}

const uniq = (xs: string[]) => [...new Set(xs)];

export class KeycloakDirectory implements UserDirectory {
  readonly kind = 'keycloak' as const;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly admin: KeycloakAdmin,
  ) {}

  /** Lists the realm (and refreshes every mirror row on the way, so the list is the realm's truth). */
  async list(filter: UserFilter = {}): Promise<User[]> {
    const rows = (await this.syncRealm()).rows;
    const org = filter.org ? await requireOrg(this.ctx.store.db, this.ctx, filter.org) : undefined;
    const role = filter.role ? checkRole(filter.role) : undefined;
    return rows
      .filter((u) => (!org || u.orgId === org.id) && (!filter.status || u.status === filter.status) && (!role || u.roles.includes(role)))
      .sort((a, b) => a.username.localeCompare(b.username));
  }

  async get(ref: string): Promise<User> {
    return (await this.refresh(await this.find(ref))).user;
  }

  async create(username: string, input: UserInput): Promise<User> {
    checkUsername(username);
    const email = input.email ? checkEmail(input.email) : undefined;
    const roles = uniq((input.roles?.length ? input.roles : ['gateway-user']).map(checkRole));
    if (!input.org && !roles.includes('gateway-admin')) throw usageError('a user belongs to an org: pass --org (only a gateway-admin may have none)', 'org');
    const roleReps = await Promise.all(roles.map((r) => this.admin.requireRole(r)));
    const groups = [...(input.groups ?? []).map(checkGroup), ...(input.org ? [await this.orgGroupName(input.org)] : [])];
    const groupIds = await Promise.all(uniq(groups).map((g) => this.groupId(g)));
    const doing = `creating user '${username}'`;
    const { id } = await this.admin.call(doing, (kc) => kc.users.create({ username, ...(email ? { email } : {}), enabled: true }));
    try {
      await this.admin.call(doing, (kc) => kc.users.addRealmRoleMappings({ id, roles: roleReps.map((r) => ({ id: r.id, name: r.name })) }));
      for (const groupId of groupIds) await this.admin.call(doing, (kc) => kc.users.addToGroup({ id, groupId }));
      return (await this.refresh(await this.find(id), { action: 'users.create', details: { roles, groups } })).user;
    } catch (err) {
      // Half a user in Keycloak is worse than none: take it back, then report the first failure.
      await this.admin.call(`undoing ${doing}`, (kc) => kc.users.del({ id })).catch(() => undefined);
      throw err;
    }
  }

  async update(ref: string, input: UserInput): Promise<User> {
    const changed = Object.entries(input).filter(([, v]) => v !== undefined).map(([k]) => k);
    if (changed.length === 0) throw usageError('nothing to update: pass at least one option');
    const user = await this.find(ref);
    if (input.username !== undefined && input.username.toLowerCase() !== user.username) {
      throw usageError('Keycloak usernames are read-only: create a new user (and reassign its keys) instead', 'username');
    }
    const doing = `updating user '${user.username}'`;
    if (input.email !== undefined) {
      const email = input.email ? checkEmail(input.email) : '';
      await this.admin.call(doing, (kc) => kc.users.update({ id: user.id }, { email }));
    }
    const state = await readState(this.admin, user);
    if (input.roles !== undefined) {
      const wanted = uniq(input.roles.map(checkRole));
      for (const r of wanted.filter((x) => !state.roles.includes(x))) await this.mapRole(user, r, true);
      for (const r of state.roles.filter((x) => !wanted.includes(x))) await this.mapRole(user, r, false);
    }
    const keepOrg = (g: string) => orgFromGroup(g) !== undefined;
    const orgGroups = input.org === undefined ? state.groups.filter(keepOrg) : input.org === null ? [] : [await this.orgGroupName(input.org)];
    const plain = input.groups === undefined ? state.groups.filter((g) => !keepOrg(g)) : input.groups.map(checkGroup);
    const wantedGroups = uniq([...plain, ...orgGroups]);
    for (const g of wantedGroups.filter((x) => !state.groups.includes(x))) await this.member(user, g, true);
    for (const g of state.groups.filter((x) => !wantedGroups.includes(x))) await this.member(user, g, false);
    // Re-read: the representation we hold predates the email change.
    return (await this.refresh(await this.find(user.id), { action: 'users.update', details: { changed } })).user;
  }

  async setStatus(ref: string, status: UserStatus): Promise<User> {
    if (status !== 'active' && status !== 'disabled') throw usageError(`unknown status '${status}': use active or disabled`, 'status');
    const user = await this.find(ref);
    const enabled = status === 'active';
    if ((user.enabled !== false) === enabled) throw conflict(`user '${user.username}' is already ${enabled ? 'enabled' : 'disabled'}`);
    await this.admin.call(`${enabled ? 'enabling' : 'disabling'} user '${user.username}'`, (kc) => kc.users.update({ id: user.id }, { enabled }));
    return (await this.refresh(await this.find(user.id), { action: enabled ? 'users.enable' : 'users.disable' })).user;
  }

  async addRole(ref: string, role: string): Promise<User> {
    const user = await this.find(ref);
    const state = await readState(this.admin, user);
    const direct = await this.directRoles(user);
    if (direct.includes(role) || state.roles.includes(role)) throw conflict(`user '${user.username}' already has role ${role}`);
    await this.mapRole(user, role, true);
    return (await this.refresh(user, { action: 'users.roles.add', details: { role } })).user;
  }

  async removeRole(ref: string, role: string): Promise<User> {
    const user = await this.find(ref);
    if (!(await this.directRoles(user)).includes(role)) throw usageError(`user '${user.username}' does not have role ${role}`, 'role');
    await this.mapRole(user, role, false);
    return (await this.refresh(user, { action: 'users.roles.remove', details: { role } })).user;
  }

  async addGroup(ref: string, group: string): Promise<User> {
    const user = await this.find(ref);
    const name = orgFromGroup(group) ? await this.orgGroupName(orgFromGroup(group)!) : checkGroup(group);
    const state = await readState(this.admin, user);
    if (state.groups.includes(name)) throw conflict(`user '${user.username}' is already in group '${name}'`);
    await this.member(user, name, true);
    return (await this.refresh(user, { action: 'users.groups.add', details: { group: name } })).user;
  }

  async removeGroup(ref: string, group: string): Promise<User> {
    const user = await this.find(ref);
    const state = await readState(this.admin, user);
    if (!state.groups.includes(group)) throw usageError(`user '${user.username}' is not in group '${group}'`, 'group');
    await this.member(user, group, false);
    return (await this.refresh(user, { action: 'users.groups.remove', details: { group } })).user;
  }

  async liveKeys(ref: string): Promise<ApiKey[]> {
    return localDirectory(this.ctx).liveKeys((await this.get(ref)).id);
  }

  /** Decides about the keys first (nothing changes if that fails), then deletes in Keycloak, then the row. */
  async delete(ref: string, keys?: KeyDisposition): Promise<DeletedUser> {
    const user = await this.find(ref);
    const row = (await this.refresh(user)).user;
    const local = localDirectory(this.ctx);
    const live = await local.liveKeys(row.id);
    if (live.length && !keys) throw usageError(`user '${row.username}' has ${live.length} key(s): pass --keys revoke, or --keys reassign --to <user>`, 'keys');
    if (live.length && keys?.action === 'reassign') {
      const to = await local.get(keys.to);
      if (to.id === row.id) throw usageError('cannot reassign keys to the user being deleted', 'to');
      if (to.status !== 'active') throw usageError(`user '${to.username}' is disabled: enable it first or pick another user`, 'to');
    }
    await this.admin.call(`deleting user '${user.username}'`, (kc) => kc.users.del({ id: user.id }));
    return local.delete(row.id, keys);
  }

  /** Mirrors the whole realm into the store; rows whose Keycloak user is gone are disabled. */
  async sync(): Promise<SyncReport> {
    return (await this.syncRealm()).report;
  }

  private async syncRealm(): Promise<{ rows: User[]; report: SyncReport }> {
    const states = await readRealm(this.admin);
    const report: SyncReport = { users: states.length, created: [], updated: [], orphaned: [] };
    const rows: User[] = [];
    for (const state of states) {
      const { user, outcome } = await mirrorUser(this.ctx, state);
      rows.push(user);
      if (outcome !== 'unchanged') report[outcome].push(user.username);
    }
    const live = new Set(states.map((s) => s.id));
    for (const row of await keycloakRows(this.ctx)) {
      if (row.externalId && !live.has(row.externalId) && row.status !== 'disabled') {
        await disableOrphan(this.ctx, row);
        report.orphaned.push(row.username);
      }
    }
    return { rows, report };
  }

  private find(ref: string): Promise<RealmUser> {
    return findRealmUser(this.admin, this.ctx, ref);
  }

  private async refresh(user: RealmUser, audited?: AuditedAction): Promise<Mirrored> {
    return mirrorUser(this.ctx, await readState(this.admin, user), audited);
  }

  private async directRoles(user: RealmUser): Promise<string[]> {
    const roles = await this.admin.call(`reading roles of '${user.username}'`, (kc) => kc.users.listRealmRoleMappings({ id: user.id }));
    return roles.map((r) => r.name ?? '');
  }

  private async mapRole(user: RealmUser, role: string, add: boolean): Promise<void> {
    const rep = await this.admin.requireRole(role);
    const roles = [{ id: rep.id, name: rep.name }];
    const doing = `${add ? 'granting' : 'removing'} role ${role} ${add ? 'to' : 'from'} '${user.username}'`;
    await this.admin.call(doing, (kc) => (add ? kc.users.addRealmRoleMappings({ id: user.id, roles }) : kc.users.delRealmRoleMappings({ id: user.id, roles })));
  }

  private async member(user: RealmUser, group: string, join: boolean): Promise<void> {
    const groupId = await this.groupId(group, join);
    const doing = `${join ? 'adding' : 'removing'} '${user.username}' ${join ? 'to' : 'from'} group '${group}'`;
    await this.admin.call(doing, (kc) => (join ? kc.users.addToGroup({ id: user.id, groupId }) : kc.users.delFromGroup({ id: user.id, groupId })));
  }

  /** `org:<name>` of an org that exists in the store (by id or name). */
  private async orgGroupName(orgRef: string): Promise<string> {
    return `${ORG_GROUP_PREFIX}${(await requireOrg(this.ctx.store.db, this.ctx, orgRef)).name}`;
  }

  /** A group's id; an org group is created on first use, any other group must exist in the realm. */
  private async groupId(name: string, mayCreate = true): Promise<string> {
    const found = await this.admin.findGroup(name);
    if (found?.id) return found.id;
    if (!mayCreate || !orgFromGroup(name)) throw notFound(`group (in Keycloak realm '${this.admin.settings.realm}')`, name);
    return (await this.admin.call(`creating group '${name}'`, (kc) => kc.groups.create({ name }))).id;
  }
}
