// Who may do what, decided in one place. A command declares a Requirement (see
// src/cli/access-policy.ts); `authorize` checks the principal's roles against it and the rows
// it touches: gateway-admin may do everything, org-admin only inside its own org, gateway-user
// only its own user and keys. Refusals are `forbidden` (exit 5) naming the missing role.
import { eq } from 'drizzle-orm';
import type { User } from '../db/schema.js';
import { GatewayError } from '../errors.js';
import type { ServiceContext } from '../services/context.js';
import { parseScope } from '../services/limits.js';
import { findOrg, findUser, keyIdOf } from '../services/resolve.js';
import { orgFromGroup, type Principal } from './principal.js';

/** Something a command touches; `flag` names the option the ref came from, so it can be filled in. */
export type Target =
  | { kind: 'org' | 'key' | 'user'; ref: string | undefined; flag?: string }
  | { kind: 'scope'; ref: string | undefined }
  /** A group named `org:<name>` moves a user into that org. */
  | { kind: 'group'; ref: string | undefined }
  /** A role being granted: granting gateway-admin takes a gateway-admin. */
  | { kind: 'role'; ref: string | undefined };

export type Requirement =
  /** No sign-in needed (login, logout, chat with an API key). */
  | { level: 'public' }
  /** Any signed-in identity, whatever its roles (whoami, keys mine). */
  | { level: 'signed-in' }
  | { level: 'admin' }
  /** gateway-admin; org-admin when every target is in its org. */
  | { level: 'org'; targets: Target[] }
  /** As 'org', and gateway-user when every target is its own user or key. */
  | { level: 'self'; targets: Target[] };

export interface Decision {
  /** Options to fill in so the command stays inside what the principal may see (e.g. --org acme). */
  fill: Record<string, string>;
}

const ALLOWED: Decision = { fill: {} };
const DELEGABLE: readonly string[] = ['org-admin', 'gateway-user'];

interface Touched {
  target: Target;
  label: string;
  orgId: string | null;
  userId: string | null;
}

function forbidden(message: string): GatewayError {
  return new GatewayError('forbidden', message);
}

function held(p: Principal): string {
  return p.roles.length ? `has ${p.roles.join(', ')}` : 'has no gateway role';
}

export async function authorize(p: Principal, req: Requirement, what: string, services: () => Promise<ServiceContext>): Promise<Decision> {
  if (req.level === 'public' || req.level === 'signed-in' || p.roles.includes('gateway-admin')) return ALLOWED;
  const needAdmin = `\`${what}\` requires the gateway-admin role (${p.username} ${held(p)})`;
  if (req.level === 'admin') throw forbidden(needAdmin);
  // org-admin hands out at most its own powers; any other realm role (gateway-admin first) is a gateway-admin's call.
  const grants = req.targets.find((t) => t.kind === 'role' && t.ref !== undefined && !DELEGABLE.includes(t.ref));
  if (grants) throw forbidden(`changing role ${grants.ref} requires the gateway-admin role (${p.username} ${held(p)})`);
  const ctx = await services();
  if (p.roles.includes('org-admin')) return asOrgAdmin(p, req.targets, what, ctx);
  if (req.level === 'self' && p.roles.includes('gateway-user')) return asUser(p, req.targets, what, ctx);
  const roles = req.level === 'self' ? 'gateway-admin, org-admin or gateway-user' : 'gateway-admin or org-admin';
  throw forbidden(`\`${what}\` requires the ${roles} role (${p.username} ${held(p)})`);
}

async function asOrgAdmin(p: Principal, targets: Target[], what: string, ctx: ServiceContext): Promise<Decision> {
  const own = await ownOrgs(p, ctx);
  const names = own.map((o) => o.name).join(', ') || 'no org';
  const fill: Record<string, string> = {};
  const orgFlag = targets.find((t) => t.kind === 'org' && t.ref === undefined && t.flag);
  if (orgFlag?.kind === 'org' && orgFlag.flag) {
    if (own.length !== 1) throw forbidden(`\`${what}\` as org-admin of ${names}: pass --${orgFlag.flag} <org> (or ask for the gateway-admin role)`);
    fill[orgFlag.flag] = own[0]!.name;
  }
  const touched = await touchedRows(targets, fill, ctx);
  if (touched.length === 0) throw forbidden(`\`${what}\` spans every org: it requires the gateway-admin role (${p.username} is org-admin of ${names})`);
  for (const t of touched) {
    if (!t.orgId || !own.some((o) => o.id === t.orgId)) {
      throw forbidden(`${t.label} is outside ${p.username}'s org (${names}): \`${what}\` there requires the gateway-admin role`);
    }
  }
  return { fill };
}

