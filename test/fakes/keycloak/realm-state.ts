import { randomBytes, randomUUID } from 'node:crypto';
import type { ClientDef, DeviceGrant, FakeKeycloakOptions, Group, Role, Session, StoredUser } from './types.js';

export const REALM_MANAGEMENT = 'realm-management';
export const ACCOUNT = 'account';

const REALM_MANAGEMENT_ROLES = [
  'create-client', 'impersonation', 'manage-authorization', 'manage-clients', 'manage-events',
  'manage-identity-providers', 'manage-realm', 'manage-users', 'query-clients', 'query-groups',
  'query-realms', 'query-users', 'realm-admin', 'view-authorization', 'view-clients', 'view-events',
  'view-identity-providers', 'view-realm', 'view-users',
];
const ACCOUNT_ROLES = [
  'delete-account', 'manage-account', 'manage-account-links', 'manage-consent', 'view-applications',
  'view-consent', 'view-groups', 'view-profile',
];

/** Client roles per client, and their composites (the built-in ones Keycloak ships). */
export const CLIENT_ROLES: Record<string, string[]> = { [REALM_MANAGEMENT]: REALM_MANAGEMENT_ROLES, [ACCOUNT]: ACCOUNT_ROLES };
const CLIENT_COMPOSITES: Record<string, Record<string, string[]>> = {
  [REALM_MANAGEMENT]: {
    'realm-admin': REALM_MANAGEMENT_ROLES.filter((r) => r !== 'realm-admin'),
    'view-users': ['query-users', 'query-groups'],
    'view-clients': ['query-clients'],
  },
  [ACCOUNT]: { 'manage-account': ['manage-account-links'] },
};

export interface RealmConfig {
  accessTokenLifespanSec: number;
  refreshTokenLifespanSec: number;
  invalidGrantStatus: 400 | 401;
  deviceIntervalSec: number;
  deviceLifespanSec: number;
  groupsFullPath: boolean;
  now: () => number;
}

/** A bearer-only built-in client that only holds roles (`realm-management`, `account`). */
export interface RoleClient {
  uuid: string;
  /** Role name → role id. */
  roleIds: Map<string, string>;
}

export interface RealmState {
  name: string;
  id: string;
  clients: Map<string, ClientDef>;
  roleClients: Map<string, RoleClient>;
  /** Realm roles by name. */
  roles: Map<string, Role>;
  groups: Map<string, Group>;
  users: Map<string, StoredUser>;
  sessions: Map<string, Session>;
  devices: Map<string, DeviceGrant>;
  revokedJtis: Set<string>;
  config: RealmConfig;
}

export function defaultRolesName(state: RealmState): string {
  return `default-roles-${state.name}`;
}

function resolveConfig(opts: FakeKeycloakOptions): RealmConfig {
  return {
    accessTokenLifespanSec: opts.accessTokenLifespanSec ?? 60,
    refreshTokenLifespanSec: opts.refreshTokenLifespanSec ?? 1800,
    invalidGrantStatus: opts.invalidGrantStatus ?? 400,
    deviceIntervalSec: opts.deviceCodeIntervalSec ?? 5,
    deviceLifespanSec: opts.deviceCodeLifespanSec ?? 600,
    groupsFullPath: opts.groupsClaimFullPath ?? true,
    now: opts.now ?? Date.now,
  };
}

function makeClient(clientId: string, fields: Partial<ClientDef>): ClientDef {
  return {
    uuid: randomUUID(), clientId, publicClient: true, serviceAccount: false,
    directAccessGrants: true, deviceGrant: false, lightweight: false, ...fields,
  };
}

function seedClients(state: RealmState, opts: FakeKeycloakOptions): void {
  const confidential = makeClient(opts.clientId ?? 'gateway', {
    secret: opts.clientSecret ?? randomBytes(24).toString('base64url'),
    publicClient: false,
    serviceAccount: true,
  });
  const cli = makeClient(opts.publicClientId ?? 'gatewayctl', { deviceGrant: true });
  const adminCli = makeClient('admin-cli', { lightweight: true });
  for (const c of [confidential, cli, adminCli]) state.clients.set(c.clientId, c);
}

function seedRoleClients(): Map<string, RoleClient> {
  const out = new Map<string, RoleClient>();
  for (const [clientId, names] of Object.entries(CLIENT_ROLES)) {
    out.set(clientId, { uuid: randomUUID(), roleIds: new Map(names.map((n) => [n, randomUUID()])) });
  }
  return out;
}

/** Keycloak's message-key descriptions of built-in roles, e.g. `${role_offline-access}`. */
function messageKey(key: string): string {
  return `\${${key}}`;
}

function seedRoles(state: RealmState): void {
  addRealmRole(state, defaultRolesName(state), messageKey('role_default-roles')).composite = true;
  addRealmRole(state, 'offline_access', messageKey('role_offline-access'));
  addRealmRole(state, 'uma_authorization', messageKey('role_uma_authorization'));
  for (const name of ['gateway-admin', 'org-admin', 'gateway-user']) addRealmRole(state, name);
}

function seedServiceAccount(state: RealmState): void {
  for (const client of state.clients.values()) {
    if (!client.serviceAccount) continue;
    const user = addStoredUser(state, { username: `service-account-${client.clientId}`, enabled: true });
    user.serviceAccountClientId = client.clientId;
    user.clientRoles.set(REALM_MANAGEMENT, new Set(['realm-admin']));
  }
}

