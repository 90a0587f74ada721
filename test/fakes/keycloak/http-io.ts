import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request as the handlers see it: path normalized (trailing `/` stripped, segments decoded). */
export interface Req {
  method: string;
  segments: string[];
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Res = ServerResponse;
type HeaderMap = Record<string, string>;

export const TOKEN_HEADERS: HeaderMap = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };
const JSON_TYPE = 'application/json';
const ADMIN_JSON_TYPE = 'application/json;charset=UTF-8';

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function toReq(raw: IncomingMessage, body: string): Req {
  const url = new URL(raw.url ?? '/', 'http://fake.invalid');
  const segments = url.pathname.split('/').filter((s) => s.length > 0).map(decodeSegment);
  return { method: raw.method ?? 'GET', segments, query: url.searchParams, headers: raw.headers, body };
}

export function readBody(raw: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    raw.on('error', reject);
  });
}

export function send(res: Res, status: number, body: string, headers: HeaderMap = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

export function sendJson(res: Res, status: number, value: unknown, headers: HeaderMap = {}): void {
  send(res, status, JSON.stringify(value), { 'Content-Type': JSON_TYPE, ...headers });
}

/** Admin API success body: `application/json;charset=UTF-8`, `Cache-Control: no-cache`. */
export function sendAdminJson(res: Res, value: unknown): void {
  send(res, 200, JSON.stringify(value), { 'Content-Type': ADMIN_JSON_TYPE, 'Cache-Control': 'no-cache' });
}

export function sendNoContent(res: Res, headers: HeaderMap = {}): void {
  res.writeHead(204, headers);
  res.end();
}

export function sendCreated(res: Res, location: string): void {
  send(res, 201, '', { Location: location });
}

/** Shape 1: `{"error":"<oauth_code>","error_description":"…"}`. */
export function sendOAuthError(res: Res, status: number, error: string, description: string, headers: HeaderMap = {}): void {
  sendJson(res, status, { error, error_description: description }, headers);
}

/** Shape 2: `{"error":"<prose>"}` (401, 403, 404 and a few 400s). */
export function sendProseError(res: Res, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

/** Shape 3: `{"errorMessage":"<prose>"}` (409 conflicts, 400 validation). */
export function sendErrorMessage(res: Res, status: number, message: string): void {
  sendJson(res, status, { errorMessage: message });
}

export function sendUnknownResource(res: Res): void {
  sendOAuthError(res, 404, 'Unable to find matching target resource method', 'For more on this error consult the server log.');
}

export type Form = Map<string, string[]>;

/** Form parameters, only when the body is `application/x-www-form-urlencoded` (as JAX-RS does). */
export function parseForm(req: Req): Form {
  const form: Form = new Map();
  const type = String(req.headers['content-type'] ?? '');
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return form;
  for (const [k, v] of new URLSearchParams(req.body)) form.set(k, [...(form.get(k) ?? []), v]);
  return form;
}

export function formParam(form: Form, name: string): string | undefined {
  const v = form.get(name)?.[0];
  return v === undefined || v === '' ? undefined : v;
}

export function hasDuplicatedParam(form: Form): boolean {
  return [...form.values()].some((values) => values.length > 1);
}

export type JsonBody = { ok: true; value: unknown } | { ok: false };

export function parseJson(body: string): JsonBody {
  if (body.trim() === '') return { ok: true, value: null };
  try {
    return { ok: true, value: JSON.parse(body) as unknown };
  } catch {
    return { ok: false };
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function asBool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

export function asAttributes(v: unknown): Record<string, string[]> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string[]> = {};
  for (const [k, val] of Object.entries(v)) {
    if (Array.isArray(val)) out[k] = val.map(String);
    else if (val !== null && val !== undefined) out[k] = [String(val)];
  }
  return out;
}

export function bearerToken(req: Req): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

/** Query `first`/`max` paging (Keycloak's default page is 100). */
export function page<T>(items: T[], query: URLSearchParams, defaultMax = 100): T[] {
  const first = Math.max(0, Number.parseInt(query.get('first') ?? '0', 10) || 0);
  const maxRaw = Number.parseInt(query.get('max') ?? '', 10);
  const max = Number.isNaN(maxRaw) || maxRaw < 0 ? defaultMax : maxRaw;
  return items.slice(first, first + max);
}

export function queryBool(query: URLSearchParams, name: string): boolean | undefined {
  const v = query.get(name);
  if (v === null) return undefined;
  return v.toLowerCase() === 'true';
}
