import { applyPassword, jsonObjectBody, loadUser, passwordFrom, unknownError } from './admin-body.js';
import type { AdminCall, AdminRoute } from './admin-router.js';
import {
  asAttributes, asBool, asString, page, queryBool, sendAdminJson, sendCreated, sendErrorMessage, sendJson,
  sendNoContent, sendProseError,
} from './http-io.js';
import {
  addStoredUser, deleteUser, endUserSessions, findGroupByName, findUserByEmail, findUserByUsername, type RealmState,
} from './realm-state.js';
import { userRep } from './representations.js';
import type { Group, StoredUser } from './types.js';
import { filterUsers } from './user-query.js';

/** `/admin/realms/{r}/users…`: find, count, create, findOne, update (merge), del, resetPassword, logout. */

function findUsers({ ctx, req, res, caller }: AdminCall) {
  const brief = queryBool(req.query, 'briefRepresentation') === true;
  const users = page(filterUsers(ctx.state, req.query), req.query);
  sendAdminJson(res, users.map((u) => userRep(u, { brief, access: 'list', manage: caller.manageUsers })));
}

/** `GET /users/count`: a bare JSON number. */
function countUsers({ ctx, req, res }: AdminCall) {
  sendAdminJson(res, filterUsers(ctx.state, req.query).length);
}

