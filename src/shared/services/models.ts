// The model catalog and its prices (integer micro-dollars per million tokens; per-request
// prices in micro-dollars). `refresh` pulls each org's upstream catalog; a price set by hand
// (price_overridden) survives every refresh. Models without a price stay unpriced: the org's
// unknown_model_policy (refuse | free) decides, never a made-up default.
import { asc, eq, inArray, sql } from 'drizzle-orm';
import type { Model, Org } from '../db/schema.js';
import { GatewayError, usageError } from '../errors.js';
import { anyMatches } from '../model-patterns.js';
import { open } from '../secret-box.js';
import { recordChange } from './audit.js';
import type { ServiceContext } from './context.js';
import { type CatalogEntry, fetchCatalog, type FetchOptions } from './model-catalog.js';
import { requireOrg } from './resolve.js';

export interface RefreshProgress {
  org: string;
  stage: 'fetching' | 'saving' | 'done';
  /** orgs finished so far, of `total` */
  done: number;
  total: number;
  models?: number;
}

export interface OrgRefresh {
  org: Org;
  fetched: number;
  added: number;
  updated: number;
  /** models whose hand-set price was kept */
  keptOverrides: number;
  /** models the upstream lists without a usable price (not stored) */
  unpriced: string[];
}

async function saveCatalog(ctx: ServiceContext, org: Org, entries: CatalogEntry[]): Promise<OrgRefresh> {
  const priced = entries.filter((e) => e.prompt !== null && e.completion !== null);
  const unpriced = entries.filter((e) => e.prompt === null || e.completion === null).map((e) => e.id);
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const ids = priced.map((e) => e.id);
    const existing = new Map<string, Model>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const m of await tx.select().from(t.models).where(inArray(t.models.id, ids.slice(i, i + 500)))) existing.set(m.id, m);
    }
    const now = ctx.now();
    let keptOverrides = 0;
    for (let i = 0; i < priced.length; i += 100) {
      const rows = priced.slice(i, i + 100).map((e) => ({
        id: e.id,
        name: e.name,
        contextLength: e.contextLength,
        promptPrice: e.prompt!,
        completionPrice: e.completion!,
        requestPrice: e.request,
        priceOverridden: false,
        source: org.provider,
        updatedAt: now,
      }));
      keptOverrides += rows.filter((r) => existing.get(r.id)?.priceOverridden).length;
      // A hand-set price (price_overridden) wins over the upstream's.
      const keep = (col: string) => sql.raw(`case when models.price_overridden then models.${col} else excluded.${col} end`);
      await tx
        .insert(t.models)
        .values(rows)
        .onConflictDoUpdate({
          target: t.models.id,
          set: {
            name: sql.raw('excluded.name'),
            contextLength: sql.raw('excluded.context_length'),
            promptPrice: keep('prompt_price'),
            completionPrice: keep('completion_price'),
            requestPrice: keep('request_price'),
            source: sql.raw('excluded.source'),
            updatedAt: now,
          },
        });
    }
    const added = priced.filter((e) => !existing.has(e.id)).length;
    await recordChange(tx, ctx, 'models.refresh', { type: 'org', id: org.id }, { fetched: entries.length, added, unpriced: unpriced.length });
    return { org, fetched: entries.length, added, updated: priced.length - added, keptOverrides, unpriced };
  });
}

/** Refreshes the catalog from one org's upstream, or from every org's. */
export async function refreshModels(
  ctx: ServiceContext,
  q: { org?: string } & FetchOptions = {},
  onProgress: (p: RefreshProgress) => void = () => {},
): Promise<OrgRefresh[]> {
  const { db, t } = ctx.store;
  const orgs = q.org ? [await requireOrg(db, ctx, q.org)] : await db.select().from(t.orgs).orderBy(asc(t.orgs.name));
  if (orgs.length === 0) throw usageError('there are no orgs yet: create one with gatewayctl orgs create');
  const out: OrgRefresh[] = [];
  for (const [i, org] of orgs.entries()) {
    onProgress({ org: org.name, stage: 'fetching', done: i, total: orgs.length });
    const upstreamKey = org.upstreamKeyEnc ? open(ctx.masterKey(), org.upstreamKeyEnc) : null;
    const entries = await fetchCatalog(org, upstreamKey, q);
    onProgress({ org: org.name, stage: 'saving', done: i, total: orgs.length, models: entries.length });
    out.push(await saveCatalog(ctx, org, entries));
    onProgress({ org: org.name, stage: 'done', done: i + 1, total: orgs.length, models: entries.length });
  }
  return out;
}

