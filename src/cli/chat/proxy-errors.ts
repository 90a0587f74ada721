// Turns the gateway's error responses into one plain sentence and the CLI's exit code: a person
// at the chat prompt reads "Quota spent … try again in 3h 12m", never a stack trace.
import { ERROR_TABLE, type ErrorCode, GatewayError } from '../../shared/errors.js';
import { isRecord, rateLimitFrom } from './replies.js';

type Headers = Record<string, string | string[] | undefined>;

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request',
  401: 'invalid_api_key',
  402: 'insufficient_credits',
  403: 'forbidden',
  404: 'not_found',
  408: 'request_timeout',
  413: 'request_too_large',
  429: 'rate_limit_exceeded',
  502: 'upstream_error',
  503: 'unavailable',
  504: 'upstream_timeout',
};

function codeFor(status: number, given: unknown): ErrorCode {
  if (typeof given === 'string' && given in ERROR_TABLE) return given as ErrorCode;
  return BY_STATUS[status] ?? (status >= 500 ? 'upstream_error' : 'invalid_request');
}

/** "3h 12m", "42s", "1d 2h": the two largest units. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const parts: [number, string][] = [
    [Math.floor(s / 86_400), 'd'],
    [Math.floor((s % 86_400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const shown = parts.filter(([n]) => n > 0).slice(0, 2);
  return shown.length ? shown.map(([n, u]) => `${n}${u}`).join(' ') : '0s';
}

/** OpenAI's reset headers look like "1s", "6m0s", "12ms", "1h2m3s". */
export function parseResetDuration(text: string | null): number | null {
  if (!text) return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = false;
  for (const m of text.matchAll(re)) {
    matched = true;
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
  }
  return matched ? total : null;
}

function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function retryHint(headers: Headers, now: Date): string {
  const rl = rateLimitFrom(headers);
  const seconds = rl.retryAfterSec ?? parseResetDuration(rl.resetTokens) ?? parseResetDuration(rl.resetRequests);
  if (seconds === null) return '';
  const at = new Date(now.getTime() + seconds * 1000);
  const when = seconds >= 86_400 ? at.toISOString().replace(/\.\d+Z$/, 'Z') : at.toISOString().slice(11, 19) + ' UTC';
  return ` Try again in ${humanDuration(seconds)} (at ${when}).`;
}

/** Builds the error for a response with status >= 400 (or an error event mid-stream). */
export function proxyError(status: number, body: unknown, headers: Headers, lead?: string, now = new Date()): GatewayError {
  const err = isRecord(body) && isRecord(body.error) ? body.error : {};
  const code = codeFor(status, err.code);
  const given = typeof err.message === 'string' && err.message.trim() ? sentence(err.message) : null;
  const details = { status, proxy_code: typeof err.code === 'string' ? err.code : null };
  const say = (text: string) => new GatewayError(code, lead ? `${sentence(lead)}: ${text}` : text, { details, param: typeof err.param === 'string' ? err.param : null });
  switch (ERROR_TABLE[code].status) {
    case 401:
      return say(`The gateway did not accept the API key: ${given ?? 'it is missing, unknown, revoked or expired.'}`);
    case 402:
      return say(`${given ?? 'The credits or budget of this key are used up.'} Add credits or raise the budget to continue.`);
    case 403:
      return say(`${given ?? 'This key may not do that.'}${code === 'model_not_allowed' ? ' Pick a model this key may use (--model, or /model in a chat).' : ''}`);
    case 429:
      return say(`${given ?? 'Too many requests for this key.'}${retryHint(headers, now)}`);
    default:
      if (status >= 500) return say(`The gateway could not get an answer (HTTP ${status}): ${given ?? 'no details given.'}`);
      return say(given ?? `The gateway refused the request (HTTP ${status}).`);
  }
}
