// Window arithmetic shared by both backends, the snapshot and the usage queries. Calendar
// windows are UTC-aligned; minute and hour windows are rolling, counted in buckets.
import type { Window } from '../services/limits.js';

export const ROLLING_MS: Partial<Record<Window, number>> = { minute: 60_000, hour: 3_600_000 };

/**
 * Bucket width of a rolling window. A request counts for between W and W + one bucket
 * (1 s for minute windows, 10 s for hour windows): never more admitted than the limit, at
 * worst a refusal up to one bucket longer than an exact sliding log would give.
 */
export const BUCKET_MS: Partial<Record<Window, number>> = { minute: 1_000, hour: 10_000 };

export const isRolling = (w: Window): boolean => w === 'minute' || w === 'hour';

/**
 * The UTC day and month containing the last instant asked about. Every request asks for these
 * several times (each counter's window start and reset); building Date objects each time was a
 * measurable share of the proxy's CPU, so they are computed again only when asked about another day.
 */
interface Calendar {
  dayStart: number;
  dayEnd: number;
  monthStart: number;
  monthEnd: number;
}

let cal: Calendar = { dayStart: 0, dayEnd: -1, monthStart: 0, monthEnd: -1 };

function calendarAt(now: number): Calendar {
  if (now >= cal.dayStart && now < cal.dayEnd) return cal;
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  cal = { dayStart: Date.UTC(y, m, day), dayEnd: Date.UTC(y, m, day + 1), monthStart: Date.UTC(y, m, 1), monthEnd: Date.UTC(y, m + 1, 1) };
  return cal;
}

export function utcDayStart(now: number): number {
  return calendarAt(now).dayStart;
}

export function utcMonthStart(now: number): number {
  return calendarAt(now).monthStart;
}

/** Start of the calendar window containing `now`: UTC day or month; 0 for total and rolling windows. */
export function calendarStart(window: Window, now: number): number {
  if (window === 'day') return utcDayStart(now);
  if (window === 'month') return utcMonthStart(now);
  return 0;
}

/** End of the calendar window containing `now`, or null for total (never) and rolling windows. */
export function calendarEnd(window: Window, now: number): number | null {
  if (window === 'day') return calendarAt(now).dayEnd;
  if (window === 'month') return calendarAt(now).monthEnd;
  return null;
}

/** The window's start for counting: the calendar start, or a later quota reset. */
export function effectiveSince(window: Window, since: number | undefined, now: number): number {
  return Math.max(calendarStart(window, now), since ?? 0);
}

/** 'YYYY-MM-DD' (UTC) of an instant: the usage_daily `day` key. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * When a rolling window has freed enough for `amount` more, given its buckets oldest first
 * (`[bucketIndex, amount]`) and what stays counted regardless (in-flight reservations).
 * Returns null when even an empty window could not fit `amount`.
 */
export function rollingFreeAt(
  buckets: readonly (readonly [number, number])[],
  pinned: number,
  amount: number,
  max: number,
  window: Window,
): number | null {
  const width = BUCKET_MS[window]!;
  const span = ROLLING_MS[window]!;
  if (pinned + amount > max) return null;
  let used = pinned + buckets.reduce((s, [, a]) => s + a, 0);
  for (const [idx, a] of buckets) {
    used -= a;
    if (used + amount <= max && used < max) return (idx + 1) * width + span;
  }
  return null;
}
