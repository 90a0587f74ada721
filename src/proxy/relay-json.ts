// Non-streaming relay: the upstream's JSON goes to the client byte for byte, with one addition,
// `gateway_usage`, spliced in before the closing brace (so numbers keep their exact text).
import type { ServerResponse } from 'node:http';
import { type PublicError, upstreamError } from './errors.js';
import type { ReportedUsage } from './billing.js';
import type { UpstreamWhole } from './upstream/types.js';
import { usdNumberToMicrosExact } from '../shared/money.js';
import { findUsageCostText } from './sse-usage.js';

export type JsonRead =
  | {
      ok: true;
      body: Buffer;
      /** The body decoded, when that text encodes back to exactly its bytes; else null. */
      text: string | null;
      reported: ReportedUsage | null;
      completionBytes: number;
      contentType: string;
    }
  | { ok: false; error: PublicError };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Upstream usage past these is taken for a glitch, not a bill: a count above it is treated as not
 * reported (estimated instead) and a cost above it (or below zero) gives way to the price table.
 * No request comes near either (the largest context windows are ~2M tokens; a million output
 * tokens at today's dearest prices is a few hundred dollars), and a single garbled number could
 * otherwise drain a credit balance or a budget at once.
 */
export const MAX_REPORTED_TOKENS = 100_000_000;
export const MAX_REPORTED_COST_MICROS = 10_000 * 1_000_000;

const count = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_REPORTED_TOKENS ? v : null);

export function reportedUsage(usage: unknown): ReportedUsage | null {
  if (!isRecord(usage)) return null;
  const prompt = count(usage.prompt_tokens);
  const completion = count(usage.completion_tokens);
  if (prompt === null && completion === null) return null;
  const r: ReportedUsage = { promptTokens: prompt, completionTokens: completion };
  if (typeof usage.cost === 'number' && Number.isFinite(usage.cost)) r.cost = usage.cost;
  else if (typeof usage.cost === 'string' && usage.cost.trim() !== '' && Number.isFinite(Number(usage.cost))) r.costText = usage.cost.trim();
  if (usage.is_byok === true) {
    // BYOK: cost is OpenRouter's fee alone; the provider's charge to the org's key comes on top.
    const provider = isRecord(usage.cost_details) ? usage.cost_details.upstream_inference_cost : undefined;
    r.byokCost = typeof provider === 'number' && Number.isFinite(provider) && provider >= 0 ? provider : null;
  }
  return r;
}

/**
 * Where the number cannot decide the micro-dollars of usage.cost (near a half, see
 * usdNumberToMicrosExact), its literal text in the body does, as on a stream: 0.0000325 and
 * 0.00003249999999999999999 parse to one double but bill 33 and 32 micro-dollars.
 */
function withCostLiteral(r: ReportedUsage | null, text: string): ReportedUsage | null {
  if (r?.cost === undefined || usdNumberToMicrosExact(r.cost) !== null) return r;
  const literal = findUsageCostText(text);
  if (literal !== undefined && Number(literal) === r.cost) r.costText = literal;
  return r;
}

const textBytes = (v: unknown) => (typeof v === 'string' ? Buffer.byteLength(v) : 0);

/** UTF-8 bytes of the completion text of every choice: content, reasoning (reasoning_content too), refusal and tool-call arguments (what a stream's observer counts). */
function contentBytes(choices: unknown): number {
  if (!Array.isArray(choices)) return 0;
  let bytes = 0;
  for (const c of choices) {
    const m = isRecord(c) && isRecord(c.message) ? c.message : null;
    if (!m) continue;
    bytes += textBytes(m.content) + textBytes(m.reasoning) + textBytes(m.reasoning_content) + textBytes(m.refusal);
    if (isRecord(m.function_call)) bytes += textBytes(m.function_call.arguments);
    if (Array.isArray(m.tool_calls)) {
      for (const t of m.tool_calls) if (isRecord(t) && isRecord(t.function)) bytes += textBytes(t.function.arguments);
    }
  }
  return bytes;
}