export interface OrgModelPolicy {
  org: Org;
  /** model rules; empty = every model */
  patterns: string[];
}

export interface ModelListing {
  models: { model: Model; orgs: string[] }[];
  orgs: OrgModelPolicy[];
}

/** The catalog with, for each model, the orgs (names) that allow it. */
export async function listModels(ctx: ServiceContext, q: { org?: string } = {}): Promise<ModelListing> {
  const { db, t } = ctx.store;
  const orgRows = q.org ? [await requireOrg(db, ctx, q.org)] : await db.select().from(t.orgs).orderBy(asc(t.orgs.name));
  const rules = await db.select().from(t.orgModels);
  const orgs = orgRows.map((org) => ({ org, patterns: rules.filter((r) => r.orgId === org.id).map((r) => r.pattern).sort() }));
  const models = await db.select().from(t.models).orderBy(asc(t.models.id));
  const listed = models.map((model) => ({
    model,
    orgs: orgs.filter((o) => o.patterns.length === 0 || anyMatches(o.patterns, model.id)).map((o) => o.org.name),
  }));
  return { models: q.org ? listed.filter((m) => m.orgs.length > 0) : listed, orgs };
}

export interface PriceInput {
  /** micro-dollars per million tokens */
  prompt: number;
  completion: number;
  /** micro-dollars per request; undefined keeps the current one */
  request?: number;
}

/** Sets a model's price by hand; refreshes keep it until the next `price set`. */
export async function setModelPrice(ctx: ServiceContext, modelId: string, price: PriceInput): Promise<Model> {
  for (const [k, v] of Object.entries(price)) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw usageError(`the ${k} price must be a non-negative USD amount`, k);
  }
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const [model] = await tx.select().from(t.models).where(eq(t.models.id, modelId));
    if (!model) throw new GatewayError('not_found', `model '${modelId}' is not in the catalog: run 'gatewayctl models refresh' first`);
    const patch = {
      promptPrice: price.prompt,
      completionPrice: price.completion,
      requestPrice: price.request ?? model.requestPrice,
      priceOverridden: true,
      updatedAt: ctx.now(),
    };
    await tx.update(t.models).set(patch).where(eq(t.models.id, model.id));
    await recordChange(tx, ctx, 'models.price.set', { type: 'model', id: model.id }, { prompt: price.prompt, completion: price.completion, request: patch.requestPrice });
    return { ...model, ...patch };
  });
}

/**
 * Drops a hand-set price: the model keeps its current price until the next refresh, which
 * takes the upstream's again. A model without a hand-set price is a conflict (nothing to clear).
 */
export async function clearModelPrice(ctx: ServiceContext, modelId: string): Promise<Model> {
  return ctx.store.transaction(async (tx) => {
    const { t } = ctx.store;
    const [model] = await tx.select().from(t.models).where(eq(t.models.id, modelId));
    if (!model) throw new GatewayError('not_found', `model '${modelId}' is not in the catalog`);
    if (!model.priceOverridden) throw new GatewayError('conflict', `model '${modelId}' has no price set by hand`);
    const patch = { priceOverridden: false, updatedAt: ctx.now() };
    await tx.update(t.models).set(patch).where(eq(t.models.id, model.id));
    await recordChange(tx, ctx, 'models.price.clear', { type: 'model', id: model.id }, {});
    return { ...model, ...patch };
  });
}
