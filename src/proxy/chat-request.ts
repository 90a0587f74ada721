// The chat request at the edge: parsed once with zod (unknown fields pass through untouched),
// then measured for admission.
//
// THE PROMPT BOUND. Every BPE token of every tokenizer in use encodes at least one byte of UTF-8
// text, so a text has at most as many tokens as bytes. Chat templates add a few tokens per
// message (OpenAI: 3–4; Llama 3: 5; ChatML: 5–6), so we allow 8 per message plus 16 for the
// reply's priming. Hence, for text-only requests:
//   prompt_tokens ≤ Σ_messages (UTF-8 bytes of content, name, tool calls, tool_call_id + 8)
//                   + UTF-8 bytes of the JSON of tools / functions / response_format + 16.
// Reserving that plus max_tokens makes overspend zero when max_tokens is given. Image, audio
// and file parts cannot be bounded from the request; each reserves a configured number of
// tokens (default 1105, OpenAI's cost of a 768×2000 high-detail image), which is a guess.
import { z } from 'zod';
import { gatewayError } from './errors.js';

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const message = z.looseObject({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_call_id: z.string().optional(),
});
const positiveInt = z.number().int().positive().nullable().optional();

/**
 * A model name holds no control characters. None does, and one with a NUL could not even be
 * stored on Postgres (text cannot hold U+0000): its usage event would fail the whole batch.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

export const chatRequestSchema = z.looseObject({
  model: z
    .string()
    .min(1)
    .max(256)
    .refine((m) => !CONTROL_CHAR.test(m), 'must not contain control characters'),
  messages: z.array(message).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
  max_tokens: positiveInt,
  max_completion_tokens: positiveInt,
  n: z.number().int().min(1).max(128).nullable().optional(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;

// The same rules as chatRequestSchema, checked in place: zod copies every object it passes
// (a loose object's unknown keys included) and walked each message through a union, ~4 µs a
// request in the proxy's profile. A body these accept is returned as JSON.parse made it, which
// is what zod returns for it (no defaults, no transforms); anything else goes through zod, so
// zod alone words the errors. A differential test holds the two to the same verdict.
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null;
const optionalString = (v: unknown) => v === undefined || typeof v === 'string';
const optionalBool = (v: unknown) => absent(v) || typeof v === 'boolean';
const optionalPositiveInt = (v: unknown) => absent(v) || (Number.isSafeInteger(v) && (v as number) > 0);

/** Length in code points (a surrogate pair counts once), as zod measures a string's max. */
function codePoints(s: string): number {
  let count = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}

function isContentPart(p: unknown): boolean {
  return isPlainObject(p) && typeof p.type === 'string' && optionalString(p.text);
}

function isMessage(m: unknown): boolean {
  if (!isPlainObject(m) || typeof m.role !== 'string' || m.role.length === 0) return false;
  const c = m.content;
  if (!(c === undefined || c === null || typeof c === 'string' || (Array.isArray(c) && c.every(isContentPart)))) return false;
  return optionalString(m.name) && optionalString(m.tool_call_id);
}

/** Whether chatRequestSchema accepts `json` (a plain object), without building its output. */
export function fitsChatRequest(json: Record<string, unknown>): boolean {
  const model = json.model;
  if (typeof model !== 'string' || model.length === 0 || (model.length > 256 && codePoints(model) > 256) || CONTROL_CHAR.test(model)) return false;
  const messages = json.messages;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  for (const m of messages) if (!isMessage(m)) return false;
  if (!optionalBool(json.stream)) return false;
  const so = json.stream_options;
  if (!absent(so) && !(isPlainObject(so) && optionalBool(so.include_usage))) return false;
  if (!optionalPositiveInt(json.max_tokens) || !optionalPositiveInt(json.max_completion_tokens)) return false;
  const n = json.n;
  return absent(n) || (Number.isSafeInteger(n) && (n as number) >= 1 && (n as number) <= 128);
}

