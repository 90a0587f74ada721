// The proxy's in-memory view of the configuration: immutable, rebuilt from the store when
// config_version changes, and the only thing the request path reads (DESIGN.md §2).
import type { BlockList } from 'node:net';
import type { Metric, ScopeType, Window } from '../services/limits.js';

export interface SnapshotOrg {
  id: string;
  name: string;
  provider: 'openrouter' | 'openai' | 'openai-compatible' | 'mock';
  baseUrl: string | null;
  /** Decrypted upstream key (kept in memory only), or null. */
  upstreamKey: string | null;
  failureMode: 'closed' | 'open';
  unknownModelPolicy: 'refuse' | 'free';
  defaultMaxTokens: number | null;
  httpReferer: string | null;
  appTitle: string | null;
  /** Model rules; empty means every model is allowed. */
  models: readonly string[];
}

export interface SnapshotUser {
  id: string;
  orgId: string | null;
  username: string;
  status: 'active' | 'disabled';
}

export interface SnapshotKey {
  id: string;
  orgId: string;
  userId: string | null;
  parentId: string | null;
  type: 'org' | 'admin' | 'user';
  env: string;
  status: 'active' | 'disabled' | 'revoked';
  /** SHA-256 hex of the current key, and of the previous one during a rotation grace period. */
  keyHash: string;
  prevKeyHash: string | null;
  prevKeyExpiresAt: number | null;
  expiresAt: number | null;
  models: readonly string[] | null;
  ipAllow: BlockList | null;
  referrerAllow: readonly string[];
  /** This key, then its parent, grandparent… (ids), for limits and checks that apply up the chain. */
  chain: readonly string[];
}

export interface SnapshotLimit {
  id: string;
  scopeType: ScopeType;
  scopeId: string;
  /** '' = every model. */
  model: string;
  metric: Metric;
  window: Window;
  /** requests, tokens, or micro-dollars. */
  max: number;
}

export interface SnapshotPrice {
  /** micro-dollars per million tokens */
  prompt: number;
  completion: number;
  /** micro-dollars per request */
  request: number;
}

export interface Snapshot {
  version: number;
  loadedAt: number;
  orgs: ReadonlyMap<string, SnapshotOrg>;
  users: ReadonlyMap<string, SnapshotUser>;
  keys: ReadonlyMap<string, SnapshotKey>;
  /** Limits by `${scopeType}:${scopeId}`. */
  limits: ReadonlyMap<string, readonly SnapshotLimit[]>;
  prices: ReadonlyMap<string, SnapshotPrice>;
  /** Scopes (`${scopeType}:${scopeId}`) that hold a credit ledger, with their balance (micro-dollars) at load time. */
  creditBalances: ReadonlyMap<string, number>;
  /**
   * Per credit scope, everything ever granted (top-ups and adjustments, i.e. every ledger row
   * that is not a 'charge'). The credit counter's max is this, and its `used` is the sum of
   * charges, so a snapshot reload after the usage sink writes charges does not double count.
   */
  creditGranted: ReadonlyMap<string, number>;
  /** Quota resets (`gatewayctl quotas reset`): `${scopeType}:${scopeId}:${window}` → reset time (ms). */
  resets: ReadonlyMap<string, number>;
}
