/**
 * Internal model of the fake Keycloak realm. Everything lives in memory and is
 * mutated by the admin REST handlers and by the test helpers in index.ts.
 */

export interface FakeKeycloakOptions {
  /** Realm name. Default `gateway`. */
  realm?: string;
  /** Confidential client with a service account that is realm admin. Default `gateway`. */
  clientId?: string;
  /** Its secret. Default: random. */
  clientSecret?: string;
  /** Access-token lifespan (Keycloak's default is 60 s, the value in the recordings). */
  accessTokenLifespanSec?: number;
  /** Status of `invalid_grant "Invalid user credentials"`: 400 since Keycloak 26.6, 401 before. Default 400. */
  invalidGrantStatus?: 400 | 401;
  /** Public client (no secret) allowed password and device grants. Default `gatewayctl`. */
  publicClientId?: string;
  /** Refresh-token / SSO-session idle lifespan. Default 1800 s. */
  refreshTokenLifespanSec?: number;
  /** Device grant `interval`; polling faster gets `slow_down`. Default 5 s. */
  deviceCodeIntervalSec?: number;
  /** Device grant `expires_in`. Default 600 s. */
  deviceCodeLifespanSec?: number;
  /** `groups` claim as full paths (`/name`, the Keycloak mapper default) or bare names. Default true. */
  groupsClaimFullPath?: boolean;
  /** Clock in epoch milliseconds, for expiry tests without sleeping. Default `Date.now`. */
  now?: () => number;
}

export interface ClientDef {
  uuid: string;
  clientId: string;
  secret?: string;
  publicClient: boolean;
  serviceAccount: boolean;
  directAccessGrants: boolean;
  deviceGrant: boolean;
  /** Keycloak 26 `admin-cli`: access tokens without sub/aud/realm_access. */
  lightweight: boolean;
}

export interface Role {
  id: string;
  name: string;
  description?: string;
  composite: boolean;
  attributes: Record<string, string[]>;
}

export interface Group {
  id: string;
  name: string;
  attributes: Record<string, string[]>;
}

export interface StoredUser {
  id: string;
  username: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  enabled: boolean;
  emailVerified: boolean;
  createdTimestamp: number;
  attributes: Record<string, string[]>;
  requiredActions: string[];
  password?: string;
  /** Direct realm-role mappings, by role id. */
  realmRoleIds: Set<string>;
  /** Direct client-role mappings: client id → role names. */
  clientRoles: Map<string, Set<string>>;
  groupIds: Set<string>;
  serviceAccountClientId?: string;
}

export interface Session {
  id: string;
  userId: string;
  clientId: string;
  scope: string[];
  offline: boolean;
}

export type DeviceStatus = 'pending' | 'approved' | 'denied';

export interface DeviceGrant {
  deviceCode: string;
  userCode: string;
  clientId: string;
  scope: string[];
  expiresAt: number;
  lastPollAt?: number;
  status: DeviceStatus;
  userId?: string;
}

/** One request as received: `path` is the raw request target (query string included). */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Read-only copy of a stored user, as returned by `FakeKeycloak.user()`. */
export interface UserSnapshot {
  id: string;
  username: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  enabled: boolean;
  emailVerified: boolean;
  createdTimestamp: number;
  attributes: Record<string, string[]>;
  requiredActions: string[];
  password?: string;
  /** Direct realm-role names (always includes `default-roles-<realm>`), sorted. */
  realmRoles: string[];
  /** Effective realm roles, composites expanded, sorted. */
  effectiveRealmRoles: string[];
  clientRoles: Record<string, string[]>;
  /** Group names, sorted. */
  groups: string[];
  /** Ids of the user's active sessions. */
  sessions: string[];
}

export interface NewUser {
  username: string;
  password: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  enabled?: boolean;
  emailVerified?: boolean;
  realmRoles?: string[];
  /** Group names or `/name` paths; the groups must exist. */
  groups?: string[];
  attributes?: Record<string, string[]>;
  /** Client roles, e.g. `{ 'realm-management': ['realm-admin'] }` to let the user call the admin API. */
  clientRoles?: Record<string, string[]>;
}

export type DownMode = 'destroy' | 503;

export interface FakeKeycloak {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  realm: string;
  clientId: string;
  clientSecret: string;
  publicClientId: string;
  /** `${url}/realms/${realm}`. */
  issuer: string;
  addUser(u: NewUser): string;
  addRole(name: string, description?: string): void;
  addGroup(name: string, attributes?: Record<string, string[]>): string;
  user(idOrUsername: string): UserSnapshot | undefined;
  /** Ends every session of the user (admin "sign out"), like `POST /users/{id}/logout`. */
  logoutUser(idOrUsername: string): void;
  /** Test stand-in for the browser step of the device grant. Throws on an unknown code or user. */
  approveDevice(userCode: string, username: string): void;
  denyDevice(userCode: string): void;
  requests: RecordedRequest[];
  /**
   * When down, every request has its socket destroyed without a response
   * (fetch rejects with `TypeError: fetch failed`, like an unreachable Keycloak).
   * Pass mode 503 to answer `503` with an empty body instead (a proxy in front of a dead Keycloak).
   */
  setDown(down: boolean, mode?: DownMode): void;
  close(): Promise<void>;
}
