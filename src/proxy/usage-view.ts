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
// model, limit; a credit's grant) are serialized once per counter object, which is read-only, and
// so is a limit's end from its reset instant on. The result equals JSON.stringify(gatewayUsage(…))
// byte for byte (a test checks it). Few, long pieces: every + of a long string is a node of a
// string tree that V8 walks again to flatten the text before it is measured and written (~250
// instructions a piece, flattening included; the text had ~50 of them).
const num = (n: number) => (Number.isFinite(n) ? String(n) : 'null');
// Micro-dollars as the JSON number micros / 1e6 prints as: for whole micros under 1e15 that is
// the exact decimal (at most 15 significant digits round-trip through a double), written from
// the digits; String() of the quotient (a shortest-round-trip search) cost ~3 µs a request here.
const usd = (micros: number) => (Number.isInteger(micros) && Math.abs(micros) < 1e15 ? formatMicros(micros) : num(microsToUsdNumber(micros)));

/** A limit's text up to its used amount, first in the list and after another. */
interface Head {
  first: string;
  next: string;
  /** Whether the text is ASCII only (its UTF-8 size is then its length). */
  ascii: boolean;
}
const limitHeads = new WeakMap<CounterRef, Head>();
const creditHeads = new WeakMap<CounterRef, Head>();
const headOf = (text: string): Head => ({ first: text, next: `,${text}`, ascii: isAscii(text) });

function limitHead(c: CounterRef): Head {
  let head = limitHeads.get(c);
  if (head === undefined) {
    const money = c.metric === 'cost';
    head = headOf(
      `{"scope":${JSON.stringify(`${c.scopeType}:${c.scopeId}`)},"metric":${JSON.stringify(c.metric)},"window":${JSON.stringify(c.window)},` +
        `"model":${JSON.stringify(c.model || null)},"limit":${money ? usd(c.max) : num(c.max)},"used":`,
    );
    limitHeads.set(c, head);
  }
  return head;
}

function creditHead(c: CounterRef): Head {
  let head = creditHeads.get(c);
  if (head === undefined) {
    head = headOf(`{"scope":${JSON.stringify(`${c.scopeType}:${c.scopeId}`)},"granted_usd":${usd(c.max)},"used_usd":`);
    creditHeads.set(c, head);
  }
  return head;
}

// A limit's text from "resets_at" on, per reset instant (they repeat across requests, as above).
const NO_RESET_END = ',"resets_at":null}';
const limitEnds = new Map<number, string>();
function limitEnd(resetsAt: number | null): string {
  if (resetsAt === null) return NO_RESET_END;
  let text = limitEnds.get(resetsAt);
  if (text === undefined) {
    if (limitEnds.size >= 256) limitEnds.clear();
    text = `,"resets_at":"${iso(resetsAt)}"}`;
    limitEnds.set(resetsAt, text);
  }
  return text;
}

// Request ids (req_ and hex digits) and usage sources need no escaping; JSON.stringify of each
// cost more than the rest of the header line, and so did a regex test (~0.7 µs a request).
function plainText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // [A-Za-z0-9_.:-]
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x3a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2e || c === 0x2d)) return false;
  }
  return true;
}
const jsonString = (s: string) => (plainText(s) ? `"${s}"` : JSON.stringify(s));

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

// Whether the text the last gatewayUsageJson call returned is ASCII only (see usageJsonBytes).
let lastAscii = true;

/**
 * The UTF-8 size of the text gatewayUsageJson just returned (call it before the next one): its
 * length when it is ASCII only, as it is unless a scope or model has other characters, without
 * Buffer.byteLength walking (and flattening) a text built of many pieces (~1.5 µs a request).
 */
export function usageJsonBytes(text: string): number {
  return lastAscii ? text.length : Buffer.byteLength(text);
}

export function gatewayUsageJson(requestId: string, charge: Charge, states: readonly CounterState[]): string {
  const id = plainText(requestId);
  let ascii = id;
  let text =
    `{"request_id":${id ? `"${requestId}"` : JSON.stringify(requestId)},"prompt_tokens":${num(charge.promptTokens)},"completion_tokens":${num(charge.completionTokens)},` +
    `"total_tokens":${num(charge.promptTokens + charge.completionTokens)},"cost_usd":${usd(charge.costMicros)},` +
    `"cost_micros":${num(charge.costMicros)},"usage_source":${jsonString(charge.source)},"limits":[`;
  let first = true;
  let credits = false;
  for (const s of states) {
    const c = s.counter;
    if (c.metric === 'credits') {
      credits = true;
      continue;
    }
    const head = limitHead(c);
    ascii &&= head.ascii;
    const money = c.metric === 'cost';
    const remaining = Math.max(0, s.remaining);
    text += `${first ? head.first : head.next}${money ? usd(s.used) : num(s.used)},"remaining":${money ? usd(remaining) : num(remaining)}${limitEnd(s.resetsAt)}`;
    first = false;
  }
  text += '],"credits":[';
  first = true;
  if (credits) {
    for (const s of states) {
      const c = s.counter;
      if (c.metric !== 'credits') continue;
      const head = creditHead(c);
      ascii &&= head.ascii;
      text += `${first ? head.first : head.next}${usd(s.used)},"remaining_usd":${usd(s.remaining)}}`;
      first = false;
    }
  }
  lastAscii = ascii;
  return `${text}]}`;
}

