import type { AdminCall } from './admin-router.js';
import { isRecord, parseJson, type Req, type Res, sendOAuthError, sendProseError } from './http-io.js';
import type { StoredUser } from './types.js';

/** Request-body and lookup helpers shared by the admin handlers. */

export function unknownError(res: Res): void {
  sendOAuthError(res, 500, 'unknown_error', 'For more on this error consult the server log.');
}

/** A JSON body Keycloak will bind; `400 Cannot parse the JSON` or, for `null`, a 500 (both recorded). */
export function jsonBody(req: Req, res: Res): { value: unknown } | undefined {
  const parsed = parseJson(req.body);
  if (!parsed.ok) {
    sendOAuthError(res, 400, 'invalid_request', 'Cannot parse the JSON');
    return undefined;
  }
  return { value: parsed.value };
}

export function jsonObjectBody(req: Req, res: Res): Record<string, unknown> | undefined {
  const body = jsonBody(req, res);
  if (!body) return undefined;
  if (isRecord(body.value)) return body.value;
  unknownError(res);
  return undefined;
}

/** The `{id}` user, or `404 {"error":"User not found"}`. */
export function loadUser(call: AdminCall): StoredUser | undefined {
  const user = call.ctx.state.users.get(call.params.id ?? '');
  if (!user) sendProseError(call.res, 404, 'User not found');
  return user;
}

export type PasswordChange = { value: string; temporary: boolean };

/** A `CredentialRepresentation` of type password: its value, or `missing` when it has none. */
export function passwordFrom(credential: unknown): PasswordChange | 'missing' | undefined {
  if (!isRecord(credential)) return undefined;
  if (credential.type !== undefined && credential.type !== 'password') return undefined;
  const value = credential.value;
  if (typeof value !== 'string' || value === '') return 'missing';
  return { value, temporary: credential.temporary === true };
}

/** Sets the password; a temporary one adds the `UPDATE_PASSWORD` required action (the password grant then refuses). */
export function applyPassword(user: StoredUser, change: PasswordChange): void {
  user.password = change.value;
  const rest = user.requiredActions.filter((a) => a !== 'UPDATE_PASSWORD');
  user.requiredActions = change.temporary ? [...rest, 'UPDATE_PASSWORD'] : rest;
}
