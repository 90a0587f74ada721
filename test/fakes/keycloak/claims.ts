import { createHash, randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { effectiveClientRoles, effectiveRealmRoles, type RealmState, userGroups } from './realm-state.js';
import type { ClientDef, Session, StoredUser } from './types.js';

/**
 * Claim sets per protocols.md B.4, recomputed from the CURRENT role and group state
 * every time a token is issued (so a role granted via the admin API shows up on refresh).
 */
export interface ClaimContext {
  state: RealmState;
  issuer: string;
  client: ClientDef;
  user: StoredUser;
  session?: Session;
  scope: string;
}

export interface Times {
  iat: number;
  exp: number;
}

/** Absent with no audience, a string with one, an array with several. */
function audienceClaim(audiences: string[]): string | string[] | undefined {
  if (audiences.length === 0) return undefined;
  return audiences.length === 1 ? audiences[0] : audiences;
}

function accessAudience(ctx: ClaimContext): string | string[] | undefined {
  const clients = [...effectiveClientRoles(ctx.state, ctx.user).keys()];
  return audienceClaim(clients.filter((c) => c !== ctx.client.clientId).sort().reverse());
}

function groupsClaim(ctx: ClaimContext): string[] | undefined {
  const names = userGroups(ctx.state, ctx.user).map((g) => (ctx.state.config.groupsFullPath ? `/${g.name}` : g.name));
  return names.length > 0 ? names : undefined;
}

/** `email_verified`, `name`, `groups`, `preferred_username`, `given_name`, `family_name`, `email`: only set values. */
export function profileClaims(ctx: ClaimContext): JWTPayload {
  const u = ctx.user;
  const out: JWTPayload = { email_verified: u.emailVerified };
  const name = [u.firstName, u.lastName].filter(Boolean).join(' ');
  if (name) out.name = name;
  const groups = groupsClaim(ctx);
  if (groups) out.groups = groups;
  out.preferred_username = u.username;
  if (u.firstName) out.given_name = u.firstName;
  if (u.lastName) out.family_name = u.lastName;
  if (u.email) out.email = u.email;
  return out;
}

function roleClaims(ctx: ClaimContext): JWTPayload {
  const out: JWTPayload = {};
  const realmRoles = effectiveRealmRoles(ctx.state, ctx.user).map((r) => r.name);
  if (realmRoles.length > 0) out.realm_access = { roles: realmRoles };
  const clientRoles = effectiveClientRoles(ctx.state, ctx.user);
  if (clientRoles.size > 0) {
    const entries = [...clientRoles.entries()].sort(([a], [b]) => b.localeCompare(a));
    out.resource_access = Object.fromEntries(entries.map(([c, roles]) => [c, { roles }]));
  }
  return out;
}

function lightweightClaims(ctx: ClaimContext, t: Times): JWTPayload {
  return {
    exp: t.exp, iat: t.iat, jti: `onrtro:${randomUUID()}`, iss: ctx.issuer, typ: 'Bearer',
    azp: ctx.client.clientId, sid: ctx.session?.id, scope: ctx.scope,
  };
}

export function accessTokenClaims(ctx: ClaimContext, t: Times): JWTPayload {
  if (ctx.client.lightweight) return lightweightClaims(ctx, t);
  const claims: JWTPayload = { exp: t.exp, iat: t.iat, jti: `onrtro:${randomUUID()}`, iss: ctx.issuer };
  const aud = accessAudience(ctx);
  if (aud !== undefined) claims.aud = aud;
  Object.assign(claims, { sub: ctx.user.id, typ: 'Bearer', azp: ctx.client.clientId });
  if (ctx.session) claims.sid = ctx.session.id;
  claims.acr = '1';
  Object.assign(claims, roleClaims(ctx), { scope: ctx.scope });
  const serviceAccount = ctx.user.serviceAccountClientId !== undefined;
  if (serviceAccount) claims.clientHost = '127.0.0.1';
  Object.assign(claims, profileClaims(ctx));
  if (serviceAccount) Object.assign(claims, { clientAddress: '127.0.0.1', client_id: ctx.client.clientId });
  return claims;
}

function atHash(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');
}

export function idTokenClaims(ctx: ClaimContext, t: Times, accessToken: string): JWTPayload {
  const claims: JWTPayload = {
    exp: t.exp, iat: t.iat, jti: randomUUID(), iss: ctx.issuer, aud: ctx.client.clientId,
    sub: ctx.user.id, typ: 'ID', azp: ctx.client.clientId,
  };
  if (ctx.session) claims.sid = ctx.session.id;
  Object.assign(claims, { at_hash: atHash(accessToken), acr: '1' }, profileClaims(ctx));
  return claims;
}

/** HS512 refresh token: `aud` is the issuer, `aud_x` the access token's audience. Offline tokens carry no `exp`. */
export function refreshTokenClaims(ctx: ClaimContext, t: Times): JWTPayload {
  const offline = ctx.session?.offline === true;
  const claims: JWTPayload = offline ? {} : { exp: t.exp };
  Object.assign(claims, {
    iat: t.iat, jti: randomUUID(), iss: ctx.issuer, aud: ctx.issuer, sub: ctx.user.id,
    typ: offline ? 'Offline' : 'Refresh', azp: ctx.client.clientId, sid: ctx.session?.id, scope: ctx.scope,
  });
  const audX = accessAudience(ctx);
  if (audX !== undefined) claims.aud_x = audX;
  claims.prov = 'default';
  return claims;
}

/** `GET|POST …/userinfo` body. */
export function userinfoClaims(ctx: ClaimContext): JWTPayload {
  return { sub: ctx.user.id, ...profileClaims(ctx) };
}
