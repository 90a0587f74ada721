// Reads the whole configuration the proxy needs into one immutable Snapshot. Runs off the
// request path (at start and whenever config_version moves); the request path only reads maps.
import { desc, sql } from 'drizzle-orm';
import type { ApiKey, Org } from '../db/schema.js';
import type { Store } from '../db/store.js';
import { GatewayError } from '../errors.js';
import { buildBlockList } from '../ip-rules.js';
import { open } from '../secret-box.js';
import type { Metric, ScopeType, Window } from '../services/limits.js';
import type { Snapshot, SnapshotKey, SnapshotLimit, SnapshotOrg, SnapshotPrice, SnapshotUser } from './types.js';

const ms = (d: Date | null): number | null => (d ? d.getTime() : null);

export async function loadSnapshot(store: Store, masterKey: Buffer): Promise<Snapshot> {
  const { db, t } = store;
  // Read the version first: a change committed while we read is picked up by the next poll.
  const [versionRow] = await db.select({ version: t.configVersion.version }).from(t.configVersion).limit(1);
  const [orgRows, modelRules, userRows, keyRows, limitRows, priceRows, credits, resetRows] = await Promise.all([
    db.select().from(t.orgs),
    db.select().from(t.orgModels),
    db.select().from(t.users),
    db.select().from(t.apiKeys),
    db.select().from(t.limits),
    db.select().from(t.models),
    db
      .select({
        scopeType: t.creditLedger.scopeType,
        scopeId: t.creditLedger.scopeId,
        balance: sql<string | number>`sum(${t.creditLedger.amountMicros})`,
        granted: sql<string | number>`sum(case when ${t.creditLedger.kind} = 'charge' then 0 else ${t.creditLedger.amountMicros} end)`,
      })
      .from(t.creditLedger)
      .groupBy(t.creditLedger.scopeType, t.creditLedger.scopeId),
    db.select().from(t.limitResets).orderBy(desc(t.limitResets.resetAt)),
  ]);

  const rulesByOrg = new Map<string, string[]>();
  for (const r of modelRules) {
    const list = rulesByOrg.get(r.orgId) ?? [];
    list.push(r.pattern);
    rulesByOrg.set(r.orgId, list);
  }
  const orgs = new Map<string, SnapshotOrg>(orgRows.map((o) => [o.id, toOrg(o, rulesByOrg.get(o.id) ?? [], masterKey)]));
  const users = new Map<string, SnapshotUser>(
    userRows.map((u) => [u.id, { id: u.id, orgId: u.orgId, username: u.username, status: u.status === 'disabled' ? 'disabled' : 'active' }]),
  );
  const keys = buildKeys(keyRows);

  const limits = new Map<string, SnapshotLimit[]>();
  for (const l of limitRows) {
    const scope = `${l.scopeType}:${l.scopeId}`;
    const list = limits.get(scope) ?? [];
    list.push({
      id: l.id,
      scopeType: l.scopeType as ScopeType,
      scopeId: l.scopeId,
      model: l.model,
      metric: l.metric as Metric,
      window: l.window as Window,
      max: Number(l.max),
    });
    limits.set(scope, list);
  }

  const prices = new Map<string, SnapshotPrice>(
    priceRows.map((m) => [m.id, { prompt: Number(m.promptPrice), completion: Number(m.completionPrice), request: Number(m.requestPrice) }]),
  );
  const creditBalances = new Map<string, number>();
  const creditGranted = new Map<string, number>();
  for (const c of credits) {
    creditBalances.set(`${c.scopeType}:${c.scopeId}`, Number(c.balance));
    creditGranted.set(`${c.scopeType}:${c.scopeId}`, Number(c.granted));
  }
  const resets = new Map<string, number>();
  for (const r of resetRows) {
    const id = `${r.scopeType}:${r.scopeId}:${r.window}`;
    // Rows come newest first: the first one seen per scope and window is the latest.
    if (!resets.has(id)) resets.set(id, r.resetAt.getTime());
  }

  return Object.freeze({
    version: Number(versionRow?.version ?? 0),
    loadedAt: Date.now(),
    orgs,
    users,
    keys,
    limits,
    prices,
    creditBalances,
    creditGranted,
    resets,
  });
}

function toOrg(o: Org, models: string[], masterKey: Buffer): SnapshotOrg {
  let upstreamKey: string | null = null;
  if (o.upstreamKeyEnc) {
    try {
      upstreamKey = open(masterKey, o.upstreamKeyEnc);
    } catch (cause) {
      throw new GatewayError('internal_error', `cannot decrypt the upstream key of org ${o.id}: is the master key the one 'init' created?`, { cause });
    }
  }
  return {
    id: o.id,
    name: o.name,
    provider: o.provider as SnapshotOrg['provider'],
    baseUrl: o.baseUrl,
    upstreamKey,
    failureMode: o.failureMode === 'open' ? 'open' : 'closed',
    unknownModelPolicy: o.unknownModelPolicy === 'free' ? 'free' : 'refuse',
    defaultMaxTokens: o.defaultMaxTokens,
    httpReferer: o.httpReferer,
    appTitle: o.appTitle,
    models: Object.freeze([...models]),
  };
}

function buildKeys(rows: ApiKey[]): Map<string, SnapshotKey> {
  const parents = new Map(rows.map((k) => [k.id, k.parentId]));
  const out = new Map<string, SnapshotKey>();
  for (const k of rows) {
    out.set(k.id, {
      id: k.id,
      orgId: k.orgId,
      userId: k.userId,
      parentId: k.parentId,
      type: k.type as SnapshotKey['type'],
      env: k.env,
      status: k.status as SnapshotKey['status'],
      keyHash: k.keyHash,
      prevKeyHash: k.prevKeyHash,
      prevKeyExpiresAt: ms(k.prevKeyExpiresAt),
      expiresAt: ms(k.expiresAt),
      models: k.models?.length ? Object.freeze([...k.models]) : null,
      ipAllow: k.ipAllow.length ? buildBlockList(k.ipAllow) : null,
      referrerAllow: Object.freeze([...k.referrerAllow]),
      chain: Object.freeze(chainOf(k.id, parents)),
    });
  }
  return out;
}

/**
 * The key, then its ancestors. A parent missing from the store ends the chain with that id,
 * which authenticate() treats as invalid; a cycle (impossible through the services) is cut.
 */
function chainOf(id: string, parents: ReadonlyMap<string, string | null>): string[] {
  const chain = [id];
  let next = parents.get(id) ?? null;
  while (next !== null && !chain.includes(next)) {
    chain.push(next);
    next = parents.get(next) ?? null;
  }
  return chain;
}
