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

function put(h: Record<string, string>, metric: 'requests' | 'tokens', s: CounterState | undefined, now: number): void {
  if (!s) return;
  h[`x-ratelimit-limit-${metric}`] = String(s.counter.max);
  h[`x-ratelimit-remaining-${metric}`] = String(Math.max(0, s.remaining));
  if (s.resetsAt !== null) h[`x-ratelimit-reset-${metric}`] = formatResetDuration(s.resetsAt - now);
}

export function rateLimitHeaders(states: readonly CounterState[], now: number, into: Record<string, string> = {}): Record<string, string> {
  if (states.length === 0) return into;
  put(into, 'requests', tightest(states, 'requests'), now);
  put(into, 'tokens', tightest(states, 'tokens'), now);
  return into;
}