/** Reads a whole upstream answer: a completion (with its usage), or the error to send instead. */
export function readJsonAnswer(up: UpstreamWhole): JsonRead {
  const body = up.body;
  if (up.status < 200 || up.status > 299) return { ok: false, error: upstreamError(up.status, body, up.headers) };
  let parsed: unknown;
  const text = body.toString('utf8');
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, error: upstreamError(200, body, up.headers) };
  }
  // OpenRouter can answer 200 with an error envelope once a provider failed (A.3).
  if (!isRecord(parsed) || (parsed.error != null && !Array.isArray(parsed.choices))) {
    return { ok: false, error: upstreamError(isRecord(parsed) && parsed.error != null ? 502 : 200, body, up.headers) };
  }
  return {
    ok: true,
    body,
    // Invalid UTF-8 decodes to U+FFFD (not always changing the length: a cut 4-byte sequence
    // is 3 bytes, and so is its U+FFFD); without one the text re-encodes to the same bytes.
    text: text.includes('\uFFFD') ? null : text,
    reported: withCostLiteral(reportedUsage(parsed.usage), text),
    completionBytes: contentBytes(parsed.choices),
    contentType: up.contentType ?? 'application/json',
  };
}

const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** The upstream body with `"gateway_usage": <usageJson>` added as the last member of the top-level object. */
export function spliceGatewayUsage(body: Buffer, usageJson: string): Buffer {
  const close = body.lastIndexOf(0x7d);
  if (close < 0) return body;
  let i = close - 1;
  while (i >= 0 && isJsonSpace(body[i]!)) i--;
  const insert = `${body[i] === 0x7b ? '' : ','}"gateway_usage":${usageJson}`;
  // One buffer, written in place (a Buffer.from of the insert and a concat of three parts
  // allocated twice as much).
  const size = Buffer.byteLength(insert);
  const out = Buffer.allocUnsafe(body.length + size);
  body.copy(out, 0, 0, close);
  out.write(insert, close, 'utf8');
  body.copy(out, close + size, close);
  return out;
}

/**
 * spliceGatewayUsage on the body's text (see JsonRead.text), with the spliced body's size in
 * bytes. A string answer leaves with the status line and headers in one socket write; a Buffer
 * goes out as a second chunk of a writev, and the splice into one cost a pooled buffer, two
 * copies and a UTF-8 write.
 */
export function spliceGatewayUsageText(text: string, bytes: number, usageJson: string, usageBytes = Buffer.byteLength(usageJson)): { text: string; bytes: number } {
  const close = text.lastIndexOf('}');
  if (close < 0) return { text, bytes };
  let i = close - 1;
  while (i >= 0 && isJsonSpace(text.charCodeAt(i))) i--;
  const comma = text.charCodeAt(i) !== 0x7b;
  const insert = `${comma ? ',' : ''}"gateway_usage":${usageJson}`;
  return { text: text.slice(0, close) + insert + text.slice(close), bytes: bytes + (comma ? 1 : 0) + GATEWAY_USAGE_MEMBER_BYTES + usageBytes };
}

const GATEWAY_USAGE_MEMBER_BYTES = '"gateway_usage":'.length;

/**
 * Sends a JSON answer; `headers` is the caller's to give away (content-length is added to it).
 * `bytes` is the body's size when the caller knows it.
 */
export function sendJson(res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string | number>, bytes?: number): void {
  headers['content-length'] = bytes ?? (typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * Drops the client if an answer it was sent is still not taken after `timeoutMs`: a client that
 * never reads would otherwise hold the answer in memory for as long as it keeps the connection.
 * Only an answer past the socket's high-water mark (16 KiB) arms the timer; a smaller one is
 * usually still corked here (node uncorks on the next tick) and is not worth a timer each.
 */
export function dropIfUnread(res: ServerResponse, timeoutMs: number): void {
  if (res.destroyed || res.socket?.writableNeedDrain !== true) return;
  const timer = setTimeout(() => res.destroy(), timeoutMs);
  timer.unref();
  const done = () => clearTimeout(timer);
  res.once('finish', done);
  res.once('close', done);
}
