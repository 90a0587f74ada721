// Side-channel SSE parsing for the proxy's streaming path (DESIGN §6).
//
// The proxy forwards upstream bytes as they arrive; the observer sees the same bytes on the side
// and only *reports* (usage, [DONE], in-band error, delivered text, event boundaries). The
// rewriter is the one place that changes bytes, and only for clients whose include_usage wish
// differs from what the upstream sends (OpenRouter always sends usage, A.4 / C.2).
//
// Both split on LF at the byte level: 0x0A never occurs inside a multi-byte UTF-8 sequence, so a
// chunk boundary in the middle of a character is harmless. CR before LF is stripped; a lone CR
// line ending (legal SSE, unseen from any OpenAI-compatible upstream) is not supported.
// Chunks are kept as views until their event completes, so callers must not reuse buffers.

// Framing lives in sse-framer.ts; the rewriter, the one place that changes bytes, in sse-rewriter.ts.
import { usdNumberToMicrosExact } from '../shared/money.js';
import { COLON, CR, dataBytes, eventJson, formatSseData, isRecord, LF, latin1ToText, NON_NULL_USAGE_RE, type SseEvent, SseFramer, toBuffer } from './sse-framer.js';

export { formatSseData } from './sse-framer.js';
import { createSseRewriter } from './sse-rewriter.js';

export { createSseRewriter, type SseRewriter } from './sse-rewriter.js';

const QUOTE = 0x22;
// Two compiled regexes find the keys the observer cares about:
// - USAGE_OR_ERROR_KEY, on every event: "usage" and "error" keys, which decide whether the
//   event is parsed (a false match costs a parse, never a wrong answer: the parse decides);
// - KEY_RE, when the delivered text is measured (see Observation): fields whose string values
//   are completion text the client has received (OpenRouter streams reasoning as
//   delta.reasoning, DeepSeek and vLLM as delta.reasoning_content; tool calls as
//   function.arguments), each string then skipped.
// String#includes and String#indexOf with these patterns build their search tables on every
// call: three of them per event were a third of the observer's time (measured). A quote inside
// a JSON string is escaped, so KEY_RE cannot match inside a string value of valid JSON.
const KEY_RE = /"(?:content|reasoning|reasoning_content|refusal|arguments)"[ \t\r\n]*:[ \t\r\n]*"/g;
const KEY_USAGE = 1;
const KEY_ERROR = 2;
const USAGE_OR_ERROR_KEY = /"(?:usage|error)"(?=[ \t\r\n]*:)/g;
const JSON_NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export const SSE_DONE = 'data: [DONE]\n\n';

export interface StreamUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cost?: number; // usage.cost in USD (OpenRouter); absent when the upstream does not price
  // Its literal JSON text, for an exact conversion to integer micro-dollars, where the number
  // alone may not give it (within 1e-6 of a half micro-dollar, see usdNumberToMicrosExact), and
  // a cost sent as a string; absent where the number decides (finding the literal cost ~1 µs).
  costText?: string;
  raw: Readonly<Record<string, unknown>>; // the whole usage object (cached/reasoning tokens, is_byok, …)
}

export interface StreamError {
  message: string;
  code: number | string | null; // OpenRouter sends a number, some of its docs a string: kept as sent
  type: string | null; // error.type, else OpenRouter's error.metadata.error_type
  metadata?: Readonly<Record<string, unknown>>; // for logs only: may quote provider text
}

export interface SseObservation {
  usage: StreamUsage | null; // the last non-null usage seen
  done: boolean; // [DONE] seen; EOF without it is still the end, but not a complete stream
  error: StreamError | null; // in-band error chunk (top-level `error`) or `event: error`
  events: number; // data events, [DONE] excluded
  comments: number; // comment lines (keep-alives such as `: OPENROUTER PROCESSING`)
  deltas: number; // data events that carried non-empty completion text
  deliveredChars: number; // UTF-16 length of all completion text delivered so far
  deliveredBytes: number; // its UTF-8 size, to estimate completion tokens of a cut stream
  id: string | null; // from the first chunk
  model: string | null; // from the first chunk: OpenRouter echoes the model used after fallbacks
  atBoundary: boolean; // every byte seen so far belongs to a complete event
  truncated: boolean; // end() found an incomplete event: the stream was cut mid-event
}

