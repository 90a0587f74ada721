// Checking an access token the way a resource server would: RS256 signature against the
// realm's JWKS, issuer, expiry, and that it was issued to the client we signed in through.
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';
import { signInAgain } from './failures.js';

export type Verified = { ok: true; claims: JWTPayload } | { ok: false; reason: 'expired' | 'unknown-key' };

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256'];

/** Expired and unknown-key are answers (refresh, refetch keys); anything else means sign in again. */
export async function verifyAccessToken(token: string, jwks: JSONWebKeySet, expect: { issuer: string; clientId: string }): Promise<Verified> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: expect.issuer, algorithms: ALGORITHMS });
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    if (payload.azp !== expect.clientId && !audiences.includes(expect.clientId)) {
      throw signInAgain(`the stored token was issued to client '${String(payload.azp)}', not '${expect.clientId}'`);
    }
    return { ok: true, claims: payload };
  } catch (err) {
    if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired' };
    if (err instanceof errors.JWKSNoMatchingKey) return { ok: false, reason: 'unknown-key' };
    if (err instanceof errors.JOSEError) throw signInAgain(`the stored token is not valid for this realm (${err.code})`);
    throw err;
  }
}
