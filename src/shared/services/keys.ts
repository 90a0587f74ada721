import { and, asc, eq, type SQL } from 'drizzle-orm';
import type { ApiKey, Limit, Org } from '../db/schema.js';
import type { Db } from '../db/store.js';
import { conflict, GatewayError, usageError } from '../errors.js';
import { checkReferrerRule, parseCidr } from '../ip-rules.js';
import { formatKey, hashKey, isKeyEnv, isKeyType, KEY_ENVS, KEY_TYPES, newKeyId } from '../keys.js';
import { patternCovered } from '../model-patterns.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { addCredits } from './credits.js';
import { applyLimits, type LimitSpec, listLimits } from './limits.js';
import { checkModelPattern } from './orgs.js';
import { requireKey, requireOrg, requireUser } from './resolve.js';

export interface KeyInput {
  name?: string;
  type?: string;
  user?: string | null;
  parent?: string;
  env?: string;
  models?: string[] | null;
  expiresAt?: Date | null;
  ip?: string[];
  referrers?: string[];
  limits?: LimitSpec[];
  creditsMicros?: number;
  metadata?: Record<string, unknown>;
  status?: string;
}

export interface KeyWithLimits {
  key: ApiKey;
  limits: Limit[];
}

export interface CreatedKey extends KeyWithLimits {
  plaintext: string;
}

function normalizeList(values: string[] | undefined, check: (v: string) => unknown): string[] {
  const out = (values ?? []).map((v) => v.trim()).filter(Boolean);
  out.forEach(check);
  return [...new Set(out)];
}

function checkModels(models: string[] | null | undefined): string[] | null {
  if (models === undefined || models === null) return null;
  const list = normalizeList(models, checkModelPattern);
  return list.length ? list : null;
}

/** A child key may never be looser than its parent: models, limits and expiry are checked. */
async function checkAgainstParent(tx: Db, ctx: ServiceContext, parent: ApiKey, key: Pick<ApiKey, 'models' | 'expiresAt'>, specs: LimitSpec[]) {
  if (parent.models) {
    const childModels = key.models ?? [];
    if (!key.models) {
      throw usageError(`parent key ${parent.id} allows only ${parent.models.join(', ')}: give --models within that set`, 'models');
    }
    const outside = childModels.filter((m) => !patternCovered(m, parent.models!));
    if (outside.length) throw usageError(`models ${outside.join(', ')} are not allowed by parent key ${parent.id}`, 'models');
  }
  if (parent.expiresAt && key.expiresAt && key.expiresAt > parent.expiresAt) {
    throw usageError(`the key cannot outlive its parent (parent expires ${parent.expiresAt.toISOString()})`, 'expires_at');
  }
  const parentLimits = await listLimits(tx, ctx, { type: 'key', id: parent.id });
  for (const s of specs) {
    if (s.max === null) continue;
    const p = parentLimits.find((l) => l.metric === s.metric && l.window === s.window && l.model === (s.model ?? ''));
    if (p && s.max > p.max) {
      throw usageError(`${s.metric}/${s.window} limit ${s.max} exceeds the parent key's ${p.max}`, `${s.metric}_${s.window}`);
    }
  }
}

function pick<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T, what: string): T {
  const v = value ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) throw usageError(`unknown ${what} '${v}': use one of ${allowed.join(', ')}`, what);
  return v as T;
}

export async function createKey(ctx: ServiceContext, orgRef: string, input: KeyInput): Promise<CreatedKey> {
  const type = pick(input.type, KEY_TYPES, 'user', 'type');
  const env = pick(input.env, KEY_ENVS, 'live', 'env');
  if (!isKeyType(type) || !isKeyEnv(env)) throw usageError('bad key type or env');
  const models = checkModels(input.models);
  const ip = normalizeList(input.ip, parseCidr);
  const referrers = normalizeList(input.referrers, checkReferrerRule);
  const specs = input.limits ?? [];
  if (input.expiresAt && input.expiresAt <= ctx.now()) throw usageError('expiry must be in the future', 'expires_at');
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const org = await requireOrg(tx, ctx, orgRef);
    const user = input.user ? await requireUser(tx, ctx, input.user) : undefined;
    if (type === 'user' && !user) throw usageError("a key of type 'user' needs --user", 'user');
    if (user?.orgId && user.orgId !== org.id) throw usageError(`user '${user.username}' belongs to another org`, 'user');
    let parent: ApiKey | undefined;
    if (input.parent) {
      parent = await requireKey(tx, ctx, input.parent);
      if (parent.orgId !== org.id) throw usageError(`parent key ${parent.id} belongs to another org`, 'parent');
      if (parent.status === 'revoked') throw usageError(`parent key ${parent.id} is revoked`, 'parent');
    }
    const id = newKeyId();
    const plaintext = formatKey(env, id);
    const now = ctx.now();
    const row: ApiKey = {
      id,
      orgId: org.id,
      userId: user?.id ?? null,
      parentId: parent?.id ?? null,
      type,
      name: input.name?.trim() || `${type}-${id.slice(0, 6)}`,
      env,
      status: 'active',
      keyHash: hashKey(plaintext),
      prevKeyHash: null,
      prevKeyExpiresAt: null,
      models,
      ipAllow: ip,
      referrerAllow: referrers,
      // A child never outlives its parent: without an expiry of its own it takes the parent's.
      expiresAt: input.expiresAt ?? parent?.expiresAt ?? null,
      metadata: input.metadata ?? {},
      createdBy: ctx.actor,
      lastUsedAt: null,
      revokedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    if (parent) await checkAgainstParent(tx, ctx, parent, row, specs);
    await tx.insert(t.apiKeys).values(row);
    await applyLimits(tx, ctx, { type: 'key', id }, specs);
    if (input.creditsMicros) {
      await addCredits(tx, ctx, { type: 'key', id }, input.creditsMicros, 'initial credits');
    }
    await recordChange(tx, ctx, 'keys.create', { type: 'key', id }, { org: org.id, type, env, parent: parent?.id ?? null });
    return { key: row, plaintext, limits: await listLimits(tx, ctx, { type: 'key', id }) };
  });
}

