// Text for people: the usage line after each answer and the /usage report. Pure functions over
// the parsed replies; colour comes from the caller's chalk instance (level 0 under NO_COLOR).
import type { ChalkInstance } from 'chalk';
import type { ChatReply, CreditLeft, LimitLeft, RateLimitInfo, UsageReport } from './replies.js';

const count = (n: number) => n.toLocaleString('en-US');

/** Dollars with enough decimals to show a fraction of a cent, without trailing zeros. */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0';
  const fixed = Math.abs(usd) >= 1 ? usd.toFixed(2) : usd.toFixed(6).replace(/0+$/, '').replace(/\.$/, '');
  return `$${fixed === '0' ? usd.toExponential(1) : fixed}`;
}

const WINDOW_WORDS: Record<string, string> = {
  minute: 'this minute',
  hour: 'this hour',
  day: 'today',
  month: 'this month',
  total: 'in total',
};

function amount(metric: string, n: number): string {
  if (metric === 'cost') return formatUsd(n);
  const unit = metric === 'requests' ? 'request' : 'token';
  return `${count(n)} ${unit}${n === 1 ? '' : 's'}`;
}

export function describeLimit(l: LimitLeft): string {
  const window = WINDOW_WORDS[l.window] ?? l.window;
  const scope = l.scope && !l.scope.startsWith('key:') ? ` (${l.scope.split(':')[0]})` : '';
  if (l.remaining === null) return `${l.metric} ${window}${scope}`;
  return `${amount(l.metric, l.remaining)} left ${window}${scope}`;
}

function describeCredits(c: CreditLeft): string {
  const scope = c.scope && !c.scope.startsWith('key:') ? ` (${c.scope.split(':')[0]})` : '';
  return `${formatUsd(c.balanceUsd)} credits left${scope}`;
}

function fromHeaders(rl: RateLimitInfo): string[] {
  const out: string[] = [];
  if (rl.remainingTokens !== null) out.push(`${amount('tokens', rl.remainingTokens)} left${rl.resetTokens ? ` (resets in ${rl.resetTokens})` : ''}`);
  if (rl.remainingRequests !== null) out.push(`${amount('requests', rl.remainingRequests)} left${rl.resetRequests ? ` (resets in ${rl.resetRequests})` : ''}`);
  return out;
}

/** What is left: the gateway's own figures when it sent them, else the x-ratelimit-* headers. */
export function remainingParts(reply: Pick<ChatReply, 'gatewayUsage' | 'rateLimit'>, report?: UsageReport | null): string[] {
  const source = report && (report.limits.length || report.credits.length) ? report : reply.gatewayUsage;
  if (source && (source.limits.length || source.credits.length)) {
    return [...source.limits.map(describeLimit), ...source.credits.map(describeCredits)];
  }
  return fromHeaders(reply.rateLimit);
}

/** "mock/echo · 12 in + 30 out = 42 tokens · $0.000021 · 99,958 tokens left today" */
export function usageLine(c: ChalkInstance, reply: ChatReply, report?: UsageReport | null): string {
  const parts = [reply.model];
  const u = reply.usage;
  if (u) parts.push(`${count(u.promptTokens)} in + ${count(u.completionTokens)} out = ${count(u.totalTokens)} tokens`);
  const cost = reply.gatewayUsage?.costUsd ?? report?.request?.costUsd ?? u?.costUsd ?? null;
  if (cost !== null) parts.push(formatUsd(cost));
  parts.push(...remainingParts(reply, report));
  if (reply.interrupted) parts.push('interrupted');
  return c.dim(parts.join(' · '));
}

/** The /usage report: one line per limit and balance, then the totals. */
export function usageReportLines(c: ChalkInstance, report: UsageReport): string[] {
  const lines: string[] = [];
  for (const l of report.limits) {
    const of = l.limit !== null ? ` of ${amount(l.metric, l.limit)}` : '';
    const used = l.used !== null ? `used ${l.metric === 'cost' ? formatUsd(l.used) : count(l.used)}${of}` : '';
    const resets = l.resetsAt ? c.dim(` · resets ${l.resetsAt}`) : '';
    lines.push(`  ${c.bold(`${l.scope || 'key'} ${l.metric}/${l.window}`)}  ${[used, describeLimit(l)].filter(Boolean).join(' · ')}${resets}`);
  }
  for (const cr of report.credits) lines.push(`  ${c.bold(`${cr.scope || 'key'} credits`)}  ${formatUsd(cr.balanceUsd)}`);
  const t = report.totals;
  const totals = [
    t.requests !== undefined ? `${count(t.requests)} requests` : '',
    t.total_tokens !== undefined ? `${count(t.total_tokens)} tokens` : '',
    t.cost_usd !== undefined ? formatUsd(t.cost_usd) : '',
  ].filter(Boolean);
  if (totals.length) lines.push(`  ${c.bold('usage')}  ${totals.join(' · ')}`);
  if (lines.length === 0) lines.push('  no limits or credits apply to this key');
  return lines;
}
