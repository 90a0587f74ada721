import type { JWTPayload } from 'jose';
import { verifyRs256 } from './keys.js';
import { expectation, type OidcContext } from './token-issue.js';
import type { Session, StoredUser } from './types.js';

export type AccessCheck =
  | { ok: true; claims: JWTPayload; user: StoredUser; session?: Session }
  | { ok: false; reason: 'invalid' | 'session' };

/**
 * Bearer-token check shared by the admin API, userinfo and introspection: RS256 signature,
 * expiry, issuer, `typ`, not revoked; then, as Keycloak does, the user session named by
 * `sid` must still be active (logout kills the access token too) and the user enabled.
 * Lightweight tokens (no `sub`) resolve their user through the session.
 */
export async function checkAccessToken(ctx: OidcContext, token: string): Promise<AccessCheck> {
  const claims = await verifyRs256(ctx.keys, token, expectation(ctx));
  if (claims?.typ !== 'Bearer') return { ok: false, reason: 'invalid' };
  if (typeof claims.jti === 'string' && ctx.state.revokedJtis.has(claims.jti)) return { ok: false, reason: 'invalid' };
  let session: Session | undefined;
  if (typeof claims.sid === 'string') {
    session = ctx.state.sessions.get(claims.sid);
    if (!session) return { ok: false, reason: 'session' };
  }
  const userId = typeof claims.sub === 'string' ? claims.sub : session?.userId;
  const user = userId ? ctx.state.users.get(userId) : undefined;
  if (!user?.enabled) return { ok: false, reason: 'session' };
  return session ? { ok: true, claims, user, session } : { ok: true, claims, user };
}
