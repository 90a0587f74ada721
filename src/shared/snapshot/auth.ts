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

/** Authenticates a presented key (the bearer token) against the snapshot. `now` is ms epoch. */
export function authenticate(snapshot: Snapshot, presentedKey: string, now: number): AuthResult {
  const parsed = parseKey(presentedKey);
  if (!parsed) return INVALID;
  const key = snapshot.keys.get(parsed.id);
  if (!key || key.env !== parsed.env) return INVALID;
  const current = verifyKeyHash(presentedKey, key.keyHash);
  // Always run the second comparison too, so timing does not reveal which secret matched.
  const previous = key.prevKeyHash !== null && verifyKeyHash(presentedKey, key.prevKeyHash);
  const inGrace = key.prevKeyExpiresAt !== null && now < key.prevKeyExpiresAt;
  if (!current && !(previous && inGrace)) return INVALID;

  const org = snapshot.orgs.get(key.orgId);
  if (!org) return INVALID;
  const chainKeys: SnapshotKey[] = [];
  for (const id of key.chain.slice(1)) {
    const ancestor = snapshot.keys.get(id);
    if (!ancestor) return deny('key_revoked', `A parent of key ${key.id} no longer exists.`);
    chainKeys.push(ancestor);
  }
  for (const k of [key, ...chainKeys]) {
    const own = k === key;
    const what = own ? `Key ${key.id}` : `Parent key ${k.id} of key ${key.id}`;
    if (k.status === 'revoked') return deny('key_revoked', `${what} has been revoked.`);
    if (k.status === 'disabled') return deny('key_disabled', `${what} is disabled.`);
    if (k.expiresAt !== null && k.expiresAt <= now) return deny('key_expired', `${what} has expired.`);
    const u = k.userId ? snapshot.users.get(k.userId) : undefined;
    if (u?.status === 'disabled') return deny('key_disabled', `The user of ${own ? `key ${key.id}` : `parent key ${k.id}`} is disabled.`);
  }
  const user = key.userId ? (snapshot.users.get(key.userId) ?? null) : null;
  return { ok: true, key, org, user, chainKeys };
}

/** Org rules ∩ the key's rules ∩ every ancestor's rules; an empty org list or a null key list allows all. */
export function modelAllowed(_snapshot: Snapshot, auth: AuthOk, model: string): boolean {
  if (auth.org.models.length > 0 && !anyMatches(auth.org.models, model)) return false;
  return [auth.key, ...auth.chainKeys].every((k) => k.models === null || anyMatches(k.models, model));
}

/** Every key in the chain that has an IP allow-list must allow `ip`. */
export function ipAllowed(auth: AuthOk, ip: string): boolean {
  return [auth.key, ...auth.chainKeys].every((k) => k.ipAllow === null || blockListAllows(k.ipAllow, ip));
}

/** Every key in the chain with referrer rules must match the Referer (or Origin) header. */
export function referrerAllowed(auth: AuthOk, headerValue: string | undefined): boolean {
  return [auth.key, ...auth.chainKeys].every((k) => k.referrerAllow.length === 0 || referrerMatches(k.referrerAllow, headerValue));
}