export interface PushResult {
  events: number; // events (data, comment or empty) this chunk completed
  boundary: number; // offset in this chunk just past the last completed event, -1 if none
}

export interface SseObserver {
  readonly state: Readonly<SseObservation>;
  push(chunk: Uint8Array): PushResult;
  end(): void; // upstream EOF: an unterminated trailing event is still examined
}

/** An OpenAI-shaped in-band error event (the openai SDK throws APIError on it, C.2). */
export function formatSseError(err: { message: string; type: string; code: string | number | null; param?: string | null }): string {
  const error = { message: err.message, type: err.type, param: err.param ?? null, code: err.code };
  return formatSseData({ error });
}

/**
 * Text of events not measured yet past which it is measured at once, and let go. Small on
 * purpose: text kept for a stream's whole life outlives scavenges and is promoted. With 64 KB a
 * 200-event stream (one event a chunk, 50 at once) had all its 34 KB of chunk text promoted:
 * 30 KB promoted and 160 µs of scavenge pauses per stream (--trace-gc-nvp); with 4 KB, 8 KB and
 * 94 µs. Streams under 4 KB (most short answers, the benchmark's) are still never measured.
 */
const MAX_UNMEASURED = 4 * 1024;

/**
 * What makes a run of whole events "quiet" is that none of these occurs in it: the only events
 * whose observation cannot wait (a non-null usage, which the rewriter also needs at once; an
 * error, whose order against other errors counts; an `event:` name) all hold one. Conservative by
 * construction: a `"usage"` string counts unless `:` and `null` follow on the same line, any
 * `"error"` string counts (a key or a value), and so does any line starting with `event`. An
 * event's data is its data lines joined by LF, so a key it holds lies in one line of the chunk,
 * with what follows it on that line: the observer's own tests (a non-null usage key, an error
 * key) therefore never pass on an event of a quiet run. Inside a JSON string a quote is escaped,
 * so text mentioning "usage" or "error" does not count. Two plain regexes (one with the three
 * alternatives and a lookahead scanned every character 2–3× slower).
 */
const QUIET_KEY_RE = /"(?:usage|error)"/g;
const EVENT_LINE_RE = /\nevent/;

/** Where the first thing that is not quiet starts in `s` (see QUIET_KEY_RE), or -1. */
function firstEager(s: string): number {
  let at = -1;
  QUIET_KEY_RE.lastIndex = 0;
  while (QUIET_KEY_RE.test(s)) {
    const end = QUIET_KEY_RE.lastIndex;
    if (s.charCodeAt(end - 6) !== 0x75 /* u */ || !nullFollows(s, end)) {
      at = end - 7;
      break;
    }
  }
  if (s.startsWith('event')) return 0;
  const line = s.search(EVENT_LINE_RE);
  return line !== -1 && (at === -1 || line + 1 < at) ? line + 1 : at;
}

/** `: null` (spaces and tabs allowed around the colon) follows position `i`. */
function nullFollows(s: string, i: number): boolean {
  let j = i;
  while (s.charCodeAt(j) === 0x20 || s.charCodeAt(j) === 0x09) j++;
  if (s.charCodeAt(j++) !== COLON) return false;
  while (s.charCodeAt(j) === 0x20 || s.charCodeAt(j) === 0x09) j++;
  return s.startsWith('null', j);
}

/**
 * The observation, with everything but usage and error kept up to date lazily:
 * - quiet events (see QUIET_KEY_RE) are not framed as they pass: the relay keeps their chunk text
 *   and frames it only when events, comments, done, the delivered-text figures, id or model are
 *   read (or when 64 KB are waiting). Usage and error never come from them.
 * - the delivered-text figures of framed events: each event's data is kept (a view of its
 *   chunk's string) and scanned for completion text only when deltas, deliveredChars or
 *   deliveredBytes is read, or when 64 KB are waiting.
 * Those figures serve streams the upstream never reports usage for and the quota watch of
 * streams without max_tokens; a stream that ends with its usage reads none of them, and framing
 * and scanning every event for them was most of the observer's time.
 */
