import type { RealmState } from './realm-state.js';
import type { Group, Role, StoredUser } from './types.js';

/** Admin REST representations, field order and omissions as recorded from Keycloak 26.7.1. */

export type UserAccess = 'full' | 'list' | 'none';

export interface UserRepOptions {
  brief: boolean;
  access: UserAccess;
  /** Whether the caller may manage users (drives the `access` flags). */
  manage: boolean;
}

function accessBlock(access: UserAccess, manage: boolean): Record<string, boolean> | undefined {
  if (access === 'none') return undefined;
  if (access === 'list') return { manage };
  return { manageGroupMembership: manage, resetPassword: manage, view: true, mapRoles: manage, impersonate: manage, manage };
}

/** `UserRepresentation`: absent email/firstName/lastName are omitted, not null; `briefRepresentation` drops four fields. */
export function userRep(user: StoredUser, o: UserRepOptions): Record<string, unknown> {
  const rep: Record<string, unknown> = { id: user.id, username: user.username };
  if (user.firstName !== undefined) rep.firstName = user.firstName;
  if (user.lastName !== undefined) rep.lastName = user.lastName;
  if (user.email !== undefined) rep.email = user.email;
  rep.emailVerified = user.emailVerified;
  if (Object.keys(user.attributes).length > 0) rep.attributes = structuredClone(user.attributes);
  rep.enabled = user.enabled;
  rep.createdTimestamp = user.createdTimestamp;
  if (!o.brief) {
    Object.assign(rep, {
      totp: false, disableableCredentialTypes: [], requiredActions: [...user.requiredActions], notBefore: 0,
    });
  }
  const access = accessBlock(o.access, o.manage);
  if (access) rep.access = access;
  return rep;
}

/** `RoleRepresentation`; `attributes` only on single reads and non-brief lists. */
export function roleRep(state: RealmState, role: Role, withAttributes = false): Record<string, unknown> {
  const rep: Record<string, unknown> = { id: role.id, name: role.name };
  if (role.description !== undefined) rep.description = role.description;
  Object.assign(rep, { composite: role.composite, clientRole: false, containerId: state.id });
  if (withAttributes) rep.attributes = structuredClone(role.attributes);
  return rep;
}

export function clientRoleRep(clientUuid: string, name: string, roleId: string): Record<string, unknown> {
  return { id: roleId, name, composite: false, clientRole: true, containerId: clientUuid };
}

function groupAccess(manage: boolean): Record<string, boolean> {
  return { view: true, viewMembers: true, manageMembers: manage, manage, manageMembership: manage };
}

function groupDetail(group: Group): Record<string, unknown> {
  return { attributes: structuredClone(group.attributes), realmRoles: [], clientRoles: {} };
}

/**
 * `GroupRepresentation` in its three recorded forms: `list` (`GET /groups`), `full`
 * (`GET /groups/{id}`) and `member` (`GET /users/{id}/groups`, no counts, no access).
 */
export function groupRep(group: Group, form: 'list' | 'full' | 'member', brief: boolean, manage: boolean): Record<string, unknown> {
  const rep: Record<string, unknown> = { id: group.id, name: group.name, path: `/${group.name}` };
  if (form !== 'member') rep.subGroupCount = 0;
  rep.subGroups = [];
  if (form === 'full' || !brief) Object.assign(rep, groupDetail(group));
  if (form !== 'member') rep.access = groupAccess(manage);
  return rep;
}
