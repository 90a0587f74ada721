// Non-streaming relay: the upstream's JSON goes to the client byte for byte, with one addition,
// `gateway_usage`, spliced in before the closing brace (so numbers keep their exact text).
import type { ServerResponse } from 'node:http';
import { type PublicError, upstreamError } from './errors.js';
import type { ReportedUsage } from './billing.js';
import type { UpstreamWhole } from './upstream/types.js';

export type JsonRead =
  | { ok: true; body: Buffer; reported: ReportedUsage | null; completionBytes: number; contentType: string }
  | { ok: false; error: PublicError };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const count = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

export function reportedUsage(usage: unknown): ReportedUsage | null {
  if (!isRecord(usage)) return null;
  const prompt = count(usage.prompt_tokens);
  const completion = count(usage.completion_tokens);
  if (prompt === null && completion === null) return null;
  const r: ReportedUsage = { promptTokens: prompt ?? 0, completionTokens: completion ?? 0 };
  if (typeof usage.cost === 'number' && Number.isFinite(usage.cost)) r.costText = String(usage.cost);
  else if (typeof usage.cost === 'string' && usage.cost.trim() !== '' && Number.isFinite(Number(usage.cost))) r.costText = usage.cost.trim();
  return r;
}

function contentBytes(choices: unknown): number {
  if (!Array.isArray(choices)) return 0;
  let bytes = 0;
  for (const c of choices) {
    const m = isRecord(c) && isRecord(c.message) ? c.message : null;
    if (m && typeof m.content === 'string') bytes += Buffer.byteLength(m.content);
  }
  return bytes;
}

/** Reads a whole upstream answer: a completion (with its usage), or the error to send instead. */
export function readJsonAnswer(up: UpstreamWhole): JsonRead {
  const body = up.body;
  if (up.status < 200 || up.status > 299) return { ok: false, error: upstreamError(up.status, body, up.headers) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
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
    reported: reportedUsage(parsed.usage),
    completionBytes: contentBytes(parsed.choices),
    contentType: up.contentType ?? 'application/json',
  };
}

/** The upstream body with `"gateway_usage": <usageJson>` added as the last member of the top-level object. */
export function spliceGatewayUsage(body: Buffer, usageJson: string): Buffer {
  const close = body.lastIndexOf(0x7d);
  if (close < 0) return body;
  let i = close - 1;
  while (i >= 0 && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i--;
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

/** Sends a JSON answer; `headers` is the caller's to give away (content-length is added to it). */
export function sendJson(res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string | number>): void {
  headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  res.writeHead(status, headers);
  res.end(body);
}