class Observation implements SseObservation {
  usage: StreamUsage | null = null;
  error: StreamError | null = null;
  atBoundary = true;
  truncated = false;
  /** Comments counted by the framer that framed the events as they passed. */
  framedComments = 0;
  private counts = { events: 0, comments: 0, done: false };
  private readonly measured = { deltas: 0, chars: 0, bytes: 0 };
  private unmeasured: string[] = [];
  private unmeasuredSize = 0;
  // Quiet chunk text not framed yet, in order; `quietQueued` counts every quiet run ever queued.
  private quiet: string[] = [];
  private quietSize = 0;
  private quietQueued = 0;
  private quietFramed = 0;
  // The first data event, read for its id and model when asked (nothing on the request path
  // does). A framed event that came after quiet runs not framed yet is only a candidate: it is
  // first unless one of those runs (`earlierQuiet` of them) holds a data event.
  private first: string | null = null;
  private candidate: string | null = null;
  private earlierQuiet = 0;
  private identity: { id: string | null; model: string | null } | null = null;

  get events(): number {
    return this.catchUp().events;
  }

  get comments(): number {
    return this.catchUp().comments + this.framedComments;
  }

  get done(): boolean {
    return this.catchUp().done;
  }

  get id(): string | null {
    return this.readIdentity().id;
  }

  get model(): string | null {
    return this.readIdentity().model;
  }

  get deltas(): number {
    return this.flush().deltas;
  }

  get deliveredChars(): number {
    return this.flush().chars;
  }

  get deliveredBytes(): number {
    return this.flush().bytes;
  }

  /** [DONE] seen by the framer. */
  sawDone(): void {
    this.counts.done = true;
  }

  /** A data event framed as it passed (its data as bytes): counted, and queued to be measured. */
  sawData(bytes: string): void {
    this.counts.events++;
    if (this.first === null && this.candidate === null) {
      if (this.quiet.length === 0) this.first = bytes;
      else {
        this.candidate = bytes;
        this.earlierQuiet = this.quietQueued;
      }
    }
    this.unmeasured.push(bytes);
    this.unmeasuredSize += bytes.length;
    if (this.unmeasuredSize > MAX_UNMEASURED) this.flush();
  }

  /** Whole events (the framer at a boundary before and after them) that are quiet (see QUIET_KEY_RE), as latin1. */
  queueQuiet(text: string): void {
    this.quiet.push(text);
    this.quietQueued++;
    this.quietSize += text.length;
    if (this.quietSize > MAX_UNMEASURED) this.catchUp();
  }

  private readIdentity(): { id: string | null; model: string | null } {
    if (this.identity === null) {
      this.catchUp();
      this.identity = this.first === null ? { id: null, model: null } : readIdentity(this.first);
    }
    return this.identity;
  }

  /** Frames the quiet runs waiting, measuring their text as it goes. */
  private catchUp(): { events: number; comments: number; done: boolean } {
    const c = this.counts;
    if (this.quiet.length === 0) return c;
    const framer = new SseFramer();
    const m = this.measured;
    let index = 0;
    const onEvent = (event: SseEvent) => {
      if (event.dataLines === 0) return;
      const bytes = event.data;
      if (bytes === '[DONE]') {
        c.done = true;
        return;
      }
      c.events++;
      if (this.first === null && (this.candidate === null || index < this.earlierQuiet)) this.first = bytes;
      measureText(m, bytes);
    };
    for (const text of this.quiet) {
      index = this.quietFramed++;
      framer.feed(EMPTY, onEvent, text);
    }
    c.comments += framer.comments;
    this.quiet.length = 0;
    this.quietSize = 0;
    if (this.first === null && this.candidate !== null) this.first = this.candidate;
    this.candidate = null;
    return c;
  }

  private flush(): { deltas: number; chars: number; bytes: number } {
    this.catchUp();
    const m = this.measured;
    if (this.unmeasured.length === 0) return m;
    for (const bytes of this.unmeasured) measureText(m, bytes);
    this.unmeasured.length = 0;
    this.unmeasuredSize = 0;
    return m;
  }
}

