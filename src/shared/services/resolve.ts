// Looking rows up by id or by name, as the CLI contract promises for <org>, <key> and <user>.
import { eq, or } from 'drizzle-orm';
import type { ApiKey, Org, User } from '../db/schema.js';
import type { Db } from '../db/store.js';
import { notFound } from '../errors.js';
import type { ServiceContext } from './context.js';

export async function findOrg(db: Db, ctx: ServiceContext, ref: string): Promise<Org | undefined> {
  const { t } = ctx.store;
  const [row] = await db.select().from(t.orgs).where(or(eq(t.orgs.id, ref), eq(t.orgs.name, ref))).limit(1);
  return row;
}

export async function requireOrg(db: Db, ctx: ServiceContext, ref: string): Promise<Org> {
  const org = await findOrg(db, ctx, ref);
  if (!org) throw notFound('org', ref);
  return org;
}

export async function findUser(db: Db, ctx: ServiceContext, ref: string): Promise<User | undefined> {
  const { t } = ctx.store;
  const [row] = await db
    .select()
    .from(t.users)
    .where(or(eq(t.users.id, ref), eq(t.users.username, ref), eq(t.users.email, ref), eq(t.users.externalId, ref)))
    .limit(1);
  return row;
}

export async function requireUser(db: Db, ctx: ServiceContext, ref: string): Promise<User> {
  const user = await findUser(db, ctx, ref);
  if (!user) throw notFound('user', ref);
  return user;
}

/** Accepts a key id, or a whole plaintext key (its id part is used). */
export function keyIdOf(ref: string): string {
  const m = /^gw_[a-z]+_([0-9a-z]{12})_/.exec(ref);
  return m ? m[1]! : ref;
}

export async function requireKey(db: Db, ctx: ServiceContext, ref: string): Promise<ApiKey> {
  const { t } = ctx.store;
  const id = keyIdOf(ref);
  const [row] = await db.select().from(t.apiKeys).where(eq(t.apiKeys.id, id)).limit(1);
  if (!row) throw notFound('key', ref);
  return row;
}
