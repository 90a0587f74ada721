// Settlement (DESIGN §4–5): replace the reservation with what the request really used, hand
// one usage event to the sink, and count it. Cost is the upstream's usage.cost when it sends
// one, else the price table; tokens the upstream did not report are estimated.
import type { Amounts, CounterRef, CounterState, LimitBackend, Reservation } from '../shared/limits/types.js';
import { usdNumberToMicros, usdToMicros } from '../shared/money.js';
import type { AuthOk } from '../shared/snapshot/auth.js';
import { buildCounters } from '../shared/snapshot/counters.js';
import type { Snapshot } from '../shared/snapshot/types.js';
import { costMicros } from '../shared/snapshot/pricing.js';
import type { UsageSink } from '../shared/usage/types.js';
import type { AdmissionPlan } from './admission.js';
import type { ProxyMetrics } from './metrics.js';
import { MAX_REPORTED_COST_MICROS } from './relay-json.js';
import type { Charge } from './usage-view.js';

/** Usage as an upstream reported it; a count it left out, or sent as anything but a non-negative safe integer, is null. */
export interface ReportedUsage {
  promptTokens: number | null;
  completionTokens: number | null;
  /** usage.cost as its decimal text (exact), when the upstream priced the request. */
  costText?: string;
  /** usage.cost when it came as a JSON number and its text was not kept (costText wins when both are set). */
  cost?: number;
  /**
   * OpenRouter BYOK (usage.is_byok: true): usage.cost is only OpenRouter's fee, and what the
   * provider charged the org's own key is cost_details.upstream_inference_cost, in USD, added
   * here. null: BYOK without that figure, so the upstream's cost is not the request's cost (the
   * price table prices it).
   */
  byokCost?: number | null;
}

export interface Outcome {
  status: number;
  errorCode: string | null;
  reported: ReportedUsage | null;
  /** Whether anything reached the client (a partial stream is billed, a failure before is not). */
  delivered: boolean;
  /**
   * Estimated completion tokens of what was delivered: set when the upstream never reported its
   * completion tokens, or when the response was cut short (see `cutShort`).
   */
  completionEstimate: number;
  /**
   * The response ended before the upstream finished it (client gone, upstream failed, quota cut).
   * A usage seen by then may predate text delivered after it (upstreams that send usage early or
   * on every chunk): the completion is then at least the estimate of what was delivered.
   */
  cutShort: boolean;
  ttfbMs: number | null;
  /** performance.now() when the request arrived. */
  startedAt: number;
}

export interface BillingDeps {
  limits: LimitBackend;
  sink: UsageSink;
  metrics: ProxyMetrics;
  now: () => number;
  /** The current configuration: limits added since a request was admitted are charged too. */
  snapshot?: () => Snapshot;
}

export interface Bill {
  requestId: string;
  /**
   * When the request was admitted (epoch ms): its usage event is dated then, so the store, the
   * daily rollups and the limit counters (which count a request in the window it was reserved
   * in, memory and Redis alike) put a request that ends after midnight, or after a quota reset,
   * on the same side of it. Dated at settlement, such a request counted in the new window in the
   * store (and in a restarted proxy's seed) but in the old one live.
   */
  at: number;
  auth: AuthOk;
  plan: AdmissionPlan;
  model: string;
  provider: string;
  stream: boolean;
  reservations: Reservation[];
}

/** The upstream's cost in micro-dollars, or null when it sent none or an implausible one (negative, or over MAX_REPORTED_COST_MICROS). */
function costOf(r: ReportedUsage): number | null {
  if ((r.costText === undefined && r.cost === undefined) || r.byokCost === null) return null;
  try {
    let micros = r.costText !== undefined ? usdToMicros(r.costText) : usdNumberToMicros(r.cost!);
    if (r.byokCost !== undefined) micros += usdNumberToMicros(r.byokCost);
    return micros >= 0 && micros <= MAX_REPORTED_COST_MICROS ? micros : null;
  } catch {
    return null;
  }
}

/**
 * What a request is charged. The upstream's counts and cost when it reported them all; a count
 * it left out (or sent as garbage) is estimated — the prompt as admission guessed it, the
 * completion from the delivered text — and then the cost comes from the price table, as the
 * upstream's cost may not cover what is estimated. Such a charge says `estimated`.
 */
export function chargeFor(bill: Bill, o: Outcome): Charge {
  const r = o.reported;
  if (r) {
    const prompt = r.promptTokens ?? bill.plan.prompt.estimate;
    let completion = r.completionTokens ?? o.completionEstimate;
    // A stream cut short may carry a usage older than its last text; a count of 0 next to
    // delivered text is a broken report. Either way, at least what was delivered is billed.
    if ((o.cutShort || completion === 0) && o.completionEstimate > completion) completion = o.completionEstimate;
    const asReported = r.promptTokens === prompt && r.completionTokens === completion;
    const upstreamCost = asReported ? costOf(r) : null;
    return {
      promptTokens: prompt,
      completionTokens: completion,
      costMicros: upstreamCost ?? costMicros(bill.plan.price, prompt, completion),
      source: asReported ? 'upstream' : 'estimated',
    };
  }
  if (!o.delivered) return { promptTokens: 0, completionTokens: 0, costMicros: 0, source: 'none' };
  const prompt = bill.plan.prompt.estimate;
  return { promptTokens: prompt, completionTokens: o.completionEstimate, costMicros: costMicros(bill.plan.price, prompt, o.completionEstimate), source: 'estimated' };
}

