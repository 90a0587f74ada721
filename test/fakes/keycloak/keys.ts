import { randomBytes, randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';

/**
 * Realm keys, as Keycloak has them: an RS256 signing key (access and ID tokens), an
 * RSA-OAEP encryption key (published in the JWKS but unused) and an HS512 secret for
 * refresh tokens, which clients cannot verify.
 */
export interface RealmKeys {
  signKey: CryptoKey;
  verifyKey: CryptoKey;
  kid: string;
  sigJwk: JWK;
  encJwk: JWK;
  hmac: Uint8Array;
  hmacKid: string;
}

async function generateRealmKeys(): Promise<RealmKeys> {
  const sig = await generateKeyPair('RS256');
  const enc = await generateKeyPair('RSA-OAEP');
  const kid = randomBytes(32).toString('base64url').slice(0, 43);
  const sigJwk = { ...(await exportJWK(sig.publicKey)), kid, alg: 'RS256', use: 'sig' };
  const encJwk = { ...(await exportJWK(enc.publicKey)), kid: randomBytes(32).toString('base64url').slice(0, 43), alg: 'RSA-OAEP', use: 'enc' };
  return {
    signKey: sig.privateKey, verifyKey: sig.publicKey, kid, sigJwk, encJwk,
    hmac: new Uint8Array(randomBytes(64)), hmacKid: randomUUID(),
  };
}

let shared: Promise<RealmKeys> | undefined;

/**
 * RSA key generation costs ~0.5 s, so every fake in a process shares one key set. Fakes stay
 * isolated anyway: each has its own issuer (port), and every token check compares `iss`.
 */
export function createRealmKeys(): Promise<RealmKeys> {
  shared ??= generateRealmKeys();
  return shared;
}

/** `GET …/certs` body: field order as Keycloak (`kid, kty, alg, use, n, e`); `x5c` left out. */
export function jwksBody(keys: RealmKeys): { keys: JWK[] } {
  const view = (j: JWK): JWK => ({ kid: j.kid, kty: j.kty, alg: j.alg, use: j.use, n: j.n, e: j.e });
  return { keys: [view(keys.sigJwk), view(keys.encJwk)] };
}

export function signRs256(keys: RealmKeys, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keys.kid }).sign(keys.signKey);
}

export function signHs512(keys: RealmKeys, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS512', typ: 'JWT', kid: keys.hmacKid }).sign(keys.hmac);
}

/** What a token must match: this realm's issuer, checked against this realm's clock. */
export interface Expect {
  issuer: string;
  nowMs: number;
}

/** Signature, `alg`, `iss` and expiry. Undefined when any check fails. */
export async function verifyRs256(keys: RealmKeys, token: string, e: Expect): Promise<JWTPayload | undefined> {
  try {
    const opts = { algorithms: ['RS256'], issuer: e.issuer, currentDate: new Date(e.nowMs) };
    const { payload } = await jwtVerify(token, keys.verifyKey, opts);
    return payload;
  } catch {
    return undefined;
  }
}

export type RefreshCheck = { ok: true; payload: JWTPayload } | { ok: false; reason: 'invalid' | 'expired' };

export async function verifyHs512(keys: RealmKeys, token: string, e: Expect): Promise<RefreshCheck> {
  try {
    const opts = { algorithms: ['HS512'], issuer: e.issuer, currentDate: new Date(e.nowMs) };
    const { payload } = await jwtVerify(token, keys.hmac, opts);
    return { ok: true, payload };
  } catch (err) {
    const expired = err instanceof Error && 'code' in err && err.code === 'ERR_JWT_EXPIRED';
    return { ok: false, reason: expired ? 'expired' : 'invalid' };
  }
}