function findOneUser(call: AdminCall) {
  const user = loadUser(call);
  if (user) sendAdminJson(call.res, userRep(user, { brief: false, access: 'full', manage: call.caller.manageUsers }));
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

/** `groups` on create are paths (`/name`); an unknown one fails the whole create with a 500, as Keycloak does. */
function resolveGroupPaths(state: RealmState, paths: string[]): Group[] | undefined {
  const groups = paths.map((p) => (p.startsWith('/') ? findGroupByName(state, p.slice(1)) : undefined));
  return groups.every((g): g is Group => g !== undefined) ? groups : undefined;
}

function conflict(state: RealmState, username: string | undefined, email: string | undefined, self?: StoredUser): string | undefined {
  const byName = username ? findUserByUsername(state, username) : undefined;
  if (byName && byName !== self) return 'User exists with same username';
  const byEmail = email ? findUserByEmail(state, email) : undefined;
  if (byEmail && byEmail !== self) return 'User exists with same email';
  return undefined;
}

function firstPassword(credentials: unknown): ReturnType<typeof passwordFrom> {
  return Array.isArray(credentials) ? passwordFrom(credentials.find((c) => passwordFrom(c) !== undefined)) : undefined;
}

/**
 * `POST /users/` → `201` + `Location`. `enabled` defaults to false when omitted (UNVERIFIED for 26:
 * send it explicitly). `realmRoles` is ignored (read-only on create); `groups` and `credentials` apply.
 */
function createUser({ ctx, req, res }: AdminCall) {
  const rep = jsonObjectBody(req, res);
  if (!rep) return;
  const username = asString(rep.username)?.trim();
  if (!username) return sendErrorMessage(res, 400, 'User name is missing');
  const email = asString(rep.email) || undefined;
  const clash = conflict(ctx.state, username, email);
  if (clash) return sendErrorMessage(res, 409, clash);
  const groups = resolveGroupPaths(ctx.state, stringList(rep.groups) ?? []);
  const password = firstPassword(rep.credentials);
  if (!groups) return unknownError(res);
  // UNVERIFIED: Keycloak rolls the create back on a valueless password; the status is a guess.
  if (password === 'missing') return sendProseError(res, 400, 'No password provided');
  const user = addStoredUser(ctx.state, {
    username, email, enabled: asBool(rep.enabled) ?? false, emailVerified: asBool(rep.emailVerified),
    firstName: asString(rep.firstName), lastName: asString(rep.lastName), attributes: asAttributes(rep.attributes),
  });
  user.requiredActions = stringList(rep.requiredActions) ?? [];
  if (password) applyPassword(user, password);
  for (const g of groups) user.groupIds.add(g.id);
  sendCreated(res, `${ctx.url}/admin/realms/${ctx.state.name}/users/${user.id}`);
}

function setOptional(user: StoredUser, key: 'firstName' | 'lastName' | 'email', value: unknown) {
  if (typeof value !== 'string') return;
  if (value === '') delete user[key];
  else user[key] = key === 'email' ? value.toLowerCase() : value;
}

function mergeUser(user: StoredUser, rep: Record<string, unknown>) {
  for (const key of ['firstName', 'lastName', 'email'] as const) setOptional(user, key, rep[key]);
  const enabled = asBool(rep.enabled);
  if (enabled !== undefined) user.enabled = enabled;
  const verified = asBool(rep.emailVerified);
  if (verified !== undefined) user.emailVerified = verified;
  const attributes = asAttributes(rep.attributes);
  if (attributes) user.attributes = attributes;
  const actions = stringList(rep.requiredActions);
  if (actions) user.requiredActions = actions;
}

/**
 * `PUT /users/{id}`: merges, only the fields present change (a present `attributes` map replaces
 * the old one). Usernames are read-only (`editUsernameAllowed` is off by default).
 */
function updateUser(call: AdminCall) {
  const user = loadUser(call);
  const rep = user && jsonObjectBody(call.req, call.res);
  if (!user || !rep) return;
  const username = asString(rep.username);
  if (username !== undefined && username.toLowerCase() !== user.username) {
    return sendJson(call.res, 400, { field: 'username', errorMessage: 'error-user-attribute-read-only', params: ['username'] });
  }
  const clash = conflict(call.ctx.state, undefined, asString(rep.email) || undefined, user);
  if (clash) return sendErrorMessage(call.res, 409, clash);
  const password = firstPassword(rep.credentials);
  if (password === 'missing') return sendProseError(call.res, 400, 'No password provided');
  mergeUser(user, rep);
  if (password) applyPassword(user, password);
  sendNoContent(call.res);
}

/** `DELETE /users/{id}` (the admin client sends the body `{}`): 204, and the user's sessions end. */
function deleteUserRoute(call: AdminCall) {
  const user = loadUser(call);
  if (!user) return;
  deleteUser(call.ctx.state, user);
  sendNoContent(call.res, { 'Cache-Control': 'no-cache' });
}

/** `PUT /users/{id}/reset-password` with a `CredentialRepresentation`. */
function resetPassword(call: AdminCall) {
  const user = loadUser(call);
  const rep = user && jsonObjectBody(call.req, call.res);
  if (!user || !rep) return;
  const change = passwordFrom(rep);
  if (!change || change === 'missing') return sendProseError(call.res, 400, 'No password provided');
  applyPassword(user, change);
  sendNoContent(call.res);
}

/** `POST /users/{id}/logout`: ends every session of the user. */
function logoutUser(call: AdminCall) {
  const user = loadUser(call);
  if (!user) return;
  endUserSessions(call.ctx.state, user.id);
  sendNoContent(call.res);
}

export const USER_ROUTES: AdminRoute[] = [
  { method: 'GET', path: 'users', need: 'view-users', handler: findUsers },
  { method: 'POST', path: 'users', need: 'manage-users', handler: createUser },
  { method: 'GET', path: 'users/count', need: 'view-users', handler: countUsers },
  { method: 'GET', path: 'users/:id', need: 'view-users', handler: findOneUser },
  { method: 'PUT', path: 'users/:id', need: 'manage-users', handler: updateUser },
  { method: 'DELETE', path: 'users/:id', need: 'manage-users', handler: deleteUserRoute },
  { method: 'PUT', path: 'users/:id/reset-password', need: 'manage-users', handler: resetPassword },
  { method: 'POST', path: 'users/:id/logout', need: 'manage-users', handler: logoutUser },
];
