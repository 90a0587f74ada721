// API key format: gw_<env>_<id>_<secret>. The id is the row's public primary key; the secret
// carries 43 base62 characters (≈256 bits). Only SHA-256 of the whole key is stored.
import { createHash, timingSafeEqual } from 'node:crypto';
import { randomBase62, randomString } from './ids.js';

export const KEY_ENVS = ['live', 'test', 'staging', 'dev'] as const;
export type KeyEnv = (typeof KEY_ENVS)[number];
export const KEY_TYPES = ['org', 'admin', 'user'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const KEY_STATUSES = ['active', 'disabled', 'revoked'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

const ID_LENGTH = 12;
const SECRET_LENGTH = 43;
const KEY_RE = /^gw_(live|test|staging|dev)_([0-9a-z]{12})_([0-9A-Za-z]{43})$/;

export interface ParsedKey {
  env: KeyEnv;
  id: string;
  secret: string;
}

export const newKeyId = () => randomString(ID_LENGTH);

export function formatKey(env: KeyEnv, id: string): string {
  return `gw_${env}_${id}_${randomBase62(SECRET_LENGTH)}`;
}

/** Returns null for anything that is not exactly a well-formed key. */
export function parseKey(raw: string): ParsedKey | null {
  const m = KEY_RE.exec(raw);
  if (!m) return null;
  return { env: m[1] as KeyEnv, id: m[2]!, secret: m[3]! };
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented key against a stored SHA-256 hex digest. */
export function verifyKeyHash(key: string, storedHex: string): boolean {
  const presented = createHash('sha256').update(key, 'utf8').digest();
  const stored = Buffer.from(storedHex, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

export const isKeyEnv = (v: string): v is KeyEnv => (KEY_ENVS as readonly string[]).includes(v);
export const isKeyType = (v: string): v is KeyType => (KEY_TYPES as readonly string[]).includes(v);
