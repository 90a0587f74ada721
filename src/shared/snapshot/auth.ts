// Per-request checks against the snapshot: pure functions, no I/O. Denials are values
// (STYLE.md §8); the proxy turns them into OpenAI-shaped errors at the edge.
import { ipAllowed as blockListAllows, referrerAllowed as referrerMatches } from '../ip-rules.js';
import { parseKey, verifyKeyHash } from '../keys.js';
import { anyMatches } from '../model-patterns.js';
import type { Snapshot, SnapshotKey, SnapshotOrg, SnapshotUser } from './types.js';

export interface AuthOk {
  ok: true;
  key: SnapshotKey;
  org: SnapshotOrg;
  /** The key's own user, or null. */
  user: SnapshotUser | null;
  /** The key's ancestors, parent first (the key itself is not included). */
  chainKeys: readonly SnapshotKey[];
  /**
   * When this authentication stops holding without any configuration change (ms epoch): the
   * earliest expiry in the chain, or the end of the rotation grace of the secret presented.
   * Infinity when nothing expires. A request whose body arrives later is authenticated again.
   */
  validUntil: number;
}

export type AuthDenialCode = 'invalid_api_key' | 'key_revoked' | 'key_expired' | 'key_disabled';

export interface AuthDenial {
  ok: false;
  code: AuthDenialCode;
  message: string;
}

export type AuthResult = AuthOk | AuthDenial;

const deny = (code: AuthDenialCode, message: string): AuthDenial => ({ ok: false, code, message });
const INVALID = deny('invalid_api_key', 'Incorrect API key provided.');

/**
 * Secrets already proven to hash to a key's current (or previous) hash, per snapshot key
 * object. Hashing every request cost ~10 µs of CPU; a constant-time comparison with a secret
 * proven before costs well under one. A reload builds new key objects, so a rotation,
 * revocation or any other change starts from a full verification again, and the WeakMap lets
 * old snapshots' entries go with them.
 */
const proven = new WeakMap<SnapshotKey, { current: string | null; previous: string | null }>();

/**
 * Constant-time equality of a proven secret and a presented key (both ASCII: parseKey admitted
 * nothing else): every character is compared whatever the earlier ones were, as
 * timingSafeEqual does, without copying the key into a Buffer first (~1 µs a request).
 */
function same(a: string | null, b: string): boolean {
  if (a === null || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const CURRENT = Object.freeze({ current: true, previous: false });
const PREVIOUS = Object.freeze({ current: false, previous: true });

/** Which of the key's secrets the presented key is: the current one, the previous one, or neither. */
function matchSecret(key: SnapshotKey, presentedKey: string): { current: boolean; previous: boolean } {
  const known = proven.get(key);
  if (known && same(known.current, presentedKey)) return CURRENT;
  if (known && same(known.previous, presentedKey)) return PREVIOUS;
  const current = verifyKeyHash(presentedKey, key.keyHash);
  // Always run the second comparison too, so timing does not reveal which secret matched.
  const previous = key.prevKeyHash !== null && verifyKeyHash(presentedKey, key.prevKeyHash);
  if (current || previous) {
    const entry = known ?? { current: null, previous: null };
    // A copy of its own: the presented key may be a slice of a whole header kept alive with it.
    const text = Buffer.from(presentedKey, 'latin1').toString('latin1');
    if (current) entry.current = text;
    else entry.previous = text;
    proven.set(key, entry);
  }
  return { current, previous };
}

/** Authenticates a presented key (the bearer token) against the snapshot. `now` is ms epoch. */
export function authenticate(snapshot: Snapshot, presentedKey: string, now: number): AuthResult {
  const parsed = parseKey(presentedKey);
  if (!parsed) return INVALID;
  const key = snapshot.keys.get(parsed.id);
  if (!key || key.env !== parsed.env) return INVALID;
  const { current, previous } = matchSecret(key, presentedKey);
  const inGrace = key.prevKeyExpiresAt !== null && now < key.prevKeyExpiresAt;
  if (!current && !(previous && inGrace)) return INVALID;

  const org = snapshot.orgs.get(key.orgId);
  if (!org) return INVALID;
  const chainKeys: SnapshotKey[] = [];
  for (let i = 1; i < key.chain.length; i++) {
    const ancestor = snapshot.keys.get(key.chain[i]!);
    if (!ancestor) return deny('key_revoked', `A parent of key ${key.id} no longer exists.`);
    chainKeys.push(ancestor);
  }
  // The key, then each ancestor (no array or message built unless something is wrong).
  let validUntil = current ? Number.POSITIVE_INFINITY : key.prevKeyExpiresAt!;
  for (let i = -1; i < chainKeys.length; i++) {
    const k = i < 0 ? key : chainKeys[i]!;
    const problem = keyProblem(snapshot, k, now);
    if (problem !== null) return chainDenial(problem, key, k);
    if (k.expiresAt !== null && k.expiresAt < validUntil) validUntil = k.expiresAt;
  }
  const user = key.userId ? (snapshot.users.get(key.userId) ?? null) : null;
  return { ok: true, key, org, user, chainKeys, validUntil };
}

type KeyProblem = 'revoked' | 'disabled' | 'expired' | 'user_disabled';

function keyProblem(snapshot: Snapshot, k: SnapshotKey, now: number): KeyProblem | null {
  if (k.status === 'revoked') return 'revoked';
  if (k.status === 'disabled') return 'disabled';
  if (k.expiresAt !== null && k.expiresAt <= now) return 'expired';
  if (k.userId && snapshot.users.get(k.userId)?.status === 'disabled') return 'user_disabled';
  return null;
}

function chainDenial(problem: KeyProblem, key: SnapshotKey, k: SnapshotKey): AuthDenial {
  const own = k === key;
  const what = own ? `Key ${key.id}` : `Parent key ${k.id} of key ${key.id}`;
  switch (problem) {
    case 'revoked':
      return deny('key_revoked', `${what} has been revoked.`);
    case 'disabled':
      return deny('key_disabled', `${what} is disabled.`);
    case 'expired':
      return deny('key_expired', `${what} has expired.`);
    case 'user_disabled':
      return deny('key_disabled', `The user of ${own ? `key ${key.id}` : `parent key ${k.id}`} is disabled.`);
  }
}

/** Whether every key of the chain (the key, then its ancestors) passes `test`. */
function everyInChain(auth: AuthOk, test: (k: SnapshotKey) => boolean): boolean {
  if (!test(auth.key)) return false;
  for (const k of auth.chainKeys) if (!test(k)) return false;
  return true;
}

/** Org rules ∩ the key's rules ∩ every ancestor's rules; an empty org list or a null key list allows all. */
export function modelAllowed(_snapshot: Snapshot, auth: AuthOk, model: string): boolean {
  if (auth.org.models.length > 0 && !anyMatches(auth.org.models, model)) return false;
  return everyInChain(auth, (k) => k.models === null || anyMatches(k.models, model));
}

/** Every key in the chain that has an IP allow-list must allow `ip`. */
export function ipAllowed(auth: AuthOk, ip: string): boolean {
  return everyInChain(auth, (k) => k.ipAllow === null || blockListAllows(k.ipAllow, ip));
}

/** Every key in the chain with referrer rules must match the Referer (or Origin) header. */
export function referrerAllowed(auth: AuthOk, headerValue: string | undefined): boolean {
  return everyInChain(auth, (k) => k.referrerAllow.length === 0 || referrerMatches(k.referrerAllow, headerValue));
}