export interface KeyFilter {
  org?: string;
  user?: string;
  status?: string;
}

export type KeyStatusView = 'active' | 'disabled' | 'revoked' | 'expired';

export function effectiveStatus(key: ApiKey, now: Date): KeyStatusView {
  if (key.status === 'active' && key.expiresAt && key.expiresAt <= now) return 'expired';
  return key.status as KeyStatusView;
}

export async function listKeys(ctx: ServiceContext, filter: KeyFilter = {}): Promise<KeyWithLimits[]> {
  const { db, t } = ctx.store;
  const where: SQL[] = [];
  if (filter.org) where.push(eq(t.apiKeys.orgId, (await requireOrg(db, ctx, filter.org)).id));
  if (filter.user) where.push(eq(t.apiKeys.userId, (await requireUser(db, ctx, filter.user)).id));
  if (filter.status && !['active', 'disabled', 'revoked', 'expired'].includes(filter.status)) {
    throw usageError(`unknown status '${filter.status}': use active, disabled, revoked or expired`, 'status');
  }
  const rows = await db
    .select()
    .from(t.apiKeys)
    .where(where.length ? and(...where) : undefined)
    .orderBy(asc(t.apiKeys.createdAt));
  const now = ctx.now();
  const keys = filter.status ? rows.filter((k) => effectiveStatus(k, now) === filter.status) : rows;
  const allLimits = await db.select().from(t.limits).where(eq(t.limits.scopeType, 'key'));
  return keys.map((key) => ({ key, limits: allLimits.filter((l) => l.scopeId === key.id) }));
}

export async function getKey(ctx: ServiceContext, ref: string): Promise<KeyWithLimits> {
  const key = await requireKey(ctx.store.db, ctx, ref);
  return { key, limits: await listLimits(ctx.store.db, ctx, { type: 'key', id: key.id }) };
}

export async function updateKey(ctx: ServiceContext, ref: string, input: KeyInput): Promise<KeyWithLimits> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const key = await requireKey(tx, ctx, ref);
    if (key.status === 'revoked') throw new GatewayError('conflict', `key ${key.id} is revoked and cannot be changed`);
    const patch: Partial<ApiKey> = { updatedAt: ctx.now() };
    const changed: string[] = [];
    const set = <K extends keyof ApiKey>(field: K, value: ApiKey[K], label: string) => {
      patch[field] = value;
      changed.push(label);
    };
    if (input.name !== undefined) set('name', input.name.trim(), 'name');
    if (input.models !== undefined) set('models', checkModels(input.models), 'models');
    if (input.expiresAt !== undefined) set('expiresAt', input.expiresAt, 'expires_at');
    if (input.ip !== undefined) set('ipAllow', normalizeList(input.ip, parseCidr), 'ip');
    if (input.referrers !== undefined) set('referrerAllow', normalizeList(input.referrers, checkReferrerRule), 'referrer');
    if (input.metadata !== undefined) set('metadata', input.metadata, 'metadata');
    if (input.status !== undefined) {
      if (!['active', 'disabled'].includes(input.status)) {
        throw usageError(`status can be set to active or disabled (use 'keys revoke' to revoke)`, 'status');
      }
      patch.status = input.status;
      changed.push('status');
    }
    if (input.user !== undefined) {
      const user = input.user === null ? null : await requireUser(tx, ctx, input.user);
      // As keys create: a key of one org spending another org's user limits is refused.
      if (user?.orgId && user.orgId !== key.orgId) throw usageError(`user '${user.username}' belongs to another org`, 'user');
      patch.userId = user === null ? null : user.id;
      changed.push('user');
    }
    const specs = input.limits ?? [];
    if (specs.length) changed.push('limits');
    if (changed.length === 0 && !input.creditsMicros) throw usageError('nothing to update: pass at least one option');
    const next = { ...key, ...patch };
    if (key.parentId) {
      const parent = await requireKey(tx, ctx, key.parentId);
      await checkAgainstParent(tx, ctx, parent, next, specs);
    }
    await tx.update(t.apiKeys).set(patch).where(eq(t.apiKeys.id, key.id));
    await applyLimits(tx, ctx, { type: 'key', id: key.id }, specs);
    if (input.creditsMicros) await addCredits(tx, ctx, { type: 'key', id: key.id }, input.creditsMicros, 'credits via keys update');
    await recordChange(tx, ctx, 'keys.update', { type: 'key', id: key.id }, { changed });
    return { key: next, limits: await listLimits(tx, ctx, { type: 'key', id: key.id }) };
  });
}

