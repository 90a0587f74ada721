// gatewayctl usage summary|export|prune.
import type { Command } from 'commander';
import { parseSince } from '../../../shared/duration.js';
import { checkPruneBefore, countEventsBefore, pruneUsage, SUMMARY_GROUPS, type SummaryGroup, usageSummary } from '../../../shared/services/usage.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { choiceArg } from '../../parse.js';
import { registerUsageExport } from './export.js';
import { totalsView, usd } from './views.js';

interface SummaryFlags {
  org?: string;
  key?: string;
  user?: string;
  since?: string;
  by?: SummaryGroup;
}

export function registerUsage(program: Command, app: App): void {
  const usage = program.command('usage').description('usage: summaries from the daily rollups, raw event export and pruning');

  usage
    .command('summary')
    .option('--org <org>', 'only this org')
    .option('--key <key>', 'only this key')
    .option('--user <user>', 'only this user')
    .option('--since <when>', 'a duration such as 30d or an ISO date (default: all time)')
    .option('--by <group>', 'one row per day, model, key or user', choiceArg(SUMMARY_GROUPS))
    .description('requests, tokens and cost')
    .addHelpText('after', '\nExamples:\n  gatewayctl usage summary --since 30d\n  gatewayctl usage summary --org acme --since 7d --by model --json')
    .action(
      action(app, async ({ cmd, out }: Run, flags: SummaryFlags) => {
        const ctx = await app.services(cmd);
        const since = flags.since ? parseSince(flags.since, ctx.now().getTime()) : undefined;
        const s = await usageSummary(ctx, { org: flags.org, key: flags.key, user: flags.user, since, by: flags.by });
        const view = {
          since: since ? since.toISOString() : null,
          ...totalsView(s.totals),
          ...(s.rows && s.by ? { by: s.by, rows: s.rows.map((r) => ({ [s.by!]: r.group, ...totalsView(r) })) } : {}),
        };
        out.result(view, () => {
          if (s.rows && s.by) {
            out.table(
              [s.by, 'requests', 'prompt', 'completion', 'total tokens', 'cost'],
              s.rows.map((r) => [r.group ?? '(none)', r.requests, r.promptTokens, r.completionTokens, r.totalTokens, usd(r.costMicros)]),
            );
          }
          out.fields([
            ['since', view.since ?? 'all time'],
            ['requests', s.totals.requests],
            ['prompt tokens', s.totals.promptTokens],
            ['completion tokens', s.totals.completionTokens],
            ['total tokens', s.totals.totalTokens],
            ['cost', usd(s.totals.costMicros)],
          ]);
        });
      }),
    );

  registerUsageExport(usage, app);

  usage
    .command('prune')
    .requiredOption('--before <date>', 'delete raw events older than this: an ISO date, or a duration such as 90d')
    .description('delete old raw events; the daily rollups (and so every summary) stay')
    .addHelpText('after', '\nExample:\n  gatewayctl usage prune --before 90d --yes')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, flags: { before: string }) => {
        const ctx = await app.services(cmd);
        const before = parseSince(flags.before, ctx.now().getTime(), 'before');
        checkPruneBefore(ctx, before);
        const n = await countEventsBefore(ctx, before);
        const keeping = n.keptDays.length ? `; the raw events of ${n.keptDays.join(', ')} stay (quota resets read them)` : '';
        await prompt.confirmDestructive(`delete ${n.events} raw usage events older than ${before.toISOString()} (rollups stay${keeping})`);
        const r = await pruneUsage(ctx, before);
        out.result({ before: r.before.toISOString(), deleted: r.deleted, kept_days: r.keptDays }, () =>
          out.success(`${r.deleted} raw events older than ${r.before.toISOString()} deleted; rollups kept${r.keptDays.length ? `; raw events of ${r.keptDays.join(', ')} kept (quota resets read them)` : ''}`),
        );
      }),
    );
}