const EMPTY = Buffer.alloc(0);

/** The relay's view of a stream: what the observer reports and what the rewriter sends, from one framing pass. */
export interface SseTap {
  readonly state: Readonly<SseObservation>;
  /** Bytes to send now (see SseRewriter.push); the state is updated with every event they complete. */
  push(chunk: Uint8Array): Uint8Array[];
  /** Upstream EOF: the state is final (truncated or not) and the trailing bytes to send are returned. */
  end(): Uint8Array[];
}

/**
 * Where the quiet run of whole events at the start of `s` ends: just past the last blank line
 * (LF LF) before the first thing that is not quiet, or at the chunk's end when all of it is
 * quiet and it ends with a blank line; 0 when there is none. Only for a framer at a boundary.
 */
function quietPrefix(s: string): number {
  const eager = firstEager(s);
  const limit = eager === -1 ? s.length : eager;
  if (limit < 2) return 0;
  const blank = s.lastIndexOf('\n\n', limit - 2);
  return blank === -1 ? 0 : blank + 2;
}

export function createSseTap(options: { includeUsage: boolean }): SseTap {
  const state = new Observation();
  const rewriter = createSseRewriter({ includeUsage: options.includeUsage, observe: (event) => observeEvent(state, event) });
  const { framer } = rewriter;
  return {
    state,
    push(chunk) {
      const buf = toBuffer(chunk);
      if (!framer.atBoundary) {
        const out = rewriter.push(buf);
        state.framedComments = framer.comments;
        state.atBoundary = framer.atBoundary;
        return out;
      }
      // The quiet run at the start of the chunk (usually all of it) passes unframed; the
      // rest is framed from where the run ends.
      const s = buf.toString('latin1');
      const quiet = quietPrefix(s);
      if (quiet > 0) state.queueQuiet(quiet === s.length ? s : s.slice(0, quiet));
      if (quiet === s.length) return [buf];
      const out = rewriter.push(buf, s, quiet);
      state.framedComments = framer.comments;
      state.atBoundary = framer.atBoundary;
      return out;
    },
    end() {
      state.truncated = !framer.atBoundary;
      const out = rewriter.end();
      state.framedComments = framer.comments;
      state.atBoundary = true;
      return out;
    },
  };
}

export function createSseObserver(): SseObserver {
  const state = new Observation();
  const framer = new SseFramer();
  return {
    state,
    push(chunk) {
      const result: PushResult = { events: 0, boundary: -1 };
      framer.feed(toBuffer(chunk), (event, end) => {
        observeEvent(state, event);
        result.events++;
        result.boundary = end;
      });
      state.framedComments = framer.comments;
      state.atBoundary = framer.atBoundary;
      return result;
    },
    end() {
      state.truncated = !framer.atBoundary;
      const last = framer.finish();
      if (last) observeEvent(state, last);
      state.framedComments = framer.comments;
      state.atBoundary = true;
    },
  };
}

function observeEvent(state: Observation, event: SseEvent): void {
  if (event.dataLines === 0) return;
  // The data as bytes (latin1); decoded to text only when it must be parsed.
  const bytes = dataBytes(event);
  if (bytes === '[DONE]') {
    state.sawDone();
    return;
  }
  // Parsed at most once (the parse is kept on the event, for the rewriter too), and only for the
  // events that need it: a usage, an error. The first event's identity is read by a scan.
  if (event.name === 'error') state.error = extractError(wrapError(eventJson(event), latin1ToText(bytes)));
  state.sawData(bytes);
  const keys = keysOf(bytes);
  event.usageKey = (keys & KEY_USAGE) !== 0;
  event.errorKey = (keys & KEY_ERROR) !== 0;
  if (event.usageKey && NON_NULL_USAGE_RE.test(bytes)) {
    state.usage = extractUsage(eventJson(event), bytes) ?? state.usage;
  }
  if ((keys & KEY_ERROR) !== 0) state.error = extractError(eventJson(event)) ?? state.error;
}

