// Admission: reserve the worst case on every counter the request touches, atomically, or
// refuse with nothing reserved (DESIGN §4). The worst case is the prompt's upper bound (see
// chat-request.ts) plus the completion cap, priced.
import type { Amounts, CounterRef, Denial, LimitBackend, Reservation } from '../shared/limits/types.js';
import { counterPlanFor } from '../shared/snapshot/counters.js';
import type { AuthOk } from '../shared/snapshot/auth.js';
import { tokenCostMicros } from '../shared/money.js';
import { costMicros } from '../shared/snapshot/pricing.js';
import type { Snapshot, SnapshotPrice } from '../shared/snapshot/types.js';
import { type ChatRequest, type PromptTokens, promptTokens, requestedMaxTokens } from './chat-request.js';

export interface AdmissionPlan {
  /** The configuration the plan was made under (settlement compares it with the current one). */
  snapshot: Snapshot;
  counters: readonly CounterRef[];
  /** The credit scopes (`type:id`) among the counters: the usage event's creditScopes. */
  creditScopes: readonly string[];
  price: SnapshotPrice;
  prompt: PromptTokens;
  /** Completion tokens reserved: the cap times n. */
  completionCap: number;
  /** Whether the client capped the completion (max_tokens): then overspend is zero. */
  capGiven: boolean;
  /** Tokens a cut stream may add per extension when no cap was given. */
  extensionTokens: number;
  amounts: Amounts;
}

export interface PlanInput {
  snapshot: Snapshot;
  auth: AuthOk;
  req: ChatRequest;
  price: SnapshotPrice;
  defaultMaxTokens: number;
  mediaPartTokens: number;
  now: number;
}

export function planAdmission(p: PlanInput): AdmissionPlan {
  const requested = requestedMaxTokens(p.req);
  const perChoice = requested ?? p.auth.org.defaultMaxTokens ?? p.defaultMaxTokens;
  const completionCap = perChoice * (p.req.n ?? 1);
  const prompt = promptTokens(p.req, p.mediaPartTokens);
  const { refs: counters, creditScopes } = counterPlanFor(p.snapshot, p.auth, p.req.model, p.now);
  return {
    snapshot: p.snapshot,
    counters,
    creditScopes,
    price: p.price,
    prompt,
    completionCap,
    capGiven: requested !== null,
    extensionTokens: completionCap,
    amounts: { requests: 1, tokens: prompt.bound + completionCap, cost: costMicros(p.price, prompt.bound, completionCap) },
  };
}

export type AdmissionResult = { ok: true; reservation: Reservation | null } | { ok: false; denial: Denial };

const NOTHING_RESERVED: AdmissionResult = Object.freeze({ ok: true, reservation: null });

/**
 * admit() without a promise, for a backend that holds the counters in this process and has
 * them all; null means the answer needs admit().
 */
export function admitSync(limits: LimitBackend, requestId: string, plan: AdmissionPlan, now: number): AdmissionResult | null {
  if (plan.counters.length === 0) return NOTHING_RESERVED;
  const r = limits.reserveSync?.(requestId, plan.counters, plan.amounts, now) ?? null;
  if (r === null) return null;
  return r.ok ? { ok: true, reservation: r } : { ok: false, denial: r };
}

/**
 * Reserves the plan's amounts. With no counter at all (no limit, no credits) nothing is
 * reserved and the backend is not called. A backend outage throws GatewayError('unavailable')
 * for fail-closed orgs; fail-open orgs are served by the backend's local fallback.
 */
export async function admit(
  limits: LimitBackend,
  requestId: string,
  plan: AdmissionPlan,
  failureMode: 'closed' | 'open',
  now: number,
): Promise<AdmissionResult> {
  if (plan.counters.length === 0) return { ok: true, reservation: null };
  const r = await limits.reserve(requestId, plan.counters, plan.amounts, now, { failureMode });
  return r.ok ? { ok: true, reservation: r } : { ok: false, denial: r };
}

/**
 * More room for a stream that outgrew its default cap: `tokens` completion tokens only (no
 * request, so no per-request price: the admission reserved that once), on `counters`: the
 * plan's, or those of the configuration current now if it changed since the admission (see
 * quotaWatch in routes/chat-stream.ts). None: granted, nothing reserved.
 */
export async function extend(
  limits: LimitBackend,
  requestId: string,
  plan: AdmissionPlan,
  failureMode: 'closed' | 'open',
  now: number,
  tokens = plan.extensionTokens,
  counters: readonly CounterRef[] = plan.counters,
): Promise<AdmissionResult> {
  if (counters.length === 0) return NOTHING_RESERVED;
  const amounts = { requests: 0, tokens, cost: tokenCostMicros(tokens, plan.price.completion) };
  const r = await limits.reserve(requestId, counters, amounts, now, { failureMode });
  return r.ok ? { ok: true, reservation: r } : { ok: false, denial: r };
}