export function createRealmState(opts: FakeKeycloakOptions): RealmState {
  const state: RealmState = {
    name: opts.realm ?? 'gateway', id: randomUUID(), clients: new Map(), roleClients: seedRoleClients(), roles: new Map(),
    groups: new Map(), users: new Map(), sessions: new Map(), devices: new Map(),
    revokedJtis: new Set(), config: resolveConfig(opts),
  };
  seedClients(state, opts);
  seedRoles(state);
  seedServiceAccount(state);
  return state;
}

export function addRealmRole(state: RealmState, name: string, description?: string): Role {
  const role: Role = { id: randomUUID(), name, composite: false, attributes: {} };
  if (description !== undefined) role.description = description;
  state.roles.set(name, role);
  return role;
}

export function addGroupRecord(state: RealmState, name: string, attributes: Record<string, string[]>): Group {
  const group: Group = { id: randomUUID(), name, attributes: structuredClone(attributes) };
  state.groups.set(group.id, group);
  return group;
}

export function findGroupByName(state: RealmState, name: string): Group | undefined {
  return [...state.groups.values()].find((g) => g.name === name);
}

export interface UserFields {
  username: string;
  enabled: boolean;
  email?: string;
  firstName?: string;
  lastName?: string;
  emailVerified?: boolean;
  attributes?: Record<string, string[]>;
}

/** Creates a user the way Keycloak does: lower-cased username/email, default roles mapped. */
export function addStoredUser(state: RealmState, f: UserFields): StoredUser {
  const user: StoredUser = {
    id: randomUUID(), username: f.username.toLowerCase(), enabled: f.enabled,
    emailVerified: f.emailVerified ?? false, createdTimestamp: state.config.now(),
    attributes: structuredClone(f.attributes ?? {}), requiredActions: [],
    realmRoleIds: new Set(), clientRoles: new Map(), groupIds: new Set(),
  };
  if (f.email) user.email = f.email.toLowerCase();
  if (f.firstName) user.firstName = f.firstName;
  if (f.lastName) user.lastName = f.lastName;
  const defaults = state.roles.get(defaultRolesName(state));
  if (defaults) user.realmRoleIds.add(defaults.id);
  state.users.set(user.id, user);
  return user;
}

export function findUserByUsername(state: RealmState, username: string): StoredUser | undefined {
  const wanted = username.toLowerCase();
  return [...state.users.values()].find((u) => u.username === wanted);
}

export function findUserByEmail(state: RealmState, email: string): StoredUser | undefined {
  const wanted = email.toLowerCase();
  return [...state.users.values()].find((u) => u.email === wanted);
}

/** Login name: username, or email (Keycloak's `loginWithEmailAllowed` is on by default). */
export function findUserByLogin(state: RealmState, login: string): StoredUser | undefined {
  const user = findUserByUsername(state, login) ?? findUserByEmail(state, login);
  return user?.serviceAccountClientId ? undefined : user;
}

/** Realm users as the admin API lists them: service accounts hidden, sorted by username. */
export function listedUsers(state: RealmState): StoredUser[] {
  return [...state.users.values()]
    .filter((u) => !u.serviceAccountClientId)
    .sort((a, b) => a.username.localeCompare(b.username));
}

export function roleById(state: RealmState, id: string): Role | undefined {
  return [...state.roles.values()].find((r) => r.id === id);
}

export function directRealmRoles(state: RealmState, user: StoredUser): Role[] {
  return [...user.realmRoleIds]
    .map((id) => roleById(state, id))
    .filter((r): r is Role => r !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Effective realm roles: direct mappings with `default-roles-<realm>` expanded. */
export function effectiveRealmRoles(state: RealmState, user: StoredUser): Role[] {
  const direct = directRealmRoles(state, user);
  const out = new Map(direct.map((r) => [r.name, r]));
  if (out.has(defaultRolesName(state))) {
    for (const name of ['offline_access', 'uma_authorization']) {
      const role = state.roles.get(name);
      if (role) out.set(name, role);
    }
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function expandClientRoles(clientId: string, names: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const name of names) {
    out.add(name);
    for (const sub of CLIENT_COMPOSITES[clientId]?.[name] ?? []) out.add(sub);
  }
  return [...out].sort();
}

/** Effective client roles per client; the default roles bring `account` roles, as in Keycloak. */
export function effectiveClientRoles(state: RealmState, user: StoredUser): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [clientId, names] of user.clientRoles) {
    if (names.size > 0) out.set(clientId, expandClientRoles(clientId, names));
  }
  const hasDefaults = directRealmRoles(state, user).some((r) => r.name === defaultRolesName(state));
  if (hasDefaults) {
    const account = new Set([...(user.clientRoles.get(ACCOUNT) ?? []), 'manage-account', 'view-profile']);
    out.set(ACCOUNT, expandClientRoles(ACCOUNT, account));
  }
  return out;
}

export function userGroups(state: RealmState, user: StoredUser): Group[] {
  return [...user.groupIds]
    .map((id) => state.groups.get(id))
    .filter((g): g is Group => g !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function endUserSessions(state: RealmState, userId: string): void {
  for (const [sid, session] of state.sessions) {
    if (session.userId === userId) state.sessions.delete(sid);
  }
}

export function deleteUser(state: RealmState, user: StoredUser): void {
  endUserSessions(state, user.id);
  state.users.delete(user.id);
}
