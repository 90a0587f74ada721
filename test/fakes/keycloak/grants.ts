import { type Form, formParam } from './http-io.js';
import { verifyHs512 } from './keys.js';
import { findUserByLogin } from './realm-state.js';
import { createSession, expectation, type OidcContext, resolveScope, tokenResponse } from './token-issue.js';
import type { ClientDef, StoredUser } from './types.js';

export type GrantOutcome =
  | { ok: true; body: Record<string, unknown> }
  | { ok: false; status: number; error: string; description: string };

export type GrantHandler = (ctx: OidcContext, client: ClientDef, form: Form) => Promise<GrantOutcome>;

export function fail(status: number, error: string, description: string): GrantOutcome {
  return { ok: false, status, error, description };
}

export function invalidScope(form: Form): GrantOutcome {
  return fail(400, 'invalid_scope', `Invalid scopes: ${formParam(form, 'scope') ?? ''}`);
}

/** Password-grant user checks, in order: credentials, enabled, required actions. */
function checkPasswordUser(ctx: OidcContext, form: Form): { user: StoredUser } | GrantOutcome {
  const username = formParam(form, 'username');
  // UNVERIFIED: status/shape of a missing username (direct-grant ValidateUsername challenge).
  if (!username) return fail(401, 'invalid_request', 'Missing parameter: username');
  const user = findUserByLogin(ctx.state, username);
  const password = formParam(form, 'password');
  if (!user || user.password === undefined || password !== user.password) {
    return fail(ctx.state.config.invalidGrantStatus, 'invalid_grant', 'Invalid user credentials');
  }
  if (!user.enabled) return fail(400, 'invalid_grant', 'Account disabled');
  if (user.requiredActions.length > 0) return fail(400, 'invalid_grant', 'Account is not fully set up');
  return { user };
}

export const passwordGrant: GrantHandler = async (ctx, client, form) => {
  if (!client.directAccessGrants) return fail(400, 'unauthorized_client', 'Client not allowed for direct access grants');
  const scope = resolveScope(formParam(form, 'scope'));
  if (!scope.ok) return invalidScope(form);
  const checked = checkPasswordUser(ctx, form);
  if ('ok' in checked) return checked;
  const session = createSession(ctx.state, checked.user, client, scope.scope);
  return { ok: true, body: await tokenResponse(ctx, client, checked.user, session, scope.scope) };
};

export const clientCredentialsGrant: GrantHandler = async (ctx, client, form) => {
  if (client.publicClient) return fail(401, 'unauthorized_client', 'Public client not allowed to retrieve service account');
  const account = [...ctx.state.users.values()].find((u) => u.serviceAccountClientId === client.clientId);
  if (!client.serviceAccount || !account) {
    return fail(401, 'unauthorized_client', 'Client not enabled to retrieve service account');
  }
  const scope = resolveScope(formParam(form, 'scope'));
  if (!scope.ok) return invalidScope(form);
  const granted = scope.scope.filter((s) => s !== 'offline_access');
  return { ok: true, body: await tokenResponse(ctx, client, account, undefined, granted) };
};

const REFRESH_TYPES = new Set(['Refresh', 'Offline']);

export const refreshTokenGrant: GrantHandler = async (ctx, client, form) => {
  const token = formParam(form, 'refresh_token');
  if (!token) return fail(400, 'invalid_request', 'Missing parameter: refresh_token');
  const checked = await verifyHs512(ctx.keys, token, expectation(ctx));
  if (!checked.ok) return fail(400, 'invalid_grant', checked.reason === 'expired' ? 'Token is not active' : 'Invalid refresh token');
  const claims = checked.payload;
  if (typeof claims.typ !== 'string' || !REFRESH_TYPES.has(claims.typ)) {
    return fail(400, 'invalid_grant', 'Invalid refresh token');
  }
  if (claims.azp !== client.clientId) return fail(400, 'invalid_grant', 'Unmatching clients');
  const session = typeof claims.sid === 'string' ? ctx.state.sessions.get(claims.sid) : undefined;
  const user = session ? ctx.state.users.get(session.userId) : undefined;
  if (!session || !user) return fail(400, 'invalid_grant', 'Session not active');
  if (!user.enabled) return fail(400, 'invalid_grant', 'User disabled');
  return { ok: true, body: await tokenResponse(ctx, client, user, session, session.scope) };
};
