import { checkAccessToken } from './access-token.js';
import { bearerToken, type Req, type Res, sendProseError } from './http-io.js';
import { effectiveClientRoles, REALM_MANAGEMENT } from './realm-state.js';
import type { OidcContext } from './token-issue.js';
import type { StoredUser } from './types.js';

/** What an admin route requires, as a `realm-management` role (any of the listed roles satisfies it). */
export type Need = 'view-users' | 'manage-users' | 'view-realm' | 'manage-realm' | 'query-groups';

const SATISFIED_BY: Record<Need, string[]> = {
  'view-users': ['view-users', 'manage-users'],
  'manage-users': ['manage-users'],
  'view-realm': ['view-realm', 'manage-realm', 'view-users', 'manage-users'],
  'manage-realm': ['manage-realm'],
  'query-groups': ['query-groups', 'view-users', 'manage-users'],
};

export interface AdminCaller {
  user: StoredUser;
  roles: string[];
  manageUsers: boolean;
}

/**
 * Bearer check for `/admin/realms/…`: a valid, unexpired, non-revoked access token of this
 * realm whose session is still active, else `401 {"error":"HTTP 401 Unauthorized"}`.
 * The caller's CURRENT `realm-management` roles (as Keycloak's AdminAuth reads them) decide
 * the rest: the `gateway` service account holds `realm-admin`; an ordinary user holds none
 * and gets `403 {"error":"HTTP 403 Forbidden"}`.
 */
export async function authenticateAdmin(ctx: OidcContext, req: Req, res: Res): Promise<AdminCaller | undefined> {
  const token = bearerToken(req);
  const checked = token ? await checkAccessToken(ctx, token) : undefined;
  if (!checked?.ok) {
    sendProseError(res, 401, 'HTTP 401 Unauthorized');
    return undefined;
  }
  const roles = effectiveClientRoles(ctx.state, checked.user).get(REALM_MANAGEMENT) ?? [];
  return { user: checked.user, roles, manageUsers: roles.includes('manage-users') };
}

export function permits(caller: AdminCaller, need: Need): boolean {
  return SATISFIED_BY[need].some((r) => caller.roles.includes(r));
}

export function forbid(res: Res): void {
  sendProseError(res, 403, 'HTTP 403 Forbidden');
}
