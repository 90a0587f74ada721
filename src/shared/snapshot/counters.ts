// Which counters a request touches: every limit of the key, of each ancestor key, of the key's
// user and of the org, plus a credit counter per scope that holds a ledger (DESIGN.md §4).
import type { CounterRef } from '../limits/types.js';
import { calendarStart, isRolling, utcDayStart } from '../limits/windows.js';
import { modelMatches } from '../model-patterns.js';
import type { ScopeType, Window } from '../services/limits.js';
import type { AuthOk } from './auth.js';
import type { Snapshot, SnapshotLimit } from './types.js';

export interface Scoped {
  type: ScopeType;
  id: string;
}

/** The scopes a request is accounted to, most specific first: key, ancestors, user, org. */
export function scopesOf(auth: AuthOk): Scoped[] {
  const out: Scoped[] = [{ type: 'key', id: auth.key.id }, ...auth.chainKeys.map((k) => ({ type: 'key' as const, id: k.id }))];
  if (auth.key.userId) out.push({ type: 'user', id: auth.key.userId });
  out.push({ type: 'org', id: auth.org.id });
  return out;
}

/** The latest quota reset of a scope's window ('all' resets every window). */
function resetAt(snapshot: Snapshot, scope: Scoped, window: Window): number {
  const prefix = `${scope.type}:${scope.id}:`;
  return Math.max(snapshot.resets.get(prefix + window) ?? 0, snapshot.resets.get(`${prefix}all`) ?? 0);
}

/** The `since` of a counter at `now`: calendar start or quota reset, whichever is later. */
export function sinceFor(snapshot: Snapshot, scope: Scoped, window: Window, now: number): number {
  const reset = resetAt(snapshot, scope, window);
  // A reset older than a rolling window no longer matters; dropping it keeps since at 0.
  if (isRolling(window) && reset <= now - 3_600_000) return calendarStart(window, now);
  return Math.max(calendarStart(window, now), reset);
}

/**
 * A limit's counter: its scope, model, metric and window, and the limit row's id, so a limit
 * removed and set again is a new counter (seeded from the store, which counted the requests in
 * between) rather than the old one resumed; a new max keeps the row and the counter.
 */
export const counterId = (scope: Scoped, model: string, metric: string, window: Window, limitId: string) =>
  `${scope.type}:${scope.id}:${model}:${metric}:${window}:${limitId}`;

export const creditCounterId = (scope: Scoped) => `credits:${scope.type}:${scope.id}`;

/**
 * The counters of (key, model) in one snapshot stay the same until a calendar day ends or a
 * recent quota reset stops mattering to a rolling window; building them cost a measurable
 * share of a request's CPU, so they are kept until then. A reload is a new snapshot and starts
 * afresh. Callers must treat the result as read-only. Looked up by key id, then model: a
 * composite key string built per request had to be flattened and hashed on every lookup.
 */
export interface CounterPlan {
  readonly since: number;
  readonly until: number;
  readonly refs: readonly CounterRef[];
  readonly creditScopes: readonly string[];
}

interface SnapshotCache {
  byKey: Map<string, Map<string, CounterPlan>>;
  size: number;
}

const cache = new WeakMap<Snapshot, SnapshotCache>();
const CACHE_MAX = 10_000;

/** The counters and credit scopes of a request of this key and model (cached, read-only). */
export function counterPlanFor(snapshot: Snapshot, auth: AuthOk, model: string, now: number): CounterPlan {
  let bySnapshot = cache.get(snapshot);
  if (!bySnapshot) {
    bySnapshot = { byKey: new Map(), size: 0 };
    cache.set(snapshot, bySnapshot);
  }
  let byModel = bySnapshot.byKey.get(auth.key.id);
  const hit = byModel?.get(model);
  if (hit && now >= hit.since && now < hit.until) return hit;
  const refs = buildCounters(snapshot, auth, model, now);
  const entry: CounterPlan = { since: utcDayStart(now), until: validUntil(snapshot, refs, now), refs, creditScopes: creditScopesOf(refs) };
  if (!hit && bySnapshot.size >= CACHE_MAX) {
    bySnapshot.byKey.clear();
    bySnapshot.size = 0;
    byModel = undefined;
  }
  if (!byModel) {
    byModel = new Map();
    bySnapshot.byKey.set(auth.key.id, byModel);
  }
  if (!hit) bySnapshot.size++;
  byModel.set(model, entry);
  return entry;
}