const SOURCES: readonly UsageSource[] = ['upstream', 'estimated', 'none'];
/** States kept inline per ring slot; a request touching more counters keeps its array aside. */
const INLINE_STATES = 8;
const OVERFLOW = 255;

/** A key's last charge: one record per key, overwritten in place. */
interface LastCharge {
  requestId: string;
  charge: Charge;
  states: CounterState[];
}

/**
 * Recent charges by request id, bounded, so GET /v1/usage can answer for streamed requests.
 * What is kept is the charge and the settled counter states; the JSON view is built only when
 * asked for. Storage is struct-of-arrays, written in place: a slot per request in a ring (ids,
 * numbers in typed arrays, counter refs, which are the snapshot's long-lived objects), and one
 * record per key for its last charge. An object per request kept here lived past two young-
 * generation collections, so every request's entry was copied twice and promoted to the old
 * generation, where it became garbage for the major collector: ~8 µs of GC a request at 4,000
 * requests/s (measured with --trace-gc-nvp: 850 → 350 bytes promoted a request).
 * A lookup by request id scans the ring from the newest slot (10,000 string compares, ~20 µs,
 * on an endpoint a client calls once per stream), rather than keeping a Map per request.
 */
/** Hex digits of a request id's counter (see newRequestId in server.ts). */
const SEQ_DIGITS = 16;

/**
 * The counter at the end of a request id with `prefix` (lower-case hex, 16 digits, below 2^53,
 * so it prints back to exactly this text), or -1 for any other id.
 */
