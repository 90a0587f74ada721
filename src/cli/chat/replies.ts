// Reading the gateway's answers at the edge: untyped JSON and headers in, plain typed values out.
// The gateway-specific fields (gateway_usage, GET /v1/usage) are read leniently: a field the
// client does not know is ignored, a missing one is null, so a newer proxy never breaks chat.

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** USD, when the gateway or upstream said. */
  costUsd: number | null;
}

export interface LimitLeft {
  scope: string;
  metric: string;
  window: string;
  limit: number | null;
  used: number | null;
  remaining: number | null;
  resetsAt: string | null;
}

export interface CreditLeft {
  scope: string;
  balanceUsd: number;
}

export interface GatewayUsage {
  costUsd: number | null;
  limits: LimitLeft[];
  credits: CreditLeft[];
}

export interface UsageReport extends GatewayUsage {
  /** The charge of the request asked about (GET /v1/usage?request_id=…), when known. */
  request: GatewayUsage | null;
  /** Totals the gateway reports for this key (requests, tokens, cost), if any. */
  totals: Partial<Record<'requests' | 'total_tokens' | 'prompt_tokens' | 'completion_tokens' | 'cost_usd', number>>;
}

export interface RateLimitInfo {
  limitRequests: number | null;
  remainingRequests: number | null;
  resetRequests: string | null;
  limitTokens: number | null;
  remainingTokens: number | null;
  resetTokens: string | null;
  retryAfterSec: number | null;
}

export interface ChatReply {
  content: string;
  model: string;
  finishReason: string | null;
  usage: TokenUsage | null;
  gatewayUsage: GatewayUsage | null;
  rateLimit: RateLimitInfo;
  /** The gateway's x-request-id, to look the charge of a streamed answer up afterwards. */
  requestId: string | null;
  /** Ctrl-C (or another abort) ended the answer early. */
  interrupted: boolean;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? new Date(v).toISOString() : null);

export function parseTokenUsage(v: unknown): TokenUsage | null {
  if (!isRecord(v)) return null;
  const prompt = num(v.prompt_tokens) ?? 0;
  const completion = num(v.completion_tokens) ?? 0;
  return { promptTokens: prompt, completionTokens: completion, totalTokens: num(v.total_tokens) ?? prompt + completion, costUsd: num(v.cost_usd) ?? num(v.cost) };
}

function parseLimit(v: unknown): LimitLeft | null {
  if (!isRecord(v)) return null;
  return {
    scope: str(v.scope) ?? '',
    metric: str(v.metric) ?? '',
    window: str(v.window) ?? '',
    limit: num(v.limit) ?? num(v.max),
    used: num(v.used),
    remaining: num(v.remaining),
    resetsAt: str(v.resets_at) ?? str(v.reset_at) ?? str(v.resetsAt),
  };
}

function parseCredits(v: unknown): CreditLeft[] {
  const list = Array.isArray(v) ? v : isRecord(v) ? [v] : [];
  return list.flatMap((c) => {
    if (!isRecord(c)) return [];
    const balance = num(c.balance_usd) ?? num(c.remaining_usd);
    return balance === null ? [] : [{ scope: str(c.scope) ?? '', balanceUsd: balance }];
  });
}

export function parseGatewayUsage(v: unknown): GatewayUsage | null {
  if (!isRecord(v)) return null;
  const limits = Array.isArray(v.limits) ? v.limits.map(parseLimit).filter((l): l is LimitLeft => l !== null) : [];
  return { costUsd: num(v.cost_usd), limits, credits: parseCredits(v.credits) };
}

export function parseUsageReport(v: unknown): UsageReport {
  const base = parseGatewayUsage(v) ?? { costUsd: null, limits: [], credits: [] };
  const totals: UsageReport['totals'] = {};
  const source = isRecord(v) && isRecord(v.usage) ? v.usage : isRecord(v) ? v : {};
  for (const k of ['requests', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost_usd'] as const) {
    const n = num(source[k]);
    if (n !== null) totals[k] = n;
  }
  return { ...base, totals, request: isRecord(v) ? parseGatewayUsage(v.request) : null };
}

export function parseCompletion(v: unknown, requestedModel: string): Omit<ChatReply, 'rateLimit' | 'interrupted' | 'requestId'> {
  const choice = isRecord(v) && Array.isArray(v.choices) && isRecord(v.choices[0]) ? v.choices[0] : {};
  const message = isRecord(choice.message) ? choice.message : {};
  const content = typeof message.content === 'string' ? message.content : '';
  return {
    content,
    model: isRecord(v) && typeof v.model === 'string' ? v.model : requestedModel,
    finishReason: str(choice.finish_reason),
    usage: isRecord(v) ? parseTokenUsage(v.usage) : null,
    gatewayUsage: isRecord(v) ? parseGatewayUsage(v.gateway_usage) : null,
  };
}

type Headers = Record<string, string | string[] | undefined>;

export function header(h: Headers, name: string): string | null {
  const v = h[name];
  return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
}

export function rateLimitFrom(h: Headers): RateLimitInfo {
  return {
    limitRequests: num(header(h, 'x-ratelimit-limit-requests')),
    remainingRequests: num(header(h, 'x-ratelimit-remaining-requests')),
    resetRequests: header(h, 'x-ratelimit-reset-requests'),
    limitTokens: num(header(h, 'x-ratelimit-limit-tokens')),
    remainingTokens: num(header(h, 'x-ratelimit-remaining-tokens')),
    resetTokens: header(h, 'x-ratelimit-reset-tokens'),
    retryAfterSec: num(header(h, 'retry-after')),
  };
}
