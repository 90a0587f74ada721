// OpenAI's x-ratelimit-* headers, synthesized from the gateway's own counters: for requests and
// for tokens, the counter with the least room left speaks (C.4 of the protocol notes).
import { formatResetDuration } from '../shared/duration.js';
import type { CounterState } from '../shared/limits/types.js';

function tightest(states: readonly CounterState[], metric: 'requests' | 'tokens'): CounterState | undefined {
  let best: CounterState | undefined;
  for (const s of states) {
    if (s.counter.metric !== metric) continue;
    if (!best || s.remaining < best.remaining) best = s;
  }
  return best;
}

// Header names as constants: names built by a template per request were concatenated and then
// looked up in V8's string table on every property store.
const NAMES = {
  requests: ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests'],
  tokens: ['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens'],
} as const;

function put(h: Record<string, string>, metric: 'requests' | 'tokens', s: CounterState | undefined, now: number): void {
  if (!s) return;
  const names = NAMES[metric];
  h[names[0]] = String(s.counter.max);
  h[names[1]] = String(Math.max(0, s.remaining));
  if (s.resetsAt !== null) h[names[2]] = formatResetDuration(s.resetsAt - now);
}

export function rateLimitHeaders(states: readonly CounterState[], now: number, into: Record<string, string> = {}): Record<string, string> {
  if (states.length === 0) return into;
  put(into, 'requests', tightest(states, 'requests'), now);
  put(into, 'tokens', tightest(states, 'tokens'), now);
  return into;
}
