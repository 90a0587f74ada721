import { usageError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const DURATION_RE = /^(\d+)(ms|s|m|h|d|w)$/;

/** Parses durations like 30s, 15m, 1h, 30d, 2w. */
export function parseDuration(text: string, param = 'duration'): number {
  const m = DURATION_RE.exec(text.trim());
  if (!m) throw usageError(`invalid ${param} '${text}': use a number and a unit (ms, s, m, h, d, w), e.g. 30d`, param);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

// ISO-8601 only: a date (2026-12-31), or a date and time with an optional zone. `new Date()`
// alone also takes V8's legacy forms, so a duration typed without its unit was misread as a
// year ('90' became 1990, '7' 2001) and `usage summary --since 90` reported all time.
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** An ISO-8601 instant; `hint` ends the error message (what else the option takes). */
export function parseTimestamp(text: string, param = 'time', hint = ''): Date {
  const t = text.trim();
  const d = ISO_RE.test(t) ? new Date(t) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime())) throw usageError(`invalid ${param} '${text}': use an ISO-8601 date such as 2026-12-31T00:00:00Z${hint}`, param);
  return d;
}

/** A duration or an ISO instant's error hint: a bare number was most likely a duration without its unit. */
export function durationHint(text: string): string {
  const t = text.trim();
  return /^\d+$/.test(t) ? `, or a duration such as ${t}d (a duration needs its unit: ${t}d for ${t} days)` : ', or a duration such as 30d';
}

/** "7d" means seven days ago; an ISO date means that instant. */
export function parseSince(text: string, now = Date.now(), param = 'since'): Date {
  return DURATION_RE.test(text.trim()) ? new Date(now - parseDuration(text, param)) : parseTimestamp(text, param, durationHint(text));
}

/** Go-style short duration used in x-ratelimit-reset-* headers: 12ms, 1s, 6m0s, 2h3m4s. */
export function formatResetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  let s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
