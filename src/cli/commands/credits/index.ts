// gatewayctl credits add|balance: the prepaid ledger of an org, user or key.
import type { Command } from 'commander';
import { usageError } from '../../../shared/errors.js';
import { formatMicros, microsToUsdNumber, usdToMicros } from '../../../shared/money.js';
import { addScopeCredits, allBalances, type ScopeBalance, scopeBalance } from '../../../shared/services/credits-admin.js';
import { scopeText } from '../../../shared/services/scopes.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';

export function balanceView(b: ScopeBalance) {
  return { scope: scopeText(b.scope), balance_usd: microsToUsdNumber(b.balance), balance_micros: b.balance, entries: b.entries };
}

const USD_RE = /^-?\d+(\.\d+)?$/;

export function registerCredits(program: Command, app: App): void {
  const credits = program.command('credits').description('prepaid credits: a ledger of top-ups and charges per org, user or key');

  credits
    .command('add')
    .argument('<scope>', 'key:<id>, user:<user> or org:<org>')
    .argument('<usd>', 'USD amount, e.g. 25 or 0.50; negative takes credits back (needs --yes and --reason)')
    .option('--reason <text>', 'why (kept in the ledger and the audit log)')
    .description('top up (or correct) a balance')
    .addHelpText('after', '\nExamples:\n  gatewayctl credits add org:acme 100 --reason "invoice 2026-11"\n  gatewayctl credits add key:k1a2b3c4d5e6 -2.5 --reason "refund double charge" --yes')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, text: string, amount: string, flags: { reason?: string }) => {
        if (!USD_RE.test(amount.trim())) throw usageError(`invalid amount '${amount}': use a USD amount such as 25 or -3.50`, 'usd');
        const micros = usdToMicros(amount);
        if (micros < 0) {
          if (!flags.reason?.trim()) throw usageError('a negative amount needs --reason', 'reason');
          await prompt.confirmDestructive(`take $${formatMicros(-micros)} of credits from ${text}`);
        }
        const r = await addScopeCredits(await app.services(cmd), text, micros, flags.reason ?? null);
        out.result({ ...balanceView(r), added_usd: microsToUsdNumber(micros) }, () =>
          out.success(`${micros < 0 ? 'took' : 'added'} $${formatMicros(Math.abs(micros))} ${micros < 0 ? 'from' : 'to'} ${scopeText(r.scope)} (${r.resolved.label}); balance $${formatMicros(r.balance)}`),
        );
      }),
    );

  credits
    .command('balance')
    .argument('[scope]', 'key:<id>, user:<user> or org:<org>; without it, every scope with a ledger')
    .description('exact balances')
    .action(
      action(app, async ({ cmd, out }: Run, text: string | undefined) => {
        const ctx = await app.services(cmd);
        if (text) {
          const b = await scopeBalance(ctx, text);
          out.result(balanceView(b), () => out.line(`${scopeText(b.scope)}  $${formatMicros(b.balance)}  (${b.entries} ledger entries)`));
          return;
        }
        const all = await allBalances(ctx);
        out.result(all.map(balanceView), () =>
          out.table(['scope', 'balance', 'entries'], all.map((b) => [scopeText(b.scope), `$${formatMicros(b.balance)}`, b.entries])),
        );
      }),
    );
}
