// JSON shapes of usage numbers (CLI.md: requests, prompt_tokens, completion_tokens,
// total_tokens, cost_usd), shared by usage, keys usage-summary and stats.
import { formatMicros, microsToUsdNumber } from '../../../shared/money.js';
import type { PeriodUsage } from '../../../shared/services/key-usage.js';
import type { Totals } from '../../../shared/services/usage-totals.js';

export function totalsView(t: Totals) {
  return {
    requests: t.requests,
    prompt_tokens: t.promptTokens,
    completion_tokens: t.completionTokens,
    total_tokens: t.totalTokens,
    cost_usd: microsToUsdNumber(t.costMicros),
  };
}

export function periodView(p: PeriodUsage) {
  return { ...totalsView(p), top_model: p.topModel, avg_tokens_per_request: p.avgTokensPerRequest };
}

/** Exact dollars for people: "$0.000123". */
export const usd = (micros: number) => `$${formatMicros(micros)}`;

export const iso = (d: Date | null) => (d ? d.toISOString() : null);
