import { randomUUID } from 'node:crypto';
import { accessTokenClaims, type ClaimContext, idTokenClaims, refreshTokenClaims } from './claims.js';
import { type RealmKeys, signHs512, signRs256 } from './keys.js';
import type { RealmState } from './realm-state.js';
import type { ClientDef, Session, StoredUser } from './types.js';

export interface OidcContext {
  state: RealmState;
  keys: RealmKeys;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `${url}/realms/${realm}`. */
  issuer: string;
}

/** Scopes a client may request: the realm's default and optional client scopes. */
const KNOWN_SCOPES = new Set([
  'openid', 'acr', 'address', 'basic', 'email', 'microprofile-jwt', 'offline_access', 'organization',
  'phone', 'profile', 'roles', 'web-origins',
]);
/** Default scopes whose names Keycloak leaves out of the `scope` string. */
const SILENT_SCOPES = new Set(['acr', 'basic', 'roles', 'web-origins', 'email', 'profile']);

export type ScopeResult = { ok: true; scope: string[] } | { ok: false };

/** `scope` request parameter → granted scope list (`openid` first, then optionals, then `email profile`). */
export function resolveScope(param: string | undefined): ScopeResult {
  const requested = (param ?? '').split(' ').filter((s) => s.length > 0);
  if (requested.some((s) => !KNOWN_SCOPES.has(s))) return { ok: false };
  const openid = requested.includes('openid') ? ['openid'] : [];
  const optional = [...new Set(requested.filter((s) => s !== 'openid' && !SILENT_SCOPES.has(s)))];
  return { ok: true, scope: [...openid, ...optional, 'email', 'profile'] };
}

export function createSession(state: RealmState, user: StoredUser, client: ClientDef, scope: string[]): Session {
  const session: Session = {
    id: randomUUID(), userId: user.id, clientId: client.clientId, scope, offline: scope.includes('offline_access'),
  };
  state.sessions.set(session.id, session);
  return session;
}

/** The realm's issuer and current time, for token checks. */
export function expectation(ctx: OidcContext): { issuer: string; nowMs: number } {
  return { issuer: ctx.issuer, nowMs: ctx.state.config.now() };
}

function nowSec(ctx: OidcContext): number {
  return Math.floor(ctx.state.config.now() / 1000);
}

async function refreshPart(ctx: OidcContext, claims: ClaimContext, iat: number): Promise<Record<string, unknown>> {
  const lifespan = ctx.state.config.refreshTokenLifespanSec;
  const token = await signHs512(ctx.keys, refreshTokenClaims(claims, { iat, exp: iat + lifespan }));
  const offline = claims.session?.offline === true;
  return { refresh_expires_in: offline ? 0 : lifespan, refresh_token: token };
}

/**
 * The token-endpoint success body, keys in Keycloak's order. With a session the response
 * carries a refresh token and `session_state`; without one (client_credentials) neither.
 */
export async function tokenResponse(
  ctx: OidcContext, client: ClientDef, user: StoredUser, session: Session | undefined, scope: string[],
): Promise<Record<string, unknown>> {
  const iat = nowSec(ctx);
  const lifespan = ctx.state.config.accessTokenLifespanSec;
  const claims: ClaimContext = { state: ctx.state, issuer: ctx.issuer, client, user, session, scope: scope.join(' ') };
  const times = { iat, exp: iat + lifespan };
  const accessToken = await signRs256(ctx.keys, accessTokenClaims(claims, times));
  const body: Record<string, unknown> = { access_token: accessToken, expires_in: lifespan };
  Object.assign(body, session ? await refreshPart(ctx, claims, iat) : { refresh_expires_in: 0 });
  body.token_type = 'Bearer';
  if (session && scope.includes('openid')) body.id_token = await signRs256(ctx.keys, idTokenClaims(claims, times, accessToken));
  body['not-before-policy'] = 0;
  if (session) body.session_state = session.id;
  body.scope = claims.scope;
  return body;
}
