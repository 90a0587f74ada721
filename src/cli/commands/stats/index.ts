// gatewayctl stats: the gateway at a glance.
import type { Command } from 'commander';
import { microsToUsdNumber } from '../../../shared/money.js';
import { gatewayStats, type TopRow } from '../../../shared/services/stats.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { periodView, usd } from '../usage/views.js';

const topView = (r: TopRow) => ({ id: r.id, name: r.name, requests: r.requests, total_tokens: r.totalTokens, cost_usd: microsToUsdNumber(r.costMicros) });

export function registerStats(program: Command, app: App): void {
  program
    .command('stats')
    .description('orgs, users, keys by status, requests/tokens/cost today and this month (UTC), top keys and models')
    .action(
      action(app, async ({ cmd, out }: Run) => {
        const s = await gatewayStats(await app.services(cmd));
        const view = {
          orgs: s.orgs,
          users: s.users,
          keys: s.keys,
          today: periodView(s.today),
          month: periodView(s.month),
          top_keys: s.topKeys.map(topView),
          top_models: s.topModels.map(topView),
        };
        out.result(view, () => {
          out.fields([
            ['orgs', s.orgs],
            ['users', `${s.users.active} active, ${s.users.disabled} disabled`],
            ['keys', `${s.keys.active} active, ${s.keys.disabled} disabled, ${s.keys.revoked} revoked, ${s.keys.expired} expired`],
            ['today', `${s.today.requests} requests, ${s.today.totalTokens} tokens, ${usd(s.today.costMicros)}`],
            ['this month', `${s.month.requests} requests, ${s.month.totalTokens} tokens, ${usd(s.month.costMicros)}`],
          ]);
          out.line();
          out.line(out.c.bold('top keys this month'));
          out.table(['key', 'name', 'requests', 'tokens', 'cost'], s.topKeys.map((r) => [r.id, r.name, r.requests, r.totalTokens, usd(r.costMicros)]));
          out.line(out.c.bold('top models this month'));
          out.table(['model', 'requests', 'tokens', 'cost'], s.topModels.map((r) => [r.id, r.requests, r.totalTokens, usd(r.costMicros)]));
        });
      }),
    );
}