/** When counters built at `now` may change: the next UTC day, or an hour after a recent reset of a rolling window. */
function validUntil(snapshot: Snapshot, refs: readonly CounterRef[], now: number): number {
  let until = utcDayStart(now) + 86_400_000;
  for (const c of refs) {
    if (!isRolling(c.window)) continue;
    const reset = resetAt(snapshot, { type: c.scopeType, id: c.scopeId }, c.window);
    if (reset > now - 3_600_000) until = Math.min(until, reset + 3_600_000);
  }
  return until;
}

export function countersFor(snapshot: Snapshot, auth: AuthOk, model: string, now: number): readonly CounterRef[] {
  return counterPlanFor(snapshot, auth, model, now).refs;
}

/** The credit scopes (`type:id`) a request of this key and model is charged to. */
export function creditScopesFor(snapshot: Snapshot, auth: AuthOk, model: string, now: number): readonly string[] {
  return counterPlanFor(snapshot, auth, model, now).creditScopes;
}

/**
 * The counter of a limit at `now`. A day, month or total window restarted by a quota reset is a
 * counter of its own from the reset on (the reset's time ends its id): the proxy learns of a
 * reset at its next reload, after requests admitted since the reset (which the store counts in
 * the new window) were counted in the old one; as a new counter it is seeded from the store, and
 * requests still in flight are charged to it if admitted after the reset (see billing.ts).
 */
export function limitCounter(snapshot: Snapshot, l: SnapshotLimit, now: number): CounterRef {
  const scope = { type: l.scopeType, id: l.scopeId };
  const since = sinceFor(snapshot, scope, l.window, now);
  const id = counterId(scope, l.model, l.metric, l.window, l.id);
  return {
    id: !isRolling(l.window) && since > calendarStart(l.window, now) ? `${id}@${since}` : id,
    scopeType: scope.type,
    scopeId: scope.id,
    model: l.model,
    metric: l.metric,
    window: l.window,
    max: l.max,
    since,
  };
}

/**
 * The counters of a request, built afresh (countersFor caches them per key and model). Settlement
 * uses it with the auth a request was admitted under, which a reload may have changed (a key
 * moved to another user): the cache must hold the current auth's counters.
 */
export function buildCounters(snapshot: Snapshot, auth: AuthOk, model: string, now: number): CounterRef[] {
  const out: CounterRef[] = [];
  const scopes = scopesOf(auth);
  for (const scope of scopes) {
    for (const l of snapshot.limits.get(`${scope.type}:${scope.id}`) ?? []) {
      if (l.model !== '' && !modelMatches(l.model, model)) continue;
      out.push(limitCounter(snapshot, l, now));
    }
  }
  for (const scope of scopes) {
    const granted = snapshot.creditGranted.get(`${scope.type}:${scope.id}`);
    if (granted === undefined) continue;
    out.push({
      id: creditCounterId(scope),
      scopeType: scope.type,
      scopeId: scope.id,
      model: '',
      metric: 'credits',
      window: 'total',
      max: granted,
      since: 0,
    });
  }
  return out;
}

/** The credit scopes (`type:id`) a request is charged to: feeds UsageRecord.creditScopes. */
export function creditScopesOf(counters: readonly CounterRef[]): string[] {
  return counters.filter((c) => c.metric === 'credits').map((c) => `${c.scopeType}:${c.scopeId}`);
}