export async function revokeKey(ctx: ServiceContext, ref: string): Promise<KeyWithLimits> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const key = await requireKey(tx, ctx, ref);
    if (key.status === 'revoked') throw conflict(`key ${key.id} is already revoked`);
    const now = ctx.now();
    const patch = { status: 'revoked', revokedAt: now, updatedAt: now, prevKeyHash: null, prevKeyExpiresAt: null };
    await tx.update(t.apiKeys).set(patch).where(eq(t.apiKeys.id, key.id));
    await recordChange(tx, ctx, 'keys.revoke', { type: 'key', id: key.id });
    return { key: { ...key, ...patch }, limits: await listLimits(tx, ctx, { type: 'key', id: key.id }) };
  });
}

export async function deleteKey(ctx: ServiceContext, ref: string): Promise<ApiKey> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const key = await requireKey(tx, ctx, ref);
    const children = await tx.select({ id: t.apiKeys.id }).from(t.apiKeys).where(eq(t.apiKeys.parentId, key.id));
    if (children.length) {
      throw conflict(`key ${key.id} has ${children.length} child key(s) (${children.map((c) => c.id).join(', ')}): delete them first`);
    }
    // A child key's usage counts against its ancestors' limits through the key tree (DESIGN §3):
    // with the key gone, its requests would drop out of their quotas and budgets (at once in
    // gatewayctl, and in a restarted proxy's counters). Such a key is revoked, not deleted.
    if (key.parentId !== null) {
      // Raw events, or the daily rollups they leave behind once pruned.
      const used =
        (await tx.select({ id: t.usageEvents.requestId }).from(t.usageEvents).where(eq(t.usageEvents.keyId, key.id)).limit(1)).length > 0 ||
        (await tx.select({ day: t.usageDaily.day }).from(t.usageDaily).where(eq(t.usageDaily.keyId, key.id)).limit(1)).length > 0;
      if (used) {
        throw conflict(`key ${key.id} has recorded usage, which counts against the limits of its parent key ${key.parentId}: revoke it instead (gatewayctl keys revoke ${key.id})`);
      }
    }
    await tx.delete(t.limits).where(and(eq(t.limits.scopeType, 'key'), eq(t.limits.scopeId, key.id)));
    await tx.delete(t.apiKeys).where(eq(t.apiKeys.id, key.id));
    await recordChange(tx, ctx, 'keys.delete', { type: 'key', id: key.id });
    return key;
  });
}

/** New secret, same id, settings and history; the old secret may keep working for `graceMs`. */
export async function rotateKey(ctx: ServiceContext, ref: string, graceMs = 0): Promise<CreatedKey> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const key = await requireKey(tx, ctx, ref);
    if (key.status === 'revoked') throw conflict(`key ${key.id} is revoked and cannot be rotated`);
    const now = ctx.now();
    // One previous secret is kept: a second rotation with grace would replace the one still in
    // the grace the first promised (its holders cut off at once, not when they were told). A
    // rotation without grace ends every earlier secret now, as documented, and stays allowed.
    if (graceMs > 0 && key.prevKeyHash !== null && key.prevKeyExpiresAt !== null && key.prevKeyExpiresAt.getTime() > now.getTime()) {
      throw conflict(
        `key ${key.id}'s previous secret is still in its grace period until ${key.prevKeyExpiresAt.toISOString()}; rotating again with a grace would end that one now: wait until then, or rotate without --grace (and with --yes) to end every old secret at once`,
      );
    }
    const plaintext = formatKey(key.env as (typeof KEY_ENVS)[number], key.id);
    const patch = {
      keyHash: hashKey(plaintext),
      prevKeyHash: graceMs > 0 ? key.keyHash : null,
      prevKeyExpiresAt: graceMs > 0 ? new Date(now.getTime() + graceMs) : null,
      updatedAt: now,
    };
    await tx.update(t.apiKeys).set(patch).where(eq(t.apiKeys.id, key.id));
    await recordChange(tx, ctx, 'keys.rotate', { type: 'key', id: key.id }, { grace_ms: graceMs });
    return { key: { ...key, ...patch }, plaintext, limits: await listLimits(tx, ctx, { type: 'key', id: key.id }) };
  });
}

export type { Org };
