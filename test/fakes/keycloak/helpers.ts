import {
  addGroupRecord, addRealmRole, addStoredUser, CLIENT_ROLES, effectiveRealmRoles, findGroupByName, findUserByUsername,
  type RealmState, userGroups,
} from './realm-state.js';
import type { NewUser, StoredUser, UserSnapshot } from './types.js';

/** Test-side seeding and inspection (no HTTP involved). Misuse throws, so a broken fixture fails loudly. */

function fixtureError(message: string): Error {
  return new Error(`fake keycloak: ${message}`);
}

function resolveRealmRoleIds(state: RealmState, names: string[]): string[] {
  return names.map((name) => {
    const role = state.roles.get(name);
    if (!role) throw fixtureError(`unknown realm role ${name}`);
    return role.id;
  });
}

function resolveGroupIds(state: RealmState, names: string[]): string[] {
  return names.map((name) => {
    const group = findGroupByName(state, name.replace(/^\//, ''));
    if (!group) throw fixtureError(`unknown group ${name}`);
    return group.id;
  });
}

function resolveClientRoles(roles: Record<string, string[]>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [clientId, names] of Object.entries(roles)) {
    const known = CLIENT_ROLES[clientId];
    const unknown = names.find((n) => !known?.includes(n));
    if (unknown !== undefined) throw fixtureError(`unknown client role ${clientId}/${unknown}`);
    out.set(clientId, new Set(names));
  }
  return out;
}

export function seedUser(state: RealmState, u: NewUser): string {
  if (findUserByUsername(state, u.username)) throw fixtureError(`user ${u.username} exists`);
  const roleIds = resolveRealmRoleIds(state, u.realmRoles ?? []);
  const groupIds = resolveGroupIds(state, u.groups ?? []);
  const clientRoles = resolveClientRoles(u.clientRoles ?? {});
  const user = addStoredUser(state, {
    username: u.username, enabled: u.enabled ?? true, email: u.email, firstName: u.firstName,
    lastName: u.lastName, emailVerified: u.emailVerified, attributes: u.attributes,
  });
  user.password = u.password;
  for (const id of roleIds) user.realmRoleIds.add(id);
  for (const id of groupIds) user.groupIds.add(id);
  user.clientRoles = clientRoles;
  return user.id;
}

export function seedRole(state: RealmState, name: string, description?: string): void {
  if (state.roles.has(name)) throw fixtureError(`role ${name} exists`);
  addRealmRole(state, name, description);
}

export function seedGroup(state: RealmState, name: string, attributes: Record<string, string[]> = {}): string {
  if (findGroupByName(state, name)) throw fixtureError(`group ${name} exists`);
  return addGroupRecord(state, name, attributes).id;
}

export function lookupUser(state: RealmState, idOrUsername: string): StoredUser | undefined {
  return state.users.get(idOrUsername) ?? findUserByUsername(state, idOrUsername);
}

export function snapshotUser(state: RealmState, user: StoredUser): UserSnapshot {
  const snap: UserSnapshot = {
    id: user.id, username: user.username, enabled: user.enabled, emailVerified: user.emailVerified,
    createdTimestamp: user.createdTimestamp, attributes: structuredClone(user.attributes),
    requiredActions: [...user.requiredActions],
    realmRoles: [...user.realmRoleIds].flatMap((id) => [...state.roles.values()].filter((r) => r.id === id).map((r) => r.name)).sort(),
    effectiveRealmRoles: effectiveRealmRoles(state, user).map((r) => r.name),
    clientRoles: Object.fromEntries([...user.clientRoles].map(([c, names]) => [c, [...names].sort()])),
    groups: userGroups(state, user).map((g) => g.name),
    sessions: [...state.sessions.values()].filter((s) => s.userId === user.id).map((s) => s.id),
  };
  for (const key of ['email', 'firstName', 'lastName', 'password'] as const) {
    if (user[key] !== undefined) snap[key] = user[key];
  }
  return Object.freeze(snap);
}