function seqOf(prefix: string, id: string): number {
  if (id.length !== prefix.length + SEQ_DIGITS || !id.startsWith(prefix)) return -1;
  let v = 0;
  for (let i = prefix.length; i < id.length; i++) {
    const c = id.charCodeAt(i);
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v <= Number.MAX_SAFE_INTEGER ? v : -1;
}

export class RecentCharges {
  private next = 0;
  private readonly keyIds: (string | undefined)[];
  /**
   * Request ids: those of this process (one prefix, then a counter) as their counter, in
   * `seqs`; any other id as its text, in `requestIds` (undefined where `seqs` holds it). A string
   * per request kept for 10,000 requests was promoted to the old generation and died there,
   * ~56 bytes of every request for the major collector.
   */
  private idPrefix: string | null = null;
  private readonly seqs: Float64Array;
  private readonly requestIds: (string | undefined)[];
  /** Per slot: prompt tokens, completion tokens, cost micros. */
  private readonly amounts: Float64Array;
  private readonly sources: Uint8Array;
  /** Per slot: how many states are inline, or OVERFLOW when they are in `overflow`. */
  private readonly counts: Uint8Array;
  private readonly counters: (CounterRef | undefined)[];
  /** Per inline state: used, remaining, resetsAt (NaN for null). */
  private readonly stateNums: Float64Array;
  private readonly overflow = new Map<number, readonly CounterState[]>();
  private readonly lastByKey = new Map<string, LastCharge>();
  /** The key set last in lastByKey (its newest entry). */
  private newestKey: string | undefined;

  constructor(private readonly capacity = 10_000) {
    this.keyIds = new Array<string | undefined>(capacity).fill(undefined);
    this.requestIds = new Array<string | undefined>(capacity).fill(undefined);
    this.seqs = new Float64Array(capacity).fill(-1);
    this.amounts = new Float64Array(capacity * 3);
    this.sources = new Uint8Array(capacity);
    this.counts = new Uint8Array(capacity);
    this.counters = new Array<CounterRef | undefined>(capacity * INLINE_STATES).fill(undefined);
    this.stateNums = new Float64Array(capacity * INLINE_STATES * 3);
  }

  add(keyId: string, requestId: string, charge: Charge, states: readonly CounterState[]): void {
    const slot = this.next;
    this.next = slot + 1 === this.capacity ? 0 : slot + 1;
    if (this.counts[slot] === OVERFLOW) this.overflow.delete(slot);
    this.keyIds[slot] = keyId;
    // The first id seen sets the prefix (in the proxy, every id has this process's).
    this.idPrefix ??= requestId.length > SEQ_DIGITS ? requestId.slice(0, -SEQ_DIGITS) : null;
    const seq = this.idPrefix === null ? -1 : seqOf(this.idPrefix, requestId);
    this.seqs[slot] = seq;
    this.requestIds[slot] = seq < 0 ? requestId : undefined;
    this.amounts[slot * 3] = charge.promptTokens;
    this.amounts[slot * 3 + 1] = charge.completionTokens;
    this.amounts[slot * 3 + 2] = charge.costMicros;
    this.sources[slot] = SOURCES.indexOf(charge.source);
    if (states.length > INLINE_STATES) {
      this.counts[slot] = OVERFLOW;
      this.overflow.set(slot, states);
    } else {
      this.counts[slot] = states.length;
      const base = slot * INLINE_STATES;
      for (let i = 0; i < states.length; i++) {
        const s = states[i]!;
        this.counters[base + i] = s.counter;
        const n = (base + i) * 3;
        this.stateNums[n] = s.used;
        this.stateNums[n + 1] = s.remaining;
        this.stateNums[n + 2] = s.resetsAt === null ? Number.NaN : s.resetsAt;
      }
      // Refs past the count are left in place: they are snapshot objects, read only below the count.
    }
    this.remember(keyId, requestId, charge, states);
  }

  /**
   * A key's last charge outlives the ring. Delete-then-set keeps the map in recency order, so
   * past `capacity` distinct keys the one idle longest is dropped (that first-key lookup walks
   * deleted slots, but only then, never on an ordinary request). The record is reused.
   */
  private remember(keyId: string, requestId: string, charge: Charge, states: readonly CounterState[]): void {
    let last = this.lastByKey.get(keyId);
    if (last === undefined) {
      last = { requestId, charge: { ...charge }, states: [] };
    } else {
      // Already the newest key (a busy key's requests come in runs): the order stands as it is,
      // and the map is spared a delete and a set (each pair leaves a hole that a rehash copies).
      if (this.newestKey !== keyId) this.lastByKey.delete(keyId);
      last.requestId = requestId;
      last.charge.promptTokens = charge.promptTokens;
      last.charge.completionTokens = charge.completionTokens;
      last.charge.costMicros = charge.costMicros;
      last.charge.source = charge.source;
    }
    const kept = last.states;
    for (let i = 0; i < states.length; i++) {
      const s = states[i]!;
      const k = kept[i];
      if (k === undefined) kept.push({ counter: s.counter, used: s.used, remaining: s.remaining, resetsAt: s.resetsAt });
      else {
        k.counter = s.counter;
        k.used = s.used;
        k.remaining = s.remaining;
        k.resetsAt = s.resetsAt;
      }
    }
    kept.length = states.length;
    if (this.newestKey === keyId) return;
    this.newestKey = keyId;
    this.lastByKey.set(keyId, last);
    if (this.lastByKey.size > this.capacity) {
      const oldest = this.lastByKey.keys().next().value;
      if (oldest !== undefined) this.lastByKey.delete(oldest);
    }
  }

  get(keyId: string, requestId: string): GatewayUsage | undefined {
    const seq = this.idPrefix === null ? -1 : seqOf(this.idPrefix, requestId);
    // Newest first: a request id seen twice answers with its latest charge.
    for (let n = 0, slot = this.next; n < this.capacity; n++) {
      slot = slot === 0 ? this.capacity - 1 : slot - 1;
      if (seq >= 0 ? this.seqs[slot] === seq : this.requestIds[slot] === requestId) {
        return this.keyIds[slot] === keyId ? this.viewOf(slot) : undefined;
      }
    }
    return undefined;
  }

  private requestIdAt(slot: number): string {
    const seq = this.seqs[slot]!;
    return seq < 0 ? this.requestIds[slot]! : `${this.idPrefix}${seq.toString(16).padStart(SEQ_DIGITS, '0')}`;
  }

  last(keyId: string): GatewayUsage | undefined {
    const hit = this.lastByKey.get(keyId);
    return hit ? gatewayUsage(hit.requestId, hit.charge, hit.states) : undefined;
  }

  private viewOf(slot: number): GatewayUsage {
    const charge: Charge = {
      promptTokens: this.amounts[slot * 3]!,
      completionTokens: this.amounts[slot * 3 + 1]!,
      costMicros: this.amounts[slot * 3 + 2]!,
      source: SOURCES[this.sources[slot]!]!,
    };
    let states: readonly CounterState[];
    if (this.counts[slot] === OVERFLOW) states = this.overflow.get(slot) ?? [];
    else {
      const out: CounterState[] = [];
      const base = slot * INLINE_STATES;
      for (let i = 0; i < this.counts[slot]!; i++) {
        const n = (base + i) * 3;
        const resetsAt = this.stateNums[n + 2]!;
        out.push({ counter: this.counters[base + i]!, used: this.stateNums[n]!, remaining: this.stateNums[n + 1]!, resetsAt: Number.isNaN(resetsAt) ? null : resetsAt });
      }
      states = out;
    }
    return gatewayUsage(this.requestIdAt(slot), charge, states);
  }
}
