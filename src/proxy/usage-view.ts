// The JSON the client sees about its own consumption: `gateway_usage` on a JSON completion, and
// GET /v1/usage (which also answers, by request id, for streamed requests).
import type { CounterState } from '../shared/limits/types.js';
import { microsToUsdNumber } from '../shared/money.js';
import type { UsageSource } from '../shared/usage/types.js';

export interface LimitView {
  scope: string;
  metric: string;
  window: string;
  model: string | null;
  limit: number;
  used: number;
  remaining: number;
  resets_at: string | null;
}

export interface CreditView {
  scope: string;
  granted_usd: number;
  used_usd: number;
  remaining_usd: number;
}

export interface Charge {
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
  source: UsageSource;
}

export interface GatewayUsage {
  request_id: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: number;
  cost_micros: number;
  usage_source: UsageSource;
  limits: LimitView[];
  credits: CreditView[];
}

// Reset instants repeat across requests (a day or month end, a bucket edge): their ISO text is
// kept for the last few rather than built per limit per request.
const isoCache = new Map<number, string>();
function iso(ms: number): string {
  let text = isoCache.get(ms);
  if (text === undefined) {
    if (isoCache.size >= 256) isoCache.clear();
    text = new Date(ms).toISOString();
    isoCache.set(ms, text);
  }
  return text;
}

export function counterViews(states: readonly CounterState[]): { limits: LimitView[]; credits: CreditView[] } {
  const limits: LimitView[] = [];
  const credits: CreditView[] = [];
  for (const s of states) {
    const c = s.counter;
    const scope = `${c.scopeType}:${c.scopeId}`;
    if (c.metric === 'credits') {
      credits.push({ scope, granted_usd: microsToUsdNumber(c.max), used_usd: microsToUsdNumber(s.used), remaining_usd: microsToUsdNumber(s.remaining) });
      continue;
    }
    const money = c.metric === 'cost' ? microsToUsdNumber : (n: number) => n;
    limits.push({
      scope,
      metric: c.metric,
      window: c.window,
      model: c.model || null,
      limit: money(c.max),
      used: money(s.used),
      remaining: money(Math.max(0, s.remaining)),
      resets_at: s.resetsAt === null ? null : iso(s.resetsAt),
    });
  }
  return { limits, credits };
}

export function gatewayUsage(requestId: string, charge: Charge, states: readonly CounterState[]): GatewayUsage {
  const { limits, credits } = counterViews(states); // named, not spread: spreading cost ~5 µs a request
  return {
    request_id: requestId,
    prompt_tokens: charge.promptTokens,
    completion_tokens: charge.completionTokens,
    total_tokens: charge.promptTokens + charge.completionTokens,
    cost_usd: microsToUsdNumber(charge.costMicros),
    cost_micros: charge.costMicros,
    usage_source: charge.source,
    limits,
    credits,
  };
}

interface RecentCharge {
  keyId: string;
  requestId: string;
  charge: Charge;
  /** The counters as settled (snapshots, never updated later). */
  states: readonly CounterState[];
}

const view = (r: RecentCharge): GatewayUsage => gatewayUsage(r.requestId, r.charge, r.states);

/**
 * Recent charges by request id, bounded, so GET /v1/usage can answer for streamed requests.
 * What is kept is the charge and the settled counter states; the JSON view is built only when
 * asked for (building it on every streamed request cost CPU and old-generation garbage).
 */
export class RecentCharges {
  private readonly map = new Map<string, RecentCharge>();
  private readonly lastByKey = new Map<string, RecentCharge>();

  constructor(private readonly capacity = 10_000) {}

  add(keyId: string, requestId: string, charge: Charge, states: readonly CounterState[]): void {
    const entry = { keyId, requestId, charge, states };
    this.map.set(requestId, entry);
    this.lastByKey.delete(keyId);
    this.lastByKey.set(keyId, entry);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    if (this.lastByKey.size > this.capacity) {
      const oldest = this.lastByKey.keys().next().value;
      if (oldest !== undefined) this.lastByKey.delete(oldest);
    }
  }

  get(keyId: string, requestId: string): GatewayUsage | undefined {
    const hit = this.map.get(requestId);
    return hit && hit.keyId === keyId ? view(hit) : undefined;
  }

  last(keyId: string): GatewayUsage | undefined {
    const hit = this.lastByKey.get(keyId);
    return hit ? view(hit) : undefined;
  }
}
