// The JSON the client sees about its own consumption: `gateway_usage` on a JSON completion, and
// GET /v1/usage (which also answers, by request id, for streamed requests).
import type { CounterRef, CounterState } from '../shared/limits/types.js';
import { formatMicros, microsToUsdNumber } from '../shared/money.js';
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

// gateway_usage as JSON text, built without JSON.stringify (which cost ~9 µs a request, most of
// the splice): the parts of a limit that do not change between requests (scope, metric, window,
// model, limit; a credit's grant) are serialized once per counter object, which is read-only. The result equals
// JSON.stringify(gatewayUsage(…)) byte for byte (a test checks it).
const num = (n: number) => (Number.isFinite(n) ? String(n) : 'null');
// Micro-dollars as the JSON number micros / 1e6 prints as: for whole micros under 1e15 that is
// the exact decimal (at most 15 significant digits round-trip through a double), written from
// the digits; String() of the quotient (a shortest-round-trip search) cost ~3 µs a request here.
const usd = (micros: number) => (Number.isInteger(micros) && Math.abs(micros) < 1e15 ? formatMicros(micros) : num(microsToUsdNumber(micros)));
const limitHeads = new WeakMap<CounterRef, string>();
const creditHeads = new WeakMap<CounterRef, string>();

function limitHead(c: CounterRef): string {
  let head = limitHeads.get(c);
  if (head === undefined) {
    const money = c.metric === 'cost';
    head =
      `{"scope":${JSON.stringify(`${c.scopeType}:${c.scopeId}`)},"metric":${JSON.stringify(c.metric)},"window":${JSON.stringify(c.window)},` +
      `"model":${JSON.stringify(c.model || null)},"limit":${money ? usd(c.max) : num(c.max)},"used":`;
    limitHeads.set(c, head);
  }
  return head;
}

function creditHead(c: CounterRef): string {
  let head = creditHeads.get(c);
  if (head === undefined) {
    head = `{"scope":${JSON.stringify(`${c.scopeType}:${c.scopeId}`)},"granted_usd":${usd(c.max)},"used_usd":`;
    creditHeads.set(c, head);
  }
  return head;
}

export function gatewayUsageJson(requestId: string, charge: Charge, states: readonly CounterState[]): string {
  let limits = '';
  let credits = '';
  for (const s of states) {
    const c = s.counter;
    if (c.metric === 'credits') {
      credits += `${credits ? ',' : ''}${creditHead(c)}${usd(s.used)},"remaining_usd":${usd(s.remaining)}}`;
      continue;
    }
    const money = c.metric === 'cost';
    const remaining = Math.max(0, s.remaining);
    limits +=
      `${limits ? ',' : ''}${limitHead(c)}${money ? usd(s.used) : num(s.used)},"remaining":${money ? usd(remaining) : num(remaining)},` +
      `"resets_at":${s.resetsAt === null ? 'null' : `"${iso(s.resetsAt)}"`}}`;
  }
  return (
    `{"request_id":${JSON.stringify(requestId)},"prompt_tokens":${num(charge.promptTokens)},"completion_tokens":${num(charge.completionTokens)},` +
    `"total_tokens":${num(charge.promptTokens + charge.completionTokens)},"cost_usd":${usd(charge.costMicros)},` +
    `"cost_micros":${num(charge.costMicros)},"usage_source":${JSON.stringify(charge.source)},"limits":[${limits}],"credits":[${credits}]}`
  );
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
 * The entries sit in a ring: adding one overwrites the oldest and drops its id, with no iterator
 * per request (taking the first key of a Map that has had many deletions walks the deleted
 * slots: the Map-only version cost ~5 µs a request).
 */
export class RecentCharges {
  private readonly ring: (RecentCharge | undefined)[];
  private next = 0;
  private readonly byId = new Map<string, RecentCharge>();
  private readonly lastByKey = new Map<string, RecentCharge>();

  constructor(private readonly capacity = 10_000) {
    this.ring = new Array(capacity).fill(undefined);
  }

  add(keyId: string, requestId: string, charge: Charge, states: readonly CounterState[]): void {
    const entry: RecentCharge = { keyId, requestId, charge, states };
    const old = this.ring[this.next];
    if (old !== undefined && this.byId.get(old.requestId) === old) this.byId.delete(old.requestId);
    this.ring[this.next] = entry;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    this.byId.set(requestId, entry);
    // A key's last charge outlives the ring. Delete-then-set keeps the map in recency order, so
    // past `capacity` distinct keys the one idle longest is dropped (that first-key lookup walks
    // deleted slots, but only then, never on an ordinary request).
    this.lastByKey.delete(keyId);
    this.lastByKey.set(keyId, entry);
    if (this.lastByKey.size > this.capacity) {
      const oldest = this.lastByKey.keys().next().value;
      if (oldest !== undefined) this.lastByKey.delete(oldest);
    }
  }

  get(keyId: string, requestId: string): GatewayUsage | undefined {
    const hit = this.byId.get(requestId);
    return hit && hit.keyId === keyId ? view(hit) : undefined;
  }

  last(keyId: string): GatewayUsage | undefined {
    const hit = this.lastByKey.get(keyId);
    return hit ? view(hit) : undefined;
  }
}
