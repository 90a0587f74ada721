// GET /v1/models (what this key may use) and GET /v1/usage (what this key has used and what
// remains of every limit, quota and credit). Both read memory only.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CounterState } from '../../shared/limits/types.js';
import { MOCK_MODELS } from '../../shared/mock-catalog.js';
import { type AuthOk, modelAllowed } from '../../shared/snapshot/auth.js';
import { countersFor } from '../../shared/snapshot/counters.js';
import type { Snapshot } from '../../shared/snapshot/types.js';
import type { ProxyDeps, RequestContext } from '../context.js';
import { publicError, sendPublicError, toPublicError } from '../errors.js';
import { sendJson } from '../relay-json.js';
import { counterViews } from '../usage-view.js';
import { resolvePrice } from './chat.js';

function authed(deps: ProxyDeps, req: IncomingMessage, res: ServerResponse): { auth: AuthOk; snapshot: Snapshot } | null {
  const snapshot = deps.snapshot();
  const a = deps.auth(req, snapshot, deps.now());
  if (a.ok) return { auth: a.auth, snapshot };
  deps.metrics.denial(a.error.body.error.code);
  sendPublicError(res, a.error);
  return null;
}

/**
 * Candidates: the price table, the mock catalog for mock orgs, and exact ids named by rules;
 * listed when a chat request with this key could use them (allowed, and priced: an org that
 * refuses unknown models refuses an unpriced id a rule names).
 */
export function modelsFor(snapshot: Snapshot, auth: AuthOk): string[] {
  const ids = new Set<string>(snapshot.prices.keys());
  if (auth.org.provider === 'mock') for (const m of MOCK_MODELS) ids.add(m.id);
  for (const rule of [...auth.org.models, ...auth.key.models ?? [], ...auth.chainKeys.flatMap((k) => k.models ?? [])]) {
    if (!rule.endsWith('*')) ids.add(rule);
  }
  return [...ids].filter((id) => modelAllowed(snapshot, auth, id) && resolvePrice(snapshot, auth.org, id) !== null).sort();
}

export function handleModels(deps: ProxyDeps, _ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void {
  const a = authed(deps, req, res);
  if (!a) return;
  const data = modelsFor(a.snapshot, a.auth).map((id) => ({ id, object: 'model', created: 0, owned_by: a.auth.org.provider }));
  sendJson(res, 200, JSON.stringify({ object: 'list', data }), { 'content-type': 'application/json' });
}

/** The path's model id, decoded (the SDK sends the slash of `vendor/model` as %2F, curl raw); null if it is not valid percent-encoding. */
function modelIdOf(path: string): string | null {
  try {
    return decodeURIComponent(path.slice('/v1/models/'.length));
  } catch {
    return null;
  }
}

/** GET /v1/models/{model}: the entry /v1/models lists for it, or 404 model_not_found (as OpenAI answers an unknown one). */
export function handleModel(deps: ProxyDeps, _ctx: RequestContext, req: IncomingMessage, res: ServerResponse, path: string): void {
  const a = authed(deps, req, res);
  if (!a) return;
  const id = modelIdOf(path);
  if (id && modelsFor(a.snapshot, a.auth).includes(id)) {
    sendJson(res, 200, JSON.stringify({ id, object: 'model', created: 0, owned_by: a.auth.org.provider }), { 'content-type': 'application/json' });
    return;
  }
  const shown = (id ?? path.slice('/v1/models/'.length)).slice(0, 200);
  sendPublicError(res, publicError('model_not_found', `The model '${shown}' does not exist or this key may not use it.`, { param: 'model' }));
}

export async function handleUsage(deps: ProxyDeps, ctx: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const a = authed(deps, req, res);
  if (!a) return;
  const { auth, snapshot } = a;
  const url = new URL(req.url ?? '/', 'http://gateway');
  const requestId = url.searchParams.get('request_id');
  const model = url.searchParams.get('model') ?? '';
  let request = null;
  if (requestId) {
    request = deps.recent.get(auth.key.id, requestId) ?? null;
    if (!request) return sendPublicError(res, publicError('not_found', `No recent request '${requestId}' of this key is known to this gateway instance.`, { param: 'request_id' }));
  }
  const now = deps.now();
  // Every counter of the key's scopes: model-specific limits are listed for every model.
  const counters = countersFor(snapshot, auth, model, now);
  const extra = model ? [] : modelSpecificCounters(snapshot, auth, now, counters.map((c) => c.id));
  let states: readonly CounterState[];
  try {
    states = await deps.limits.peek([...counters, ...extra], now);
  } catch (err) {
    return sendPublicError(res, toPublicError(err, ctx.log));
  }
  const body = {
    object: 'usage',
    key_id: auth.key.id,
    org_id: auth.org.id,
    ...counterViews(states),
    last_request: deps.recent.last(auth.key.id) ?? null,
    request,
  };
  sendJson(res, 200, JSON.stringify(body), { 'content-type': 'application/json' });
}

function modelSpecificCounters(snapshot: Snapshot, auth: AuthOk, now: number, seen: string[]) {
  const models = new Set<string>();
  const scopes = [`key:${auth.key.id}`, ...auth.chainKeys.map((k) => `key:${k.id}`), `org:${auth.org.id}`];
  if (auth.key.userId) scopes.push(`user:${auth.key.userId}`);
  for (const s of scopes) for (const l of snapshot.limits.get(s) ?? []) if (l.model) models.add(l.model);
  const out = [];
  const have = new Set(seen);
  for (const m of models) {
    for (const c of countersFor(snapshot, auth, m, now)) {
      if (!have.has(c.id)) {
        have.add(c.id);
        out.push(c);
      }
    }
  }
  return out;
}
