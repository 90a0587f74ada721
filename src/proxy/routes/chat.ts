// POST /v1/chat/completions: auth → body → policy → admission → upstream → relay → settle.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reservation } from '../../shared/limits/types.js';
import { modelAllowed } from '../../shared/snapshot/auth.js';
import { counterPlanFor } from '../../shared/snapshot/counters.js';
import { priceFor } from '../../shared/snapshot/pricing.js';
import type { Snapshot, SnapshotOrg, SnapshotPrice } from '../../shared/snapshot/types.js';
import { MOCK_MODELS } from '../../shared/mock-catalog.js';
import { perTokenUsdToMicrosPerM } from '../../shared/money.js';
import { type AdmissionPlan, admit, admitSync, planAdmission } from '../admission.js';
import type { AuthOk } from '../../shared/snapshot/auth.js';
import { type Bill, type Outcome, type Settlement, settle } from '../billing.js';
import { type ChatRequest, parseChatRequest } from '../chat-request.js';
import { ClientAbort } from '../client-abort.js';
import type { ProxyDeps, RequestContext } from '../context.js';
import { denialError, type PublicError, publicError, sendPublicError, toPublicError } from '../errors.js';
import { readBody } from '../http-io.js';
import { rateLimitHeaders } from '../rate-headers.js';
import { relayChatStream } from './chat-stream.js';
import { relayChatJson } from './chat-json.js';

export interface ChatCall {
  deps: ProxyDeps;
  ctx: RequestContext;
  req: IncomingMessage;
  res: ServerResponse;
  auth: AuthOk;
  parsed: ChatRequest;
  raw: Buffer;
  plan: AdmissionPlan;
  bill: Bill;
  abort: ClientAbort;
  clientGone: () => boolean;
  outcome: Outcome;
  settled: boolean;
  /** See RelayOptions.onGone. */
  onGone: (keepReading: () => boolean) => void;
}

/**
 * Settles the request exactly once, whichever path ends it; a settlement failure is logged,
 * never thrown. The answer is a promise only when the limit backend's settlement is one.
 */
export function finish(call: ChatCall): Settlement | null | Promise<Settlement | null> {
  if (call.settled) return null;
  call.settled = true;
  const failed = (err: unknown) => {
    call.ctx.log.error({ err }, 'settlement failed');
    return null;
  };
  try {
    const s = settle(call.deps, call.bill, call.outcome);
    return s instanceof Promise ? s.catch(failed) : s;
  } catch (err) {
    return failed(err);
  }
}

/** The price of a model for this org; the mock knows its own catalog. null = unknown and refused. */
export function resolvePrice(snapshot: Snapshot, org: SnapshotOrg, model: string): SnapshotPrice | null {
  const known = priceFor(snapshot, org, model);
  if (known && (snapshot.prices.has(model) || org.provider !== 'mock')) return known;
  const mock = org.provider === 'mock' ? MOCK_MODELS.find((m) => m.id === model) : undefined;
  if (mock) {
    // USD a token to micro-dollars a million tokens in one exact step (through whole micro-dollars
    // a token first, $0.15 a million became $0 and $0.60 became $1).
    return { prompt: perTokenUsdToMicrosPerM(mock.pricing.prompt), completion: perTokenUsdToMicrosPerM(mock.pricing.completion), request: 0 };
  }
  return known;
}

const MAX_FALLBACKS = 16;

/**
 * OpenRouter's `models` fallback list (protocols.md A.2): when the first model fails the next is
 * tried, and the one finally used is served and billed. So every model in it must pass the same
 * policy as `model` (allowed for this key, priced), and must count against the same limits (a
 * fallback with a per-model limit of its own would run outside it); the reservation is priced
 * at the dearest of them. Returns that price, or the refusal.
 */
function fallbackPolicy(snapshot: Snapshot, auth: AuthOk, model: string, models: unknown, price: SnapshotPrice, now: number): SnapshotPrice | PublicError {
  if (!Array.isArray(models) || models.length > MAX_FALLBACKS || !models.every((m) => typeof m === 'string' && m.length > 0 && m.length <= 256)) {
    return publicError('invalid_request', `'models' must be a list of at most ${MAX_FALLBACKS} model ids.`, { param: 'models' });
  }
  const counters = (m: string) =>
    counterPlanFor(snapshot, auth, m, now)
      .refs.map((r) => r.id)
      .sort()
      .join(',');
  const own = counters(model);
  let dearest = price;
  for (const m of models as string[]) {
    if (m === model) continue;
    if (!modelAllowed(snapshot, auth, m)) return publicError('model_not_allowed', `Key ${auth.key.id} may not use model '${m}' (in 'models').`, { param: 'models' });
    const p = resolvePrice(snapshot, auth.org, m);
    if (!p) return publicError('model_not_found', `The model '${m}' (in 'models') does not exist or has no price.`, { param: 'models' });
    if (counters(m) !== own) {
      return publicError('invalid_request', `The model '${m}' in 'models' has limits of its own that '${model}' does not share; send it as 'model' in a request of its own.`, { param: 'models' });
    }
    dearest = { prompt: Math.max(dearest.prompt, p.prompt), completion: Math.max(dearest.completion, p.completion), request: Math.max(dearest.request, p.request) };
  }
  return dearest;
}

function refuse(deps: ProxyDeps, res: ServerResponse, e: PublicError): void {
  deps.metrics.denial(e.body.error.code);
  sendPublicError(res, e);
}