async function asUser(p: Principal, targets: Target[], what: string, ctx: ServiceContext): Promise<Decision> {
  const me = await ownUser(p, ctx);
  const fill: Record<string, string> = {};
  const userFlag = targets.find((t) => t.kind === 'user' && t.ref === undefined && t.flag);
  if (me && userFlag?.kind === 'user' && userFlag.flag) fill[userFlag.flag] = me.username;
  const touched = await touchedRows(targets, fill, ctx);
  const mine = (t: Touched) => me !== undefined && t.userId === me.id;
  if (touched.length === 0 || !touched.every(mine)) {
    const other = touched.find((t) => !mine(t));
    const subject = other ? `${other.label} is not ${p.username}'s own` : `\`${what}\` without naming your own user or key`;
    throw forbidden(`${subject}: that requires the org-admin or gateway-admin role (${p.username} ${held(p)})`);
  }
  return { fill };
}

/** The orgs an org-admin administers: from its token, else from its mirrored store row. */
async function ownOrgs(p: Principal, ctx: ServiceContext): Promise<{ id: string; name: string }[]> {
  const found = [];
  for (const name of p.orgs) {
    const org = await findOrg(ctx.store.db, ctx, name);
    if (org) found.push({ id: org.id, name: org.name });
  }
  if (found.length > 0 || p.orgs.length > 0) return found;
  const me = await ownUser(p, ctx);
  const org = me?.orgId ? await findOrg(ctx.store.db, ctx, me.orgId) : undefined;
  return org ? [{ id: org.id, name: org.name }] : [];
}

/** The principal's store row: the one mirroring its Keycloak `sub` (the local operator has none). */
export async function ownUser(p: Principal, ctx: ServiceContext): Promise<User | undefined> {
  if (!p.subject) return undefined;
  const { db, t } = ctx.store;
  const [row] = await db.select().from(t.users).where(eq(t.users.externalId, p.subject)).limit(1);
  return row;
}

async function touchedRows(targets: Target[], fill: Record<string, string>, ctx: ServiceContext): Promise<Touched[]> {
  const out: Touched[] = [];
  for (const target of targets) {
    const ref = target.ref ?? ('flag' in target && target.flag ? fill[target.flag] : undefined);
    if (ref === undefined || ref === '') continue;
    const row = await resolveTarget(target, ref, ctx);
    if (row) out.push(row);
  }
  return out;
}

async function resolveTarget(target: Target, ref: string, ctx: ServiceContext): Promise<Touched | undefined> {
  const { db, t } = ctx.store;
  const kind = target.kind === 'scope' ? parseScope(ref).type : target.kind;
  const id = target.kind === 'scope' ? parseScope(ref).id : ref;
  if (kind === 'role') return undefined;
  if (kind === 'group') {
    const org = orgFromGroup(id);
    return org === undefined ? undefined : resolveTarget({ kind: 'org', ref: org }, org, ctx);
  }
  if (kind === 'org') {
    const org = await findOrg(db, ctx, id);
    return { target, label: `org '${id}'`, orgId: org?.id ?? null, userId: null };
  }
  if (kind === 'user') {
    const user = await findUser(db, ctx, id);
    return { target, label: `user '${id}'`, orgId: user?.orgId ?? null, userId: user?.id ?? null };
  }
  const [key] = await db.select().from(t.apiKeys).where(eq(t.apiKeys.id, keyIdOf(id))).limit(1);
  return { target, label: `key '${keyIdOf(id)}'`, orgId: key?.orgId ?? null, userId: key?.userId ?? null };
}
