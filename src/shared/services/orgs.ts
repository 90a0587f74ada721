import { and, asc, eq } from 'drizzle-orm';
import type { Org } from '../db/schema.js';
import { conflict, GatewayError, usageError } from '../errors.js';
import { newId } from '../ids.js';
import { seal, secretHint } from '../secret-box.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { requireOrg } from './resolve.js';

export const PROVIDERS = ['openrouter', 'openai', 'openai-compatible', 'mock'] as const;
export type Provider = (typeof PROVIDERS)[number];
export const FAILURE_MODES = ['closed', 'open'] as const;
export type FailureMode = (typeof FAILURE_MODES)[number];
export const UNKNOWN_MODEL_POLICIES = ['refuse', 'free'] as const;

export const DEFAULT_BASE_URLS: Record<Provider, string | null> = {
  openrouter: 'https://openrouter.ai/api/v1',
  openai: 'https://api.openai.com/v1',
  'openai-compatible': null,
  mock: null,
};

export interface OrgInput {
  name?: string;
  provider?: string;
  baseUrl?: string | null;
  /** The plaintext upstream key; sealed before it is stored. null clears it. */
  upstreamKey?: string | null;
  failureMode?: string;
  unknownModelPolicy?: string;
  defaultMaxTokens?: number | null;
  httpReferer?: string | null;
  appTitle?: string | null;
}

const ORG_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function checkOneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw usageError(`unknown ${what} '${value}': use one of ${allowed.join(', ')}`, what);
  }
  return value as T;
}

function checkBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(`invalid base URL '${url}'`, 'base_url');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw usageError(`base URL must be http(s): '${url}'`, 'base_url');
  }
  return url.replace(/\/+$/, '');
}

function checkName(name: string): string {
  if (!ORG_NAME_RE.test(name) || /^org_[0-9a-z]{12}$/.test(name)) {
    throw usageError(`invalid org name '${name}': use letters, digits, '.', '_' or '-' (max 63)`, 'name');
  }
  return name;
}

export async function createOrg(ctx: ServiceContext, name: string, input: OrgInput = {}): Promise<Org> {
  const provider = checkOneOf(input.provider ?? 'openrouter', PROVIDERS, 'provider');
  const baseUrl = input.baseUrl ? checkBaseUrl(input.baseUrl) : DEFAULT_BASE_URLS[provider];
  if (provider === 'openai-compatible' && !baseUrl) {
    throw usageError("provider 'openai-compatible' needs --base-url", 'base_url');
  }
  const now = ctx.now();
  const row: Org = {
    id: newId('org'),
    name: checkName(name),
    provider,
    baseUrl,
    upstreamKeyEnc: input.upstreamKey ? seal(ctx.masterKey(), input.upstreamKey) : null,
    upstreamKeyHint: input.upstreamKey ? secretHint(input.upstreamKey) : null,
    failureMode: checkOneOf(input.failureMode ?? 'closed', FAILURE_MODES, 'failure mode'),
    unknownModelPolicy: checkOneOf(input.unknownModelPolicy ?? 'refuse', UNKNOWN_MODEL_POLICIES, 'unknown model policy'),
    defaultMaxTokens: checkMaxTokens(input.defaultMaxTokens),
    httpReferer: input.httpReferer ?? null,
    appTitle: input.appTitle ?? null,
    metadata: {},
    createdAt: now,
    updatedAt: now,
  };
  return ctx.store.transaction(async (tx) => {
    const [existing] = await tx.select({ id: ctx.store.t.orgs.id }).from(ctx.store.t.orgs).where(eq(ctx.store.t.orgs.name, row.name));
    if (existing) throw conflict(`org '${row.name}' already exists`);
    await tx.insert(ctx.store.t.orgs).values(row);
    await recordChange(tx, ctx, 'orgs.create', { type: 'org', id: row.id }, { name: row.name, provider });
    return row;
  });
}

function checkMaxTokens(v: number | null | undefined): number | null {
  if (v === undefined || v === null) return null;
  if (!Number.isSafeInteger(v) || v <= 0) throw usageError('default max tokens must be a positive integer', 'default_max_tokens');
  return v;
}

export async function listOrgs(ctx: ServiceContext): Promise<Org[]> {
  const { db, t } = ctx.store;
  return db.select().from(t.orgs).orderBy(asc(t.orgs.name));
}

export async function getOrg(ctx: ServiceContext, ref: string): Promise<Org> {
  return requireOrg(ctx.store.db, ctx, ref);
}