/** An `event: error` payload may be the error itself, an `{error}` envelope, or plain text. */
function wrapError(parsed: unknown, text: string): unknown {
  return isRecord(parsed) && 'error' in parsed ? parsed : { error: parsed ?? text };
}

/**
 * The first chunk's top-level `id` and `model` strings, found by walking the members of the
 * top-level object without building it. On valid JSON this gives what JSON.parse would: only a
 * top-level object counts, the last of duplicate keys wins, a non-string value sets nothing, and
 * escaped key names are decoded. On invalid JSON (which JSON.parse would reject) a scan may still
 * find strings up to the point where the text goes wrong.
 */
function readIdentity(bytes: string): { id: string | null; model: string | null } {
  const open = skipWs(bytes, 0);
  if (bytes.charCodeAt(open) !== 0x7b) return { id: null, model: null };
  let id: string | null = null;
  let model: string | null = null;
  let depth = 0;
  for (let i = open + 1; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(bytes, i);
      if (end === -1) break;
      const colon = skipWs(bytes, end + 1);
      if (depth === 0 && bytes.charCodeAt(colon) === COLON) {
        const raw = bytes.slice(i + 1, end);
        const key = raw.includes('\\') ? decodeString(raw) : raw;
        if (key === 'id' || key === 'model') {
          const value = stringValueAt(bytes, skipWs(bytes, colon + 1));
          if (key === 'id') id = value;
          else model = value;
        }
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth < 0) break;
  }
  return { id, model };
}

/** The JSON string starting at `at`, decoded, or null when there is no (valid) string there. */
function stringValueAt(bytes: string, at: number): string | null {
  if (bytes.charCodeAt(at) !== QUOTE) return null;
  const close = stringEnd(bytes, at);
  return close === -1 ? null : decodeString(latin1ToText(bytes.slice(at + 1, close)));
}

/**
 * Which of the "usage" and "error" keys the event's data holds (KEY_* bits): a key is a string
 * followed by a colon, so a text value "usage" is not one. Runs on every event, so it is one
 * compiled regex and test() (no match array); the event is parsed only when a key is there.
 */
function keysOf(bytes: string): number {
  let keys = 0;
  USAGE_OR_ERROR_KEY.lastIndex = 0;
  while (USAGE_OR_ERROR_KEY.test(bytes)) {
    // The match is the key and its quotes: its first letter tells which one.
    keys |= bytes.charCodeAt(USAGE_OR_ERROR_KEY.lastIndex - 6) === 0x75 /* u */ ? KEY_USAGE : KEY_ERROR;
    if (keys === (KEY_USAGE | KEY_ERROR)) break;
  }
  return keys;
}

/**
 * Measures the completion text an event delivers into `m`. A scan instead of JSON.parse: it
 * may run on every event of a stream. `bytes` is the event's data as a latin1 string, so a
 * string value's raw length is its UTF-8 size; values with escapes are decoded properly.
 */
function measureText(m: { deltas: number; chars: number; bytes: number }, bytes: string): void {
  let chars = 0;
  let size = 0;
  KEY_RE.lastIndex = 0;
  // test() rather than exec(): the match ends at the value's opening quote, and no match array
  // is built per key.
  while (KEY_RE.test(bytes)) {
    const open = KEY_RE.lastIndex - 1;
    const close = stringEnd(bytes, open);
    if (close === -1) {
      // An unterminated string: the event is not valid JSON, so it is never parsed; only the
      // keys before it count, as text after it is all inside the string.
      break;
    }
    KEY_RE.lastIndex = close + 1;
    const raw = bytes.slice(open + 1, close);
    if (raw.length === 0) continue;
    if (!raw.includes('\\')) {
      chars += utf16LengthOfUtf8(raw);
      size += raw.length;
      continue;
    }
    const value = decodeString(latin1ToText(raw));
    if (value) {
      chars += value.length;
      size += utf8Length(value);
    }
  }
  if (chars !== 0) {
    m.deltas++;
    m.chars += chars;
    m.bytes += size;
  }
}

