// gatewayctl quotas list|get|set|reset: daily and monthly token quotas per key.
import type { Command } from 'commander';
import { type KeyQuota, getQuota, listQuotas, resetQuota, setQuota, type QuotaState } from '../../../shared/services/quotas.js';
import { usageError } from '../../../shared/errors.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import type { Output } from '../../output.js';
import { intArg } from '../../parse.js';

function stateView(s: QuotaState) {
  return { limit: s.limit, used: s.used, remaining: s.remaining, resets_at: s.resetsAt.toISOString(), counted_since: s.since.toISOString() };
}

export function quotaView(q: KeyQuota) {
  return { key_id: q.key.id, key_name: q.key.name, org_id: q.key.orgId, daily: stateView(q.daily), monthly: stateView(q.monthly) };
}

const cell = (s: QuotaState) => (s.limit === null ? `${s.used} (no quota)` : `${s.used} / ${s.limit}`);

function showQuota(out: Output, q: KeyQuota): void {
  const line = (s: QuotaState) =>
    s.limit === null ? `${s.used} tokens used, no quota` : `${s.used} of ${s.limit} tokens used, ${s.remaining} left; resets ${s.resetsAt.toISOString()}`;
  out.fields([
    ['key', `${q.key.id} (${q.key.name})`],
    ['daily', line(q.daily)],
    ['monthly', line(q.monthly)],
  ]);
}

export function registerQuotas(program: Command, app: App): void {
  const quotas = program.command('quotas').description('daily and monthly token quotas per key (UTC windows)');

  quotas
    .command('list')
    .option('--org <org>', 'only keys of this org')
    .description('every key with its quotas, tokens used and what is left')
    .action(
      action(app, async ({ cmd, out }: Run, flags: { org?: string }) => {
        const rows = await listQuotas(await app.services(cmd), flags);
        out.result(rows.map(quotaView), () =>
          out.table(
            ['key', 'name', 'today', 'this month', 'daily resets'],
            rows.map((q) => [q.key.id, q.key.name, cell(q.daily), cell(q.monthly), q.daily.resetsAt.toISOString()]),
          ),
        );
      }),
    );

  quotas
    .command('get')
    .argument('<key>', 'key id')
    .description("a key's quotas: limit, used, remaining and reset time")
    .action(
      action(app, async ({ cmd, out }: Run, ref: string) => {
        const q = await getQuota(await app.services(cmd), ref);
        out.result(quotaView(q), () => showQuota(out, q));
      }),
    );

  quotas
    .command('set')
    .argument('<key>', 'key id')
    .option('--daily-tokens <n>', 'tokens per UTC day (0 removes the quota)', intArg)
    .option('--monthly-tokens <n>', 'tokens per UTC month (0 removes the quota)', intArg)
    .description("set a key's token quotas")
    .addHelpText('after', '\nExample:\n  gatewayctl quotas set k1a2b3c4d5e6 --daily-tokens 100000 --monthly-tokens 2000000')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, flags: { dailyTokens?: number; monthlyTokens?: number }) => {
        if (flags.dailyTokens === undefined && flags.monthlyTokens === undefined) throw usageError('pass --daily-tokens and/or --monthly-tokens');
        const q = await setQuota(await app.services(cmd), ref, flags);
        out.result(quotaView(q), () => {
          out.success(`quotas of key ${q.key.id} set`);
          showQuota(out, q);
        });
      }),
    );

  quotas
    .command('reset')
    .argument('<key>', 'key id')
    .option('--daily', "zero today's window")
    .option('--monthly', "zero this month's window")
    .description('start the current window afresh (audited; the proxy sees it on its next refresh)')
    .addHelpText('after', '\nExample:\n  gatewayctl quotas reset k1a2b3c4d5e6 --daily')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, flags: { daily?: boolean; monthly?: boolean }) => {
        if (Boolean(flags.daily) === Boolean(flags.monthly)) throw usageError('pass exactly one of --daily or --monthly');
        const window = flags.daily ? 'day' : 'month';
        const q = await resetQuota(await app.services(cmd), ref, window);
        out.result(quotaView(q), () => out.success(`${flags.daily ? 'daily' : 'monthly'} quota of key ${q.key.id} reset`));
      }),
    );
}
