// Reading realm users as the gateway sees them: a user with its direct gateway roles, its
// groups and its org, found by any reference an operator types (store id, username, email or
// Keycloak id), one at a time or the whole realm in a few paged calls.
import type { ServiceContext } from '../services/context.js';
import { findUser } from '../services/resolve.js';
import { ROLES } from '../services/users.js';
import { notFound } from '../errors.js';
import type { KeycloakAdmin, UserRepresentation } from './keycloak-admin.js';
import type { KeycloakUserState } from './keycloak-mirror.js';
import { orgFromGroup } from './principal.js';

/** A user attribute naming the org, for realms that model orgs as attributes rather than groups. */
export const ORG_ATTRIBUTE = 'gateway_org';

export type RealmUser = UserRepresentation & { id: string; username: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function asRealmUser(rep: UserRepresentation | undefined): RealmUser | undefined {
  return rep?.id && rep.username ? { ...rep, id: rep.id, username: rep.username } : undefined;
}

export function orgOf(groups: string[], attributes: Record<string, unknown> | undefined): string | null {
  for (const g of groups) {
    const org = orgFromGroup(g);
    if (org) return org;
  }
  const attr = attributes?.[ORG_ATTRIBUTE];
  const first = Array.isArray(attr) ? attr[0] : attr;
  return typeof first === 'string' && first ? first : null;
}

export function stateFrom(rep: RealmUser, roles: string[], groups: string[]): KeycloakUserState {
  return {
    id: rep.id, username: rep.username, email: rep.email ?? null, enabled: rep.enabled !== false,
    roles: roles.filter((r) => (ROLES as readonly string[]).includes(r)), groups, orgName: orgOf(groups, rep.attributes),
  };
}

/** The realm user `ref` names: through its mirror row first, then by username, email or id in Keycloak. */
export async function findRealmUser(admin: KeycloakAdmin, ctx: ServiceContext, ref: string): Promise<RealmUser> {
  const doing = `looking up user '${ref}'`;
  const row = await findUser(ctx.store.db, ctx, ref);
  const id = row?.externalId ?? (UUID_RE.test(ref) ? ref : undefined);
  const byId = id ? asRealmUser(await admin.call(doing, (kc) => kc.users.findOne({ id }))) : undefined;
  if (byId) return byId;
  const name = row?.username ?? ref;
  const found = asRealmUser(await admin.findUser(doing, { username: name })) ?? (ref.includes('@') ? asRealmUser(await admin.findUser(doing, { email: ref })) : undefined);
  if (!found) throw notFound(`user (in Keycloak realm '${admin.settings.realm}')`, ref);
  return found;
}

export async function readState(admin: KeycloakAdmin, rep: RealmUser): Promise<KeycloakUserState> {
  const doing = `reading user '${rep.username}'`;
  const [roles, groups] = await Promise.all([
    admin.call(doing, (kc) => kc.users.listRealmRoleMappings({ id: rep.id })),
    admin.call(doing, (kc) => kc.users.listGroups({ id: rep.id, briefRepresentation: true })),
  ]);
  return stateFrom(rep, roles.map((r) => r.name ?? ''), groups.map((g) => g.name ?? ''));
}

/** Every realm user with roles and groups: users, role members and group members, page by page. */
export async function readRealm(admin: KeycloakAdmin): Promise<KeycloakUserState[]> {
  const users = (await admin.all('listing users', (kc, first, max) => kc.users.find({ first, max, briefRepresentation: false })))
    .map(asRealmUser)
    .filter((u): u is RealmUser => u !== undefined);
  const rolesOf = new Map<string, string[]>();
  for (const role of ROLES) {
    const members = await admin.all(`listing members of role '${role}'`, async (kc, first, max) => (await kc.roles.findUsersWithRole({ name: role, first, max, briefRepresentation: true })) ?? []);
    for (const m of members) if (m.id) rolesOf.set(m.id, [...(rolesOf.get(m.id) ?? []), role]);
  }
  const groupsOf = new Map<string, string[]>();
  const groups = await admin.all('listing groups', (kc, first, max) => kc.groups.find({ first, max, briefRepresentation: true }));
  for (const g of groups) {
    if (!g.id || !g.name) continue;
    const { id, name } = g;
    const members = await admin.all(`listing members of group '${name}'`, async (kc, first, max) => (await kc.groups.listMembers({ id, first, max, briefRepresentation: true })) ?? []);
    for (const m of members) if (m.id) groupsOf.set(m.id, [...(groupsOf.get(m.id) ?? []), name]);
  }
  return users.map((u) => stateFrom(u, rolesOf.get(u.id) ?? [], groupsOf.get(u.id) ?? []));
}