/** UTF-16 length of the text that UTF-8 bytes (held one per character) encode: lead bytes count, 4-byte sequences twice. */
function utf16LengthOfUtf8(bytes: string): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i);
    if (b < 0x80) n++;
    else if (b >= 0xf0) n += 2;
    else if (b >= 0xc0) n++;
  }
  return n;
}

/** UTF-8 size of a string; for the short deltas of a stream this beats Buffer.byteLength's native call. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2; // 3 bytes (a lone surrogate is encoded as U+FFFD, also 3)
  }
  return n;
}

function skipWs(text: string, i: number): number {
  let j = i;
  for (let c = text.charCodeAt(j); c === 0x20 || c === 0x09 || c === LF || c === CR; c = text.charCodeAt(++j));
  return j;
}

/** Index of the quote closing the JSON string opened at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  for (let q = text.indexOf('"', open + 1); q !== -1; q = text.indexOf('"', q + 1)) {
    let slashes = 0;
    while (text.charCodeAt(q - 1 - slashes) === 0x5c) slashes++;
    if (slashes % 2 === 0) return q;
  }
  return -1;
}

/** A JSON string's contents (between the quotes) decoded, or null when its escapes are invalid. */
function decodeString(raw: string): string | null {
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return null;
  }
}

function tokenCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

function extractUsage(chunk: unknown, text: string): StreamUsage | null {
  if (!isRecord(chunk) || !isRecord(chunk.usage)) return null;
  const raw = chunk.usage;
  const prompt = tokenCount(raw.prompt_tokens);
  const completion = tokenCount(raw.completion_tokens);
  if (prompt === null && completion === null) return null;
  const usage: StreamUsage = {
    promptTokens: prompt ?? 0,
    completionTokens: completion ?? 0,
    totalTokens: tokenCount(raw.total_tokens) ?? (prompt ?? 0) + (completion ?? 0),
    raw,
  };
  if (typeof raw.cost === 'number' && Number.isFinite(raw.cost)) {
    usage.cost = raw.cost;
    if (usdNumberToMicrosExact(raw.cost) === null) {
      const literal = findUsageCostText(text);
      usage.costText = literal !== undefined && Number(literal) === raw.cost ? literal : String(raw.cost);
    }
  } else if (typeof raw.cost === 'string' && Number.isFinite(Number(raw.cost)) && raw.cost.trim() !== '') {
    usage.cost = Number(raw.cost);
    usage.costText = raw.cost.trim();
  }
  return usage;
}

/** The number literal of the top-level usage.cost, found by walking the JSON without building it. */
export function findUsageCostText(json: string): string | undefined {
  const usage = findKeyValue(json, json.indexOf('{') + 1, 'usage');
  if (usage === -1 || json.charCodeAt(usage) !== 0x7b) return undefined;
  const cost = findKeyValue(json, usage + 1, 'cost');
  if (cost === -1) return undefined;
  JSON_NUMBER.lastIndex = cost;
  return JSON_NUMBER.exec(json)?.[0];
}

/** Start of the value of `key` in the object whose body starts at `from`, at that object's depth only. */
function findKeyValue(json: string, from: number, key: string): number {
  let depth = 0;
  for (let i = from; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(json, i);
      if (end === -1) return -1;
      const colon = skipWs(json, end + 1);
      if (depth === 0 && json.charCodeAt(colon) === COLON && json.slice(i + 1, end) === key) {
        return skipWs(json, colon + 1);
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth < 0) return -1;
  }
  return -1;
}

function extractError(chunk: unknown): StreamError | null {
  if (!isRecord(chunk)) return null;
  const e = chunk.error;
  if (typeof e === 'string') return { message: e, code: null, type: null };
  if (!isRecord(e)) return null;
  const metadata = isRecord(e.metadata) ? e.metadata : undefined;
  const type = typeof e.type === 'string' ? e.type : metadata?.error_type;
  const error: StreamError = {
    message: typeof e.message === 'string' ? e.message : 'Upstream error',
    code: typeof e.code === 'number' || typeof e.code === 'string' ? e.code : null,
    type: typeof type === 'string' ? type : null,
  };
  if (metadata) error.metadata = metadata;
  return error;
}