export async function handleChat(deps: ProxyDeps, ctx: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let snapshot = deps.snapshot();
  let now = deps.now();
  const a = deps.auth(req, snapshot, now);
  if (!a.ok) {
    // Refused before its body was read: closing beats reading (node would drain any upload,
    // however large, to keep the connection).
    if (!req.complete) res.setHeader('connection', 'close');
    return refuse(deps, res, a.error);
  }
  let { auth } = a;
  let raw: Buffer;
  let parsed: ChatRequest;
  try {
    raw = await readBody(req, deps.config.maxBodyBytes, deps.config.clientRequestTimeoutMs);
    parsed = parseChatRequest(raw);
  } catch (err) {
    const e = toPublicError(err, ctx.log);
    if (e.status === 413 || e.status === 408) res.setHeader('connection', 'close');
    return refuse(deps, res, e);
  }
  // The configuration changed while the body arrived (a slow upload may take up to the request
  // timeout), or the key (or its rotation grace, or an ancestor) expired meanwhile: the request
  // is judged again, so a key revoked or expired meanwhile is refused, not served. Two
  // comparisons when nothing changed.
  const latest = deps.snapshot();
  if (latest !== snapshot || auth.validUntil <= deps.now()) {
    snapshot = latest;
    now = deps.now();
    const again = deps.auth(req, snapshot, now);
    if (!again.ok) return refuse(deps, res, again.error);
    auth = again.auth;
  }
  if (!modelAllowed(snapshot, auth, parsed.model)) {
    return refuse(deps, res, publicError('model_not_allowed', `Key ${auth.key.id} may not use model '${parsed.model}'.`, { param: 'model' }));
  }
  let price = resolvePrice(snapshot, auth.org, parsed.model);
  if (!price) return refuse(deps, res, publicError('model_not_found', `The model '${parsed.model}' does not exist or has no price.`, { param: 'model' }));
  const fallbacks = (parsed as { models?: unknown }).models;
  if (fallbacks != null) {
    const f = fallbackPolicy(snapshot, auth, parsed.model, fallbacks, price, now);
    if ('status' in f) return refuse(deps, res, f);
    price = f;
  }
  if (!deps.accepting()) {
    return refuse(deps, res, publicError('unavailable', 'The gateway cannot record usage right now. Retry shortly.', { headers: { 'retry-after': '1' } }));
  }
  if (auth.org.failureMode === 'closed' && !deps.storeHealthy()) {
    return refuse(deps, res, publicError('unavailable', 'The gateway cannot reach its store; this organization fails closed. Retry shortly.', { headers: { 'retry-after': '1' } }));
  }
  const plan = planAdmission({ snapshot, auth, req: parsed, price, defaultMaxTokens: deps.config.defaultMaxTokens, mediaPartTokens: deps.config.mediaPartTokens, now });
  let adm: Awaited<ReturnType<typeof admit>>;
  try {
    adm = admitSync(deps.limits, ctx.id, plan, now) ?? (await admit(deps.limits, ctx.id, plan, auth.org.failureMode, now));
  } catch (err) {
    return refuse(deps, res, toPublicError(err, ctx.log));
  }
  if (!adm.ok) return refuse(deps, res, denialError(adm.denial, now));
  await serve(deps, ctx, req, res, auth, parsed, raw, plan, adm.reservation, now);
}

async function serve(
  deps: ProxyDeps,
  ctx: RequestContext,
  req: IncomingMessage,
  res: ServerResponse,
  auth: AuthOk,
  parsed: ChatRequest,
  raw: Buffer,
  plan: AdmissionPlan,
  reservation: Reservation | null,
  admittedAt: number,
): Promise<void> {
  const stream = parsed.stream === true;
  const abort = new ClientAbort();
  let gone = false;
  // Set by a stream's relay: whether it reads on for the upstream's usage after a hang-up.
  let keepReading: (() => boolean) | null = null;
  let abortLater: NodeJS.Timeout | null = null;
  ctx.onClose = () => {
    if (!res.writableFinished) {
      gone = true;
      const wait = deps.config.disconnectUsageWaitMs;
      if (wait > 0 && keepReading?.()) {
        abortLater = setTimeout(() => abort.abort(), wait);
        abortLater.unref();
      } else abort.abort();
    }
  };
  // The client may have left while the body was read or the request admitted.
  if (ctx.closed) ctx.onClose();
  const bill: Bill = {
    requestId: ctx.id,
    at: admittedAt,
    auth,
    plan,
    model: parsed.model,
    provider: auth.org.provider,
    stream,
    reservations: reservation ? [reservation] : [],
  };
  const outcome: Outcome = { status: 200, errorCode: null, reported: null, delivered: false, completionEstimate: 0, cutShort: false, ttfbMs: null, startedAt: ctx.startedAt };
  const call: ChatCall = {
    deps, ctx, req, res, auth, parsed, raw, plan, bill, abort, clientGone: () => gone, outcome, settled: false,
    onGone: (fn) => {
      keepReading = fn;
    },
  };
  try {
    if (stream) await relayChatStream(call, rateLimitHeaders(reservation?.states ?? [], deps.now()));
    else await relayChatJson(call);
  } catch (err) {
    if (gone) {
      // The client left and its upstream call was aborted: expected, not an error of ours.
      ctx.log.debug({ err }, 'client gone before the answer');
      outcome.status = 499;
      outcome.errorCode = 'aborted';
    } else {
      const e = toPublicError(err, ctx.log);
      outcome.status = e.status;
      outcome.errorCode = e.body.error.code;
      sendPublicError(res, e);
    }
    await finish(call);
  } finally {
    // The stream is over: an abort still waiting for a usage has nothing left to stop.
    if (abortLater !== null) clearTimeout(abortLater);
  }
}
