import { jsonObjectBody } from './admin-body.js';
import type { AdminCall, AdminRoute } from './admin-router.js';
import {
  asAttributes, asString, page, queryBool, sendAdminJson, sendCreated, sendErrorMessage, sendProseError,
} from './http-io.js';
import { addGroupRecord, addRealmRole, findGroupByName, listedUsers } from './realm-state.js';
import { groupRep, roleRep, userRep } from './representations.js';
import type { Group, Role, StoredUser } from './types.js';

/** Realm roles (`/roles…`) and top-level groups (`/groups…`). */

function byName<T extends { name: string }>(items: Iterable<T>): T[] {
  return [...items].sort((a, b) => a.name.localeCompare(b.name));
}

function nameMatches(name: string, search: string | null, exact = false): boolean {
  if (!search) return true;
  return exact ? name === search : name.toLowerCase().includes(search.toLowerCase());
}

function memberReps(call: AdminCall, users: StoredUser[]): Record<string, unknown>[] {
  const brief = queryBool(call.req.query, 'briefRepresentation') === true;
  return page(users, call.req.query).map((u) => userRep(u, { brief, access: 'none', manage: call.caller.manageUsers }));
}

function findRoles({ ctx, req, res }: AdminCall) {
  const brief = queryBool(req.query, 'briefRepresentation') !== false;
  const roles = byName(ctx.state.roles.values()).filter((r) => nameMatches(r.name, req.query.get('search')));
  sendAdminJson(res, page(roles, req.query).map((r) => roleRep(ctx.state, r, !brief)));
}

function loadRole(call: AdminCall): Role | undefined {
  const role = call.ctx.state.roles.get(call.params.name ?? '');
  if (!role) sendProseError(call.res, 404, 'Could not find role');
  return role;
}

function findRoleByName(call: AdminCall) {
  const role = loadRole(call);
  if (role) sendAdminJson(call.res, roleRep(call.ctx.state, role, true));
}

/** `POST /roles` → 201, `Location: …/roles/{name}` (the client returns `{roleName}`). */
function createRole({ ctx, req, res }: AdminCall) {
  const rep = jsonObjectBody(req, res);
  if (!rep) return;
  const name = asString(rep.name)?.trim();
  if (!name) return sendProseError(res, 400, 'role has no name');
  if (ctx.state.roles.has(name)) return sendErrorMessage(res, 409, `Role with name ${name} already exists`);
  const role = addRealmRole(ctx.state, name, asString(rep.description));
  role.attributes = asAttributes(rep.attributes) ?? {};
  sendCreated(res, `${ctx.url}/admin/realms/${ctx.state.name}/roles/${encodeURIComponent(name)}`);
}

/** Users with a DIRECT mapping of the role, like Keycloak's `RoleContainerResource#getUsersInRole`. */
function findUsersWithRole(call: AdminCall) {
  const role = loadRole(call);
  if (!role) return;
  const users = listedUsers(call.ctx.state).filter((u) => u.realmRoleIds.has(role.id));
  sendAdminJson(call.res, memberReps(call, users));
}

/** `q=key:value` over group attributes. */
function groupAttributesMatch(group: Group, q: string | null): boolean {
  const pairs = (q ?? '').split(' ').filter((p) => p.includes(':'));
  return pairs.every((p) => {
    const i = p.indexOf(':');
    return (group.attributes[p.slice(0, i)] ?? []).includes(p.slice(i + 1));
  });
}

function findGroups({ ctx, req, res, caller }: AdminCall) {
  const q = req.query;
  const brief = queryBool(q, 'briefRepresentation') !== false;
  const exact = queryBool(q, 'exact') === true;
  const groups = byName(ctx.state.groups.values())
    .filter((g) => nameMatches(g.name, q.get('search'), exact) && groupAttributesMatch(g, q.get('q')));
  sendAdminJson(res, page(groups, q).map((g) => groupRep(g, 'list', brief, caller.manageUsers)));
}

function loadGroup(call: AdminCall): Group | undefined {
  const group = call.ctx.state.groups.get(call.params.id ?? '');
  if (!group) sendProseError(call.res, 404, 'Could not find group by id');
  return group;
}

function findOneGroup(call: AdminCall) {
  const group = loadGroup(call);
  if (group) sendAdminJson(call.res, groupRep(group, 'full', false, call.caller.manageUsers));
}

/** `POST /groups/` → 201 + `Location: …/groups/{id}`. */
function createGroup({ ctx, req, res }: AdminCall) {
  const rep = jsonObjectBody(req, res);
  if (!rep) return;
  const name = asString(rep.name)?.trim();
  if (!name) return sendErrorMessage(res, 400, 'Group name is missing');
  if (findGroupByName(ctx.state, name)) return sendErrorMessage(res, 409, `Top level group named '${name}' already exists.`);
  const group = addGroupRecord(ctx.state, name, asAttributes(rep.attributes) ?? {});
  sendCreated(res, `${ctx.url}/admin/realms/${ctx.state.name}/groups/${group.id}`);
}

function listMembers(call: AdminCall) {
  const group = loadGroup(call);
  if (!group) return;
  const users = listedUsers(call.ctx.state).filter((u) => u.groupIds.has(group.id));
  sendAdminJson(call.res, memberReps(call, users));
}

export const ROLE_GROUP_ROUTES: AdminRoute[] = [
  { method: 'GET', path: 'roles', need: 'view-realm', handler: findRoles },
  { method: 'POST', path: 'roles', need: 'manage-realm', handler: createRole },
  { method: 'GET', path: 'roles/:name', need: 'view-realm', handler: findRoleByName },
  { method: 'GET', path: 'roles/:name/users', need: 'view-users', handler: findUsersWithRole },
  { method: 'GET', path: 'groups', need: 'query-groups', handler: findGroups },
  { method: 'POST', path: 'groups', need: 'manage-users', handler: createGroup },
  { method: 'GET', path: 'groups/:id', need: 'query-groups', handler: findOneGroup },
  { method: 'GET', path: 'groups/:id/members', need: 'view-users', handler: listMembers },
];
