import { jsonBody, loadUser } from './admin-body.js';
import type { AdminCall, AdminRoute } from './admin-router.js';
import { isRecord, page, queryBool, sendAdminJson, sendNoContent, sendOAuthError, sendProseError } from './http-io.js';
import { directRealmRoles, effectiveRealmRoles, type RealmState, userGroups } from './realm-state.js';
import { clientRoleRep, groupRep, roleRep } from './representations.js';
import type { Group, Role, StoredUser } from './types.js';

/** A user's realm-role mappings and group memberships. */

function listRealmMappings(call: AdminCall) {
  const user = loadUser(call);
  if (user) sendAdminJson(call.res, directRealmRoles(call.ctx.state, user).map((r) => roleRep(call.ctx.state, r)));
}

/** Effective realm roles, composites (`default-roles-<realm>`) expanded. */
function listCompositeRealmMappings(call: AdminCall) {
  const user = loadUser(call);
  if (user) sendAdminJson(call.res, effectiveRealmRoles(call.ctx.state, user).map((r) => roleRep(call.ctx.state, r)));
}

function clientMappings(state: RealmState, user: StoredUser): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [clientId, names] of user.clientRoles) {
    const client = state.roleClients.get(clientId);
    if (!client || names.size === 0) continue;
    const mappings = [...names].sort().map((n) => clientRoleRep(client.uuid, n, client.roleIds.get(n) ?? ''));
    out[clientId] = { id: client.uuid, client: clientId, mappings };
  }
  return out;
}

/** `GET /users/{id}/role-mappings`: `{realmMappings, clientMappings}`, each omitted when empty. */
function listAllMappings(call: AdminCall) {
  const user = loadUser(call);
  if (!user) return;
  const rep: Record<string, unknown> = {};
  const realm = directRealmRoles(call.ctx.state, user).map((r) => roleRep(call.ctx.state, r));
  if (realm.length > 0) rep.realmMappings = realm;
  const clients = clientMappings(call.ctx.state, user);
  if (Object.keys(clients).length > 0) rep.clientMappings = clients;
  sendAdminJson(call.res, rep);
}

/** Each `{id, name}` is looked up by name and its id must agree; else undefined (→ 404 `Role not found`). */
function resolveRoleRefs(state: RealmState, refs: unknown[]): Role[] | undefined {
  const roles = refs.map((ref) => {
    const role = isRecord(ref) && typeof ref.name === 'string' ? state.roles.get(ref.name) : undefined;
    return role && isRecord(ref) && ref.id === role.id ? role : undefined;
  });
  return roles.every((r): r is Role => r !== undefined) ? roles : undefined;
}

/** The role array body; `null` (no body) is allowed only where `allowNull`. */
function roleRefsBody(call: AdminCall, allowNull: boolean): { refs: unknown[] | null } | undefined {
  const body = jsonBody(call.req, call.res);
  if (!body) return undefined;
  if (Array.isArray(body.value) || (allowNull && body.value === null)) return { refs: body.value };
  sendOAuthError(call.res, 400, 'invalid_request', 'Cannot parse the JSON');
  return undefined;
}

function changeRealmMappings(call: AdminCall, add: boolean) {
  const user = loadUser(call);
  const body = user && roleRefsBody(call, !add);
  if (!user || !body) return;
  if (body.refs === null) {
    user.realmRoleIds.clear(); // DELETE without a body removes every realm mapping, as Keycloak does.
    return sendNoContent(call.res);
  }
  const roles = resolveRoleRefs(call.ctx.state, body.refs);
  if (!roles) return sendProseError(call.res, 404, 'Role not found');
  for (const r of roles) {
    if (add) user.realmRoleIds.add(r.id);
    else user.realmRoleIds.delete(r.id);
  }
  sendNoContent(call.res);
}

function searchGroups(groups: Group[], search: string | null): Group[] {
  if (!search) return groups;
  return groups.filter((g) => g.name.toLowerCase().includes(search.toLowerCase()));
}

/** `GET /users/{id}/groups`: brief `{id, name, path, subGroups}` by default. */
function listUserGroups(call: AdminCall) {
  const user = loadUser(call);
  if (!user) return;
  const q = call.req.query;
  const brief = queryBool(q, 'briefRepresentation') !== false;
  const groups = page(searchGroups(userGroups(call.ctx.state, user), q.get('search')), q);
  sendAdminJson(call.res, groups.map((g) => groupRep(g, 'member', brief, call.caller.manageUsers)));
}

/** `GET /users/{id}/groups/count`: `{"count":n}`, an object (unlike `/users/count`). */
function countUserGroups(call: AdminCall) {
  const user = loadUser(call);
  if (!user) return;
  const groups = searchGroups(userGroups(call.ctx.state, user), call.req.query.get('search'));
  sendAdminJson(call.res, { count: groups.length });
}

function changeMembership(call: AdminCall, join: boolean) {
  const user = loadUser(call);
  if (!user) return;
  const group = call.ctx.state.groups.get(call.params.groupId ?? '');
  if (!group) return sendProseError(call.res, 404, 'Group not found');
  if (join) user.groupIds.add(group.id);
  else user.groupIds.delete(group.id);
  sendNoContent(call.res, { 'Cache-Control': 'no-cache' });
}

export const USER_LINK_ROUTES: AdminRoute[] = [
  { method: 'GET', path: 'users/:id/role-mappings', need: 'view-users', handler: listAllMappings },
  { method: 'GET', path: 'users/:id/role-mappings/realm', need: 'view-users', handler: listRealmMappings },
  { method: 'POST', path: 'users/:id/role-mappings/realm', need: 'manage-users', handler: (c) => changeRealmMappings(c, true) },
  { method: 'DELETE', path: 'users/:id/role-mappings/realm', need: 'manage-users', handler: (c) => changeRealmMappings(c, false) },
  { method: 'GET', path: 'users/:id/role-mappings/realm/composite', need: 'view-users', handler: listCompositeRealmMappings },
  { method: 'GET', path: 'users/:id/groups', need: 'view-users', handler: listUserGroups },
  { method: 'GET', path: 'users/:id/groups/count', need: 'view-users', handler: countUserGroups },
  { method: 'PUT', path: 'users/:id/groups/:groupId', need: 'manage-users', handler: (c) => changeMembership(c, true) },
  { method: 'DELETE', path: 'users/:id/groups/:groupId', need: 'manage-users', handler: (c) => changeMembership(c, false) },
];