export interface Settlement {
  charge: Charge;
  states: readonly CounterState[];
}

const ZERO: Amounts = Object.freeze({ requests: 0, tokens: 0, cost: 0 });
const NO_STATES: readonly CounterState[] = Object.freeze([]);

/**
 * Settles every reservation (the first takes the real amounts, extensions are released) and
 * records the event. With a backend that settles in this process the answer comes back at once,
 * not as a promise: a request ends without a turn of the microtask queue per await.
 */
export function settle(deps: BillingDeps, bill: Bill, o: Outcome): Settlement | Promise<Settlement> {
  const charge = chargeFor(bill, o);
  const now = deps.now();
  const actual: Amounts = {
    // Every request that reached settlement counts as one, billed or not: the store counts every
    // usage event as a request (the rollups, `limits get`, and the seed of a restarted proxy),
    // so counting only billed ones here let the live counter and the store disagree.
    requests: 1,
    tokens: charge.promptTokens + charge.completionTokens,
    cost: charge.costMicros,
  };
  const { limits } = deps;
  if (!limits.settleSync) return settleAsync(deps, bill, o, charge, actual, now);
  let states = NO_STATES;
  try {
    const rs = bill.reservations;
    for (let i = 1; i < rs.length; i++) limits.settleSync(rs[i]!, ZERO, now);
    if (rs.length > 0) states = limits.settleSync(rs[0]!, actual, now);
  } finally {
    chargeLate(deps, bill, actual, now);
    record(deps, bill, o, charge);
  }
  return { charge, states };
}

async function settleAsync(deps: BillingDeps, bill: Bill, o: Outcome, charge: Charge, actual: Amounts, now: number): Promise<Settlement> {
  let states = NO_STATES;
  const [first, ...extensions] = bill.reservations;
  try {
    for (const ext of extensions) await deps.limits.settle(ext, ZERO, now);
    if (first) states = await deps.limits.settle(first, actual, now);
  } finally {
    chargeLate(deps, bill, actual, now);
    record(deps, bill, o, charge);
  }
  return { charge, states };
}

/**
 * Limits added (or newly matching) since the request was admitted: the store counts its event
 * against them, as a restarted proxy's seed would, so they are charged here without a check (the
 * request is over). Credits granted since are not: the event's credit scopes are the ones it was
 * admitted under, and so are the ledger's charges. Runs in the same turn as record(), so a counter
 * being seeded at this moment gets the request either from its seed or from the charge, once.
 */
function lateCounters(deps: BillingDeps, bill: Bill): CounterRef[] | null {
  const current = deps.snapshot?.();
  if (current === undefined || current === bill.plan.snapshot) return null;
  // Built afresh with the auth the request was admitted under (its usage event's key, user and
  // ancestors), not through the cache, which holds the current auth's counters.
  const counters = buildCounters(current, bill.auth, bill.model, bill.at);
  if (counters.length === 0) return null;
  const late = counters.filter((c) => c.metric !== 'credits' && !bill.plan.counters.some((p) => p.id === c.id));
  return late.length > 0 ? late : null;
}

function chargeLate(deps: BillingDeps, bill: Bill, actual: Amounts, now: number): void {
  if (!deps.limits.charge) return;
  const late = lateCounters(deps, bill);
  if (!late) return;
  try {
    const done = deps.limits.charge(late, actual, bill.at, now);
    // Redis unreachable: the store still holds the event, so a later seed counts it.
    if (done instanceof Promise) done.catch(() => {});
  } catch {
    // As above: a charge that cannot be made is not the request's failure.
  }
}

const NO_ANCESTORS: readonly string[] = Object.freeze([]);

function record(deps: BillingDeps, bill: Bill, o: Outcome, charge: Charge): void {
  const { auth } = bill;
  deps.sink.add({
    requestId: bill.requestId,
    ts: bill.at,
    orgId: auth.org.id,
    userId: auth.key.userId,
    keyId: auth.key.id,
    ancestorKeyIds: auth.chainKeys.length === 0 ? NO_ANCESTORS : auth.chainKeys.map((k) => k.id),
    model: bill.model,
    provider: bill.provider,
    promptTokens: charge.promptTokens,
    completionTokens: charge.completionTokens,
    totalTokens: charge.promptTokens + charge.completionTokens,
    costMicros: charge.costMicros,
    status: o.status,
    errorCode: o.errorCode,
    latencyMs: Math.round(performance.now() - o.startedAt),
    ttfbMs: o.ttfbMs,
    stream: bill.stream,
    usageSource: charge.source,
    creditScopes: bill.plan.creditScopes,
  });
  deps.metrics.usageEvent(charge.source);
  deps.metrics.tokens(charge.promptTokens, charge.completionTokens);
  deps.metrics.cost(charge.costMicros);
}
