import { checkAccessToken } from './access-token.js';
import { userinfoClaims } from './claims.js';
import { authenticateClient } from './client-auth.js';
import {
  bearerToken, type Form, formParam, parseForm, type Req, type Res, send, sendJson, sendNoContent,
  sendOAuthError, TOKEN_HEADERS,
} from './http-io.js';
import { verifyHs512, verifyRs256 } from './keys.js';
import { expectation, type OidcContext } from './token-issue.js';
import type { ClientDef } from './types.js';

/** Logout, revocation, userinfo and introspection endpoints. */

function authenticated(ctx: OidcContext, req: Req, res: Res): { client: ClientDef; form: Form } | undefined {
  const form = parseForm(req);
  const auth = authenticateClient(ctx.state, req, form);
  if (auth.ok) return { client: auth.client, form };
  sendOAuthError(res, auth.status, auth.error, auth.description);
  return undefined;
}

/** `POST …/logout` with a refresh token: 204, and the session is gone. */
export async function logout(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const auth = authenticated(ctx, req, res);
  if (!auth) return;
  const token = formParam(auth.form, 'refresh_token');
  // UNVERIFIED: wording of the missing-token error.
  if (!token) return sendOAuthError(res, 400, 'invalid_request', 'No refresh token');
  const checked = await verifyHs512(ctx.keys, token, expectation(ctx));
  if (!checked.ok) return sendOAuthError(res, 400, 'invalid_grant', 'Invalid refresh token');
  if (checked.payload.azp !== auth.client.clientId) {
    return sendOAuthError(res, 400, 'invalid_grant', "Invalid refresh token. Token client and authorized client don't match");
  }
  if (typeof checked.payload.sid === 'string') ctx.state.sessions.delete(checked.payload.sid);
  sendNoContent(res, { 'Cache-Control': 'no-cache' });
}

async function revokeRefresh(ctx: OidcContext, token: string): Promise<{ azp: unknown; apply: () => void } | undefined> {
  const checked = await verifyHs512(ctx.keys, token, expectation(ctx));
  if (!checked.ok) return undefined;
  const sid = checked.payload.sid;
  return { azp: checked.payload.azp, apply: () => typeof sid === 'string' && ctx.state.sessions.delete(sid) };
}

async function revokeAccess(ctx: OidcContext, token: string): Promise<{ azp: unknown; apply: () => void } | undefined> {
  const claims = await verifyRs256(ctx.keys, token, expectation(ctx));
  if (!claims) return undefined;
  return { azp: claims.azp, apply: () => typeof claims.jti === 'string' && ctx.state.revokedJtis.add(claims.jti) };
}

/**
 * `POST …/revoke` (RFC 7009): 200 with an empty body. A refresh token ends its session, an
 * access token is blacklisted. An unknown token still gets 200, with Keycloak's odd body
 * `{"error":"invalid_token","error_description":"Invalid token"}`.
 */
export async function revoke(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const auth = authenticated(ctx, req, res);
  if (!auth) return;
  const token = formParam(auth.form, 'token');
  // UNVERIFIED: wording of the missing-token and wrong-client errors.
  if (!token) return sendOAuthError(res, 400, 'invalid_request', 'Token not provided');
  const target = (await revokeRefresh(ctx, token)) ?? (await revokeAccess(ctx, token));
  if (!target) return sendOAuthError(res, 200, 'invalid_token', 'Invalid token');
  if (target.azp !== auth.client.clientId) return sendOAuthError(res, 400, 'invalid_request', 'Unmatching client');
  target.apply();
  send(res, 200, '');
}

function challenge(ctx: OidcContext, res: Res, status: number, error?: string, description?: string): void {
  const extra = error ? `, error="${error}", error_description="${description ?? ''}"` : '';
  send(res, status, '', {
    ...TOKEN_HEADERS, 'Content-Type': 'text/plain;charset=utf-8', 'WWW-Authenticate': `Bearer realm="${ctx.state.name}"${extra}`,
  });
}

/** `GET|POST …/userinfo`: errors are an empty text/plain body plus a `WWW-Authenticate` challenge. */
export async function userinfo(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const token = bearerToken(req) ?? formParam(parseForm(req), 'access_token');
  if (!token) return challenge(ctx, res, 401);
  const checked = await checkAccessToken(ctx, token);
  if (!checked.ok && checked.reason === 'invalid') return challenge(ctx, res, 401, 'invalid_token', 'Token verification failed');
  // UNVERIFIED: the description Keycloak gives for a token whose session has ended.
  const sessionGone = "User session not found or doesn't have client attached on it";
  if (!checked.ok) return challenge(ctx, res, 401, 'invalid_token', sessionGone);
  const scope = typeof checked.claims.scope === 'string' ? checked.claims.scope.split(' ') : [];
  if (!scope.includes('openid')) return challenge(ctx, res, 403, 'insufficient_scope', 'Missing openid scope');
  const client = ctx.state.clients.get(String(checked.claims.azp));
  if (!client) return challenge(ctx, res, 401, 'invalid_token', 'Token verification failed');
  const claimCtx = { state: ctx.state, issuer: ctx.issuer, client, user: checked.user, scope: scope.join(' ') };
  sendJson(res, 200, userinfoClaims(claimCtx), TOKEN_HEADERS);
}

/** `POST …/token/introspect`: the claim set plus `client_id, username, token_type, active`. */
export async function introspect(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const auth = authenticated(ctx, req, res);
  if (!auth) return;
  // UNVERIFIED: Keycloak's exact answer to a public client here.
  if (auth.client.publicClient) {
    return sendOAuthError(res, 401, 'unauthorized_client', 'Public client is not permitted to invoke token introspection endpoint.');
  }
  const token = formParam(auth.form, 'token');
  if (!token) return sendOAuthError(res, 400, 'invalid_request', 'Token not provided.');
  const checked = await checkAccessToken(ctx, token);
  const body = checked.ok
    ? { ...checked.claims, client_id: checked.claims.azp, username: checked.user.username, token_type: 'Bearer', active: true }
    : { active: false };
  sendJson(res, 200, body, { 'Cache-Control': 'no-cache' });
}