/** The value at `path` in a parsed body (undefined when any step is missing). */
function valueAt(json: unknown, path: readonly PropertyKey[]): unknown {
  let v = json;
  for (const k of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** Parses the raw body; throws a public invalid_request naming the offending field. */
export function parseChatRequest(raw: Buffer): ChatRequest {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw gatewayError('invalid_request', 'The request body is not valid JSON.');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw gatewayError('invalid_request', 'The request body must be a JSON object.');
  }
  if (fitsChatRequest(json as Record<string, unknown>)) return json as ChatRequest;
  const parsed = chatRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path.map(String).join('.') || null;
    // zod 4 leaves the offending input out of its issues: look the field up in the body, so a
    // value of the wrong type is not called missing.
    const missing = issue?.code === 'invalid_type' && valueAt(json, issue.path) === undefined;
    const what = missing ? `'${param}' is required` : `Invalid value for '${param}': ${issue?.message ?? 'invalid'}`;
    throw gatewayError('invalid_request', `${what}.`, param);
  }
  return parsed.data;
}

/**
 * The completion cap the client asked for, if any. With both max_tokens and max_completion_tokens
 * the larger one: an upstream honours one of the two, not their minimum (OpenAI reads
 * max_completion_tokens first, SGLang takes max_completion_tokens over max_tokens, some read only
 * max_tokens), so the tighter cap reserved for a reply bounded by the other let one request
 * overspend its quota many times over.
 */
export function requestedMaxTokens(req: ChatRequest): number | null {
  const a = req.max_tokens ?? null;
  const b = req.max_completion_tokens ?? null;
  if (a === null) return b;
  return b === null ? a : Math.max(a, b);
}

interface Measure {
  textBytes: number;
  mediaParts: number;
  messages: number;
}

/** UTF-8 bytes of a field's JSON; 0 when it is absent or null. */
const jsonBytes = (v: unknown) => (v == null ? 0 : Buffer.byteLength(JSON.stringify(v)));

function measure(req: ChatRequest): Measure {
  let textBytes = 0;
  let mediaParts = 0;
  for (const m of req.messages) {
    const c = m.content;
    if (typeof c === 'string') textBytes += Buffer.byteLength(c);
    else if (Array.isArray(c)) {
      for (const part of c) {
        // A part is text or media by its type: an image part with a `text` member (which the
        // upstream ignores) is still an image, and reserves as one.
        if (typeof part.text === 'string') textBytes += Buffer.byteLength(part.text);
        if (part.type !== 'text' && part.type !== 'input_text') mediaParts++;
      }
    }
    if (m.name) textBytes += Buffer.byteLength(m.name);
    if (m.tool_call_id) textBytes += Buffer.byteLength(m.tool_call_id);
    // Each field by name: a loop over the names read them through a megamorphic keyed load each.
    textBytes += jsonBytes(m.tool_calls) + jsonBytes(m.function_call) + jsonBytes(m.refusal) + jsonBytes(m.reasoning);
  }
  textBytes += jsonBytes(req.tools) + jsonBytes(req.functions) + jsonBytes(req.response_format) + jsonBytes(req.tool_choice);
  return { textBytes, mediaParts, messages: req.messages.length };
}

export const PER_MESSAGE_OVERHEAD = 8;
export const PRIMING_OVERHEAD = 16;

export interface PromptTokens {
  /** An upper bound for text (see the header); media parts add a configured guess. Reserved. */
  bound: number;
  /** A best guess (4 bytes a token, OpenAI's framing), billed only when the upstream never reports usage. */
  estimate: number;
}

export function promptTokens(req: ChatRequest, mediaPartTokens: number): PromptTokens {
  const m = measure(req);
  const media = m.mediaParts * mediaPartTokens;
  return {
    bound: m.textBytes + m.messages * PER_MESSAGE_OVERHEAD + PRIMING_OVERHEAD + media,
    estimate: Math.ceil(m.textBytes / 4) + m.messages * 4 + 3 + media,
  };
}

/** Completion tokens guessed from delivered text, for streams cut before the upstream reported usage. */
export const completionTokenEstimate = (bytes: number) => Math.ceil(bytes / 4);

/** At most this many tokens produced `bytes` of delivered UTF-8 text (a token is at least one byte). */
export const deliveredTokenBound = (bytes: number) => bytes;
