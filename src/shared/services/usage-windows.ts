// Calendar windows (day, month) are UTC-aligned; minute and hour windows are rolling
// (DESIGN.md §4). Rollups are keyed by UTC day strings, so every boundary here is a UTC midnight.
import type { Window } from './limits.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** 'YYYY-MM-DD' of the UTC day holding `d`: the key of usage_daily rows. */
export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function startOfUtcDay(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

export function startOfUtcMonth(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

export function nextUtcDay(d: Date): Date {
  return new Date(startOfUtcDay(d).getTime() + DAY_MS);
}

export function nextUtcMonth(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}

export function isDayAligned(d: Date): boolean {
  return d.getTime() % DAY_MS === 0;
}

/** Where the window that holds `now` begins; null for 'total' (all time). */
export function windowStart(window: Window, now: Date): Date | null {
  switch (window) {
    case 'minute':
      return new Date(now.getTime() - MINUTE_MS);
    case 'hour':
      return new Date(now.getTime() - HOUR_MS);
    case 'day':
      return startOfUtcDay(now);
    case 'month':
      return startOfUtcMonth(now);
    case 'total':
      return null;
  }
}

/** When a calendar window starts afresh; null for rolling and total windows, which never jump to zero. */
export function windowResetsAt(window: Window, now: Date): Date | null {
  if (window === 'day') return nextUtcDay(now);
  if (window === 'month') return nextUtcMonth(now);
  return null;
}

/** The later of two window starts (null = the beginning of time). */
export function laterStart(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a > b ? a : b;
}