export async function updateOrg(ctx: ServiceContext, ref: string, input: OrgInput): Promise<Org> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const org = await requireOrg(tx, ctx, ref);
    const patch: Partial<Org> = { updatedAt: ctx.now() };
    const changed: string[] = [];
    if (input.name !== undefined && input.name !== org.name) {
      patch.name = checkName(input.name);
      const [clash] = await tx.select({ id: t.orgs.id }).from(t.orgs).where(eq(t.orgs.name, input.name));
      if (clash) throw conflict(`org '${input.name}' already exists`);
      changed.push('name');
    }
    if (input.provider !== undefined) {
      const provider = checkOneOf(input.provider, PROVIDERS, 'provider');
      patch.provider = provider;
      if (input.baseUrl === undefined) patch.baseUrl = DEFAULT_BASE_URLS[provider] ?? org.baseUrl;
      changed.push('provider');
    }
    if (input.baseUrl !== undefined) {
      patch.baseUrl = input.baseUrl === null ? null : checkBaseUrl(input.baseUrl);
      changed.push('base_url');
    }
    if ((patch.provider ?? org.provider) === 'openai-compatible' && !(patch.baseUrl ?? org.baseUrl)) {
      throw usageError("provider 'openai-compatible' needs --base-url", 'base_url');
    }
    if (input.upstreamKey !== undefined) {
      patch.upstreamKeyEnc = input.upstreamKey === null ? null : seal(ctx.masterKey(), input.upstreamKey);
      patch.upstreamKeyHint = input.upstreamKey === null ? null : secretHint(input.upstreamKey);
      changed.push('upstream_key');
    }
    if (input.failureMode !== undefined) {
      patch.failureMode = checkOneOf(input.failureMode, FAILURE_MODES, 'failure mode');
      changed.push('failure_mode');
    }
    if (input.unknownModelPolicy !== undefined) {
      patch.unknownModelPolicy = checkOneOf(input.unknownModelPolicy, UNKNOWN_MODEL_POLICIES, 'unknown model policy');
      changed.push('unknown_model_policy');
    }
    if (input.defaultMaxTokens !== undefined) {
      patch.defaultMaxTokens = checkMaxTokens(input.defaultMaxTokens);
      changed.push('default_max_tokens');
    }
    if (input.httpReferer !== undefined) {
      patch.httpReferer = input.httpReferer;
      changed.push('http_referer');
    }
    if (input.appTitle !== undefined) {
      patch.appTitle = input.appTitle;
      changed.push('app_title');
    }
    if (changed.length === 0) throw usageError('nothing to update: pass at least one option');
    const [row] = await tx.update(t.orgs).set(patch).where(eq(t.orgs.id, org.id)).returning();
    await recordChange(tx, ctx, 'orgs.update', { type: 'org', id: org.id }, { changed });
    return row!;
  });
}

export async function deleteOrg(ctx: ServiceContext, ref: string): Promise<Org> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const org = await requireOrg(tx, ctx, ref);
    // Keys, model rules and the org's limits go with it; usage history and the ledger stay.
    await tx.delete(t.limits).where(eq(t.limits.scopeId, org.id));
    await tx.delete(t.orgs).where(eq(t.orgs.id, org.id));
    await recordChange(tx, ctx, 'orgs.delete', { type: 'org', id: org.id }, { name: org.name });
    return org;
  });
}

export async function listOrgModels(ctx: ServiceContext, ref: string): Promise<string[]> {
  const { db, t } = ctx.store;
  const org = await requireOrg(db, ctx, ref);
  const rows = await db.select().from(t.orgModels).where(eq(t.orgModels.orgId, org.id)).orderBy(asc(t.orgModels.pattern));
  return rows.map((r) => r.pattern);
}

const MODEL_PATTERN_RE = /^[A-Za-z0-9._:/@-]+\*?$|^\*$/;

export function checkModelPattern(p: string): string {
  if (!MODEL_PATTERN_RE.test(p)) {
    throw usageError(`invalid model pattern '${p}': a model id, optionally ending in '*' (e.g. openai/*)`, 'model');
  }
  return p;
}

export async function addOrgModels(ctx: ServiceContext, ref: string, patterns: string[]): Promise<string[]> {
  if (patterns.length === 0) throw usageError('give at least one model or pattern');
  patterns.forEach(checkModelPattern);
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const org = await requireOrg(tx, ctx, ref);
    const now = ctx.now();
    await tx
      .insert(t.orgModels)
      .values(patterns.map((pattern) => ({ orgId: org.id, pattern, createdAt: now })))
      .onConflictDoNothing();
    await recordChange(tx, ctx, 'orgs.models.add', { type: 'org', id: org.id }, { patterns });
    const rows = await tx.select().from(t.orgModels).where(eq(t.orgModels.orgId, org.id)).orderBy(asc(t.orgModels.pattern));
    return rows.map((r) => r.pattern);
  });
}

export async function removeOrgModels(ctx: ServiceContext, ref: string, patterns: string[]): Promise<string[]> {
  if (patterns.length === 0) throw usageError('give at least one model or pattern');
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const org = await requireOrg(tx, ctx, ref);
    const rows = await tx.select().from(t.orgModels).where(eq(t.orgModels.orgId, org.id));
    const have = new Set(rows.map((r) => r.pattern));
    const missing = patterns.filter((p) => !have.has(p));
    if (missing.length) throw new GatewayError('not_found', `org '${org.name}' has no model rule ${missing.map((m) => `'${m}'`).join(', ')}`);
    for (const pattern of patterns) {
      await tx.delete(t.orgModels).where(and(eq(t.orgModels.orgId, org.id), eq(t.orgModels.pattern, pattern)));
    }
    await recordChange(tx, ctx, 'orgs.models.remove', { type: 'org', id: org.id }, { patterns });
    return [...have].filter((p) => !patterns.includes(p)).sort();
  });
}
