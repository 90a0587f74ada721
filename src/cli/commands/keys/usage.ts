// gatewayctl keys usage (recent events, paged) and keys usage-summary (today, month, all time).
import type { Command } from 'commander';
import type { UsageEvent } from '../../../shared/db/schema.js';
import { parseSince } from '../../../shared/duration.js';
import { formatMicros, microsToUsdNumber } from '../../../shared/money.js';
import { keyUsageSummary, type PeriodUsage } from '../../../shared/services/key-usage.js';
import { keyUsageEvents } from '../../../shared/services/usage.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { positiveIntArg } from '../../parse.js';
import { periodView, usd } from '../usage/views.js';

export function eventView(e: UsageEvent) {
  return {
    request_id: e.requestId,
    ts: e.ts.toISOString(),
    org_id: e.orgId,
    user_id: e.userId,
    key_id: e.keyId,
    model: e.model,
    provider: e.provider,
    prompt_tokens: e.promptTokens,
    completion_tokens: e.completionTokens,
    total_tokens: e.totalTokens,
    cost_usd: microsToUsdNumber(e.costMicros),
    status: e.status,
    error_code: e.errorCode,
    latency_ms: e.latencyMs,
    ttfb_ms: e.ttfbMs,
    stream: e.stream,
    usage_source: e.usageSource,
  };
}

const periodRow = (label: string, p: PeriodUsage) => [label, p.requests, p.promptTokens, p.completionTokens, p.totalTokens, usd(p.costMicros), p.topModel, p.avgTokensPerRequest];

export function registerKeysUsage(keys: Command, app: App): void {
  keys
    .command('usage')
    .argument('<key>', 'key id')
    .option('--since <when>', 'a duration such as 7d or an ISO date', '7d')
    .option('--limit <n>', 'events per page (default 50)', positiveIntArg)
    .option('--cursor <cursor>', 'the next_cursor of a previous page')
    .description("a key's recent requests, newest first")
    .addHelpText('after', '\nExamples:\n  gatewayctl keys usage k1a2b3c4d5e6 --since 24h --limit 20\n  gatewayctl keys usage k1a2b3c4d5e6 --json --cursor <next_cursor>')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, flags: { since: string; limit?: number; cursor?: string }) => {
        const ctx = await app.services(cmd);
        const since = parseSince(flags.since, ctx.now().getTime());
        const page = await keyUsageEvents(ctx, ref, { since, limit: flags.limit, cursor: flags.cursor });
        out.result({ key_id: page.keyId, since: since.toISOString(), events: page.events.map(eventView), next_cursor: page.nextCursor }, () => {
          out.table(
            ['time', 'model', 'status', 'prompt', 'completion', 'cost', 'latency ms', 'stream'],
            page.events.map((e) => [e.ts.toISOString(), e.model, e.status, e.promptTokens, e.completionTokens, `$${formatMicros(e.costMicros)}`, e.latencyMs, e.stream ? 'yes' : 'no']),
          );
          if (page.nextCursor) out.line(out.c.dim(`more: --cursor ${page.nextCursor}`));
        });
      }),
    );

  keys
    .command('usage-summary')
    .argument('<key>', 'key id')
    .description("a key's requests, tokens and cost today, this month and all time (UTC), with its most used model")
    .action(
      action(app, async ({ cmd, out }: Run, ref: string) => {
        const s = await keyUsageSummary(await app.services(cmd), ref);
        const view = { key_id: s.key.id, today: periodView(s.today), month: periodView(s.month), all_time: periodView(s.allTime) };
        out.result(view, () => {
          out.line(`usage of key ${out.c.bold(s.key.id)} (${s.key.name})`);
          out.table(
            ['period', 'requests', 'prompt', 'completion', 'total tokens', 'cost', 'top model', 'avg tokens/req'],
            [periodRow('today', s.today), periodRow('this month', s.month), periodRow('all time', s.allTime)],
          );
        });
      }),
    );
}
