// Who is running gatewayctl and what they hold: the local operator (no identity server, so
// they may do everything, as before Keycloak existed) or a signed-in Keycloak user whose
// roles and org come from the verified access token.
import type { JWTPayload } from 'jose';
import { ROLES, type Role } from '../services/users.js';

export interface Principal {
  source: 'local' | 'keycloak';
  username: string;
  /** Keycloak's `sub` (the user's id in the realm); null for the local operator. */
  subject: string | null;
  email: string | null;
  /** The gateway roles held (realm roles, or roles of the gateway's client). */
  roles: Role[];
  /** Org names from the token: groups named `org:<name>`, or a `gateway_org` claim. */
  orgs: string[];
  /** What the audit log names. */
  actor: string;
  /** When the access token expires; null for the local operator. */
  expiresAt: Date | null;
}

export const ORG_GROUP_PREFIX = 'org:';

export function localPrincipal(osUser: string): Principal {
  return {
    source: 'local', username: osUser, subject: null, email: null, roles: ['gateway-admin'], orgs: [],
    actor: `os:${osUser}`, expiresAt: null,
  };
}

const strings = (v: unknown): string[] => {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
};

function rolesClaim(claims: JWTPayload, clientId: string): string[] {
  const realm = strings((claims.realm_access as { roles?: unknown } | undefined)?.roles);
  const access = claims.resource_access as Record<string, { roles?: unknown }> | undefined;
  return [...realm, ...strings(access?.[clientId]?.roles)];
}

/** `/org:acme` (full path, Keycloak's mapper default), `org:acme`, or `/parent/org:acme` all name org acme. */
export function orgFromGroup(group: string): string | undefined {
  const last = group.split('/').filter(Boolean).pop() ?? '';
  return last.startsWith(ORG_GROUP_PREFIX) && last.length > ORG_GROUP_PREFIX.length ? last.slice(ORG_GROUP_PREFIX.length) : undefined;
}

export function principalFromClaims(claims: JWTPayload, clientId: string): Principal {
  const held = new Set(rolesClaim(claims, clientId));
  const fromGroups = strings(claims.groups).map(orgFromGroup).filter((o): o is string => o !== undefined);
  const orgs = [...new Set([...fromGroups, ...strings(claims.gateway_org)])];
  const username = strings(claims.preferred_username)[0] ?? claims.sub ?? 'unknown';
  return {
    source: 'keycloak',
    username,
    subject: claims.sub ?? null,
    email: strings(claims.email)[0] ?? null,
    roles: ROLES.filter((r) => held.has(r)),
    orgs,
    actor: `keycloak:${username}`,
    expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null,
  };
}
