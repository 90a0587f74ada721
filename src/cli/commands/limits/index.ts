// gatewayctl limits get|set on key:, user: and org: scopes, with current use next to each limit.
import type { Command } from 'commander';
import type { Limit } from '../../../shared/db/schema.js';
import { formatMicros, microsToUsdNumber } from '../../../shared/money.js';
import { type LimitUse, scopeLimitsWithUse } from '../../../shared/services/limit-usage.js';
import { type LimitFlags, limitView, limitsFromFlags } from '../../../shared/services/limits.js';
import { setScopeLimits } from '../../../shared/services/limits-admin.js';
import { scopeText } from '../../../shared/services/scopes.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { addLimitOptions } from '../keys/options.js';

const amount = (metric: string, n: number) => (metric === 'cost' ? microsToUsdNumber(n) : n);
const shown = (metric: string, n: number) => (metric === 'cost' ? `$${formatMicros(n)}` : String(n));

export function limitUseView(u: LimitUse) {
  const m = u.limit.metric;
  return {
    ...limitView(u.limit),
    used: amount(m, u.used),
    remaining: amount(m, u.remaining),
    counted_since: u.since ? u.since.toISOString() : null,
    resets_at: u.resetsAt ? u.resetsAt.toISOString() : null,
    rolling: u.limit.window === 'minute' || u.limit.window === 'hour',
  };
}

const row = (u: LimitUse) => [
  u.limit.model || 'all models',
  u.limit.metric,
  u.limit.window,
  shown(u.limit.metric, u.limit.max),
  shown(u.limit.metric, u.used),
  shown(u.limit.metric, u.remaining),
  u.resetsAt ? u.resetsAt.toISOString() : u.limit.window === 'total' ? 'never' : 'rolling',
];

interface SetFlags extends Omit<LimitFlags, 'budgetUsd'> {
  budget?: string;
}

export function registerLimits(program: Command, app: App): void {
  const limits = program
    .command('limits')
    .description('rate limits, token limits and cost budgets on a scope: key:<id>, user:<user> or org:<org>');

  limits
    .command('get')
    .argument('<scope>', 'key:<id>, user:<id|username|email> or org:<id|name>')
    .description('the limits of a scope with what is used now (minute/hour windows are rolling)')
    .addHelpText('after', '\nExamples:\n  gatewayctl limits get org:acme\n  gatewayctl limits get key:k1a2b3c4d5e6 --json')
    .action(
      action(app, async ({ cmd, out }: Run, text: string) => {
        const { scope, uses } = await scopeLimitsWithUse(await app.services(cmd), text);
        out.result({ scope: scopeText(scope), limits: uses.map(limitUseView) }, () => {
          out.line(`${out.c.bold(scopeText(scope))} (${scope.label})`);
          out.table(['model', 'metric', 'window', 'max', 'used', 'remaining', 'resets'], uses.map(row));
        });
      }),
    );

  addLimitOptions(limits.command('set').argument('<scope>', 'key:<id>, user:<id|username|email> or org:<org>'))
    .option('--model <model>', 'narrow these limits to one model')
    .description('set limits on a scope (a limit set to 0 is removed)')
    .addHelpText(
      'after',
      '\nExamples:\n  gatewayctl limits set org:acme --rpm 600 --tpd 5000000\n  gatewayctl limits set user:alice --budget 20 --budget-period month\n  gatewayctl limits set key:k1a2b3c4d5e6 --model openai/gpt-4o --tpm 20000',
    )
    .action(
      action(app, async ({ cmd, out }: Run, text: string, flags: SetFlags) => {
        const specs = limitsFromFlags({ ...flags, budgetUsd: flags.budget });
        const { scope, limits: rows } = await setScopeLimits(await app.services(cmd), text, specs);
        out.result({ scope: scopeText(scope), limits: rows.map(limitView) }, () => {
          out.success(`limits of ${scopeText(scope)} (${scope.label}) set`);
          for (const l of rows) out.line(`  ${describe(l)}`);
        });
      }),
    );
}

function describe(l: Limit): string {
  return `${l.metric}/${l.window}${l.model ? ` [${l.model}]` : ''} ≤ ${shown(l.metric, l.max)}`;
}
