import { randomBytes, randomInt } from 'node:crypto';
import { authenticateClient } from './client-auth.js';
import { fail, type GrantHandler, invalidScope } from './grants.js';
import { formParam, parseForm, type Req, type Res, sendJson, sendOAuthError } from './http-io.js';
import { findUserByLogin, type RealmState } from './realm-state.js';
import { createSession, type OidcContext, resolveScope, tokenResponse } from './token-issue.js';
import type { DeviceGrant } from './types.js';

/** OAuth 2.0 Device Authorization Grant (RFC 8628) as Keycloak 26 answers it. */

const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

function newUserCode(): string {
  const letters = Array.from({ length: 8 }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]);
  return `${letters.slice(0, 4).join('')}-${letters.slice(4).join('')}`;
}

function normalizeUserCode(code: string): string {
  return code.replaceAll('-', '').toUpperCase();
}

/** `POST /realms/{r}/protocol/openid-connect/auth/device`. */
export function deviceAuthorization(ctx: OidcContext, req: Req, res: Res) {
  const form = parseForm(req);
  const auth = authenticateClient(ctx.state, req, form);
  if (!auth.ok) return sendOAuthError(res, auth.status, auth.error, auth.description);
  if (!auth.client.deviceGrant) {
    const text = 'Client is not allowed to initiate OAuth 2.0 Device Authorization Grant. The flow is disabled for the client.';
    return sendOAuthError(res, 400, 'unauthorized_client', text);
  }
  const scope = resolveScope(formParam(form, 'scope'));
  if (!scope.ok) {
    const outcome = invalidScope(form);
    if (!outcome.ok) sendOAuthError(res, outcome.status, outcome.error, outcome.description);
    return;
  }
  const cfg = ctx.state.config;
  const grant: DeviceGrant = {
    deviceCode: randomBytes(32).toString('base64url'), userCode: newUserCode(), clientId: auth.client.clientId,
    scope: scope.scope, expiresAt: cfg.now() + cfg.deviceLifespanSec * 1000, status: 'pending',
  };
  ctx.state.devices.set(grant.deviceCode, grant);
  const verificationUri = `${ctx.issuer}/device`;
  sendJson(res, 200, {
    device_code: grant.deviceCode, user_code: grant.userCode, verification_uri: verificationUri,
    verification_uri_complete: `${verificationUri}?user_code=${grant.userCode}`,
    expires_in: cfg.deviceLifespanSec, interval: cfg.deviceIntervalSec,
  }, { 'Cache-Control': 'no-store, must-revalidate, max-age=0' });
}

function isTooFast(state: RealmState, grant: DeviceGrant): boolean {
  const now = state.config.now();
  const tooFast = grant.lastPollAt !== undefined && now - grant.lastPollAt < state.config.deviceIntervalSec * 1000;
  grant.lastPollAt = now;
  return tooFast;
}

/** `grant_type=urn:ietf:params:oauth:grant-type:device_code` polling. */
export const deviceCodeGrant: GrantHandler = async (ctx, client, form) => {
  const code = formParam(form, 'device_code');
  if (!code) return fail(400, 'invalid_request', 'Missing parameter: device_code');
  const grant = ctx.state.devices.get(code);
  if (!grant || grant.clientId !== client.clientId) return fail(400, 'invalid_grant', 'Device code not valid');
  if (ctx.state.config.now() > grant.expiresAt) return fail(400, 'expired_token', 'Device code is expired');
  if (isTooFast(ctx.state, grant)) return fail(400, 'slow_down', 'Slow down');
  if (grant.status === 'pending') return fail(400, 'authorization_pending', 'The authorization request is still pending');
  ctx.state.devices.delete(code);
  if (grant.status === 'denied') return fail(400, 'access_denied', 'The end user denied the authorization request');
  const user = grant.userId ? ctx.state.users.get(grant.userId) : undefined;
  if (!user?.enabled) return fail(400, 'invalid_grant', 'Account disabled');
  const session = createSession(ctx.state, user, client, grant.scope);
  return { ok: true, body: await tokenResponse(ctx, client, user, session, grant.scope) };
};

function findByUserCode(state: RealmState, userCode: string): DeviceGrant {
  const wanted = normalizeUserCode(userCode);
  const grant = [...state.devices.values()].find((g) => normalizeUserCode(g.userCode) === wanted);
  if (!grant || state.config.now() > grant.expiresAt) throw new Error(`fake keycloak: no pending device code ${userCode}`);
  return grant;
}

/** Test helper: the user logs in on the verification page and consents. */
export function approveDevice(state: RealmState, userCode: string, username: string) {
  const grant = findByUserCode(state, userCode);
  const user = findUserByLogin(state, username);
  if (!user) throw new Error(`fake keycloak: no user ${username}`);
  grant.status = 'approved';
  grant.userId = user.id;
}

export function denyDevice(state: RealmState, userCode: string) {
  findByUserCode(state, userCode).status = 'denied';
}
