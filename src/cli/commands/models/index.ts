// gatewayctl models list|refresh|price set|price clear: the catalog and its prices (USD per 1M tokens).
import type { Command } from 'commander';
import type { Model } from '../../../shared/db/schema.js';
import { usageError } from '../../../shared/errors.js';
import { formatMicros, microsToUsdNumber, usdToMicros } from '../../../shared/money.js';
import { listModels, type OrgRefresh, refreshModels, type RefreshProgress, clearModelPrice, setModelPrice } from '../../../shared/services/models.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import type { Output } from '../../output.js';
import { positiveIntArg } from '../../parse.js';

/** Prices are stored as micro-dollars per 1M tokens, so USD per 1M is the same number / 10^6. */
export function modelView(m: Model, orgs?: string[]) {
  return {
    id: m.id,
    name: m.name,
    context_length: m.contextLength,
    prompt_usd_per_m: microsToUsdNumber(m.promptPrice),
    completion_usd_per_m: microsToUsdNumber(m.completionPrice),
    request_usd: microsToUsdNumber(m.requestPrice),
    price_overridden: m.priceOverridden,
    source: m.source,
    updated_at: m.updatedAt.toISOString(),
    ...(orgs ? { orgs } : {}),
  };
}

function refreshView(r: OrgRefresh) {
  return { org: r.org.name, org_id: r.org.id, fetched: r.fetched, added: r.added, updated: r.updated, kept_overrides: r.keptOverrides, unpriced: r.unpriced };
}

/** A one-line progress indicator on a terminal's stderr; plain lines otherwise (logs, CI). */
function progressReporter(app: App, out: Output): (p: RefreshProgress) => void {
  const tty = Boolean((app.io.stderr as { isTTY?: boolean }).isTTY);
  return (p) => {
    const text = p.stage === 'fetching' ? `fetching the catalog of ${p.org}` : p.stage === 'saving' ? `saving ${p.models} models of ${p.org}` : `${p.org}: ${p.models} models`;
    const line = `[${p.done}/${p.total}] ${text}`;
    // With --json, stderr carries only the error document, so scripts can parse it.
    if (out.json) return;
    if (tty) app.io.stderr.write(`\r\x1b[2K${line}${p.stage === 'done' && p.done === p.total ? '\n' : ''}`);
    else out.note(line);
  };
}

export function registerModels(program: Command, app: App): void {
  const models = program.command('models').description('model catalog and prices (USD per 1M tokens)');

  models
    .command('list')
    .option('--org <org>', 'only models this org allows')
    .description('models with prices and the orgs that allow them; unknown models follow each org\'s unknown_model_policy')
    .action(
      action(app, async ({ cmd, out }: Run, flags: { org?: string }) => {
        const l = await listModels(await app.services(cmd), flags);
        const view = {
          models: l.models.map((m) => modelView(m.model, m.orgs)),
          orgs: l.orgs.map((o) => ({ id: o.org.id, name: o.org.name, unknown_model_policy: o.org.unknownModelPolicy, models: o.patterns })),
        };
        out.result(view, () => {
          out.table(
            ['model', 'prompt $/1M', 'completion $/1M', 'request $', 'context', 'orgs', 'source'],
            l.models.map(({ model: m, orgs }) => [
              m.id,
              formatMicros(m.promptPrice),
              formatMicros(m.completionPrice),
              formatMicros(m.requestPrice),
              m.contextLength,
              orgs.join(', '),
              m.priceOverridden ? `${m.source} (price set by hand)` : m.source,
            ]),
          );
          for (const o of l.orgs) {
            out.line(`${out.c.bold(o.org.name)}: models ${o.patterns.length ? o.patterns.join(', ') : 'all'}; unknown models: ${o.org.unknownModelPolicy === 'free' ? 'served free' : 'refused'}`);
          }
        });
      }),
    );

  models
    .command('refresh')
    .option('--org <org>', "only this org's upstream (default: every org)")
    .option('--timeout <ms>', 'give up on an upstream after this long (default 15000)', positiveIntArg)
    .description('pull the catalog and prices from the upstream (GET {base_url}/models); prices set by hand are kept')
    .action(
      action(app, async ({ cmd, out }: Run, flags: { org?: string; timeout?: number }) => {
        const rows = await refreshModels(await app.services(cmd), { org: flags.org, timeoutMs: flags.timeout }, progressReporter(app, out));
        out.result(rows.map(refreshView), () => {
          for (const r of rows) {
            out.success(`${r.org.name}: ${r.fetched} models (${r.added} new, ${r.updated} updated, ${r.keptOverrides} hand-set prices kept)`);
            if (r.unpriced.length) out.warn(`${r.unpriced.length} model(s) without a usable price were skipped: ${r.unpriced.slice(0, 5).join(', ')}${r.unpriced.length > 5 ? ', …' : ''}`);
          }
        });
      }),
    );

  const price = models.command('price').description('prices set by hand');
  price
    .command('set')
    .argument('<model>', 'model id, e.g. openai/gpt-4o')
    .requiredOption('--prompt <usd>', 'USD per 1M prompt tokens, e.g. 2.5')
    .requiredOption('--completion <usd>', 'USD per 1M completion tokens, e.g. 10')
    .option('--request <usd>', 'USD per request')
    .description('override a price (kept across refreshes)')
    .addHelpText('after', '\nExample:\n  gatewayctl models price set openai/gpt-4o --prompt 2.5 --completion 10')
    .action(
      action(app, async ({ cmd, out }: Run, id: string, flags: { prompt: string; completion: string; request?: string }) => {
        const amount = (v: string, flag: string) => {
          if (!/^\d+(\.\d+)?$/.test(v.trim())) throw usageError(`--${flag} must be a non-negative USD amount such as 2.5`, flag);
          return usdToMicros(v);
        };
        const m = await setModelPrice(await app.services(cmd), id, {
          prompt: amount(flags.prompt, 'prompt'),
          completion: amount(flags.completion, 'completion'),
          request: flags.request === undefined ? undefined : amount(flags.request, 'request'),
        });
        out.result(modelView(m), () => out.success(`${m.id}: $${formatMicros(m.promptPrice)} / $${formatMicros(m.completionPrice)} per 1M tokens (prompt / completion)`));
      }),
    );
  price
    .command('clear')
    .argument('<model>', 'model id, e.g. openai/gpt-4o')
    .description('drop a price set by hand: the next refresh takes the upstream\'s price again')
    .addHelpText('after', '\nExample:\n  gatewayctl models price clear openai/gpt-4o && gatewayctl models refresh')
    .action(
      action(app, async ({ cmd, out }: Run, id: string) => {
        const m = await clearModelPrice(await app.services(cmd), id);
        out.result(modelView(m), () =>
          out.success(`${m.id}: hand-set price dropped; $${formatMicros(m.promptPrice)} / $${formatMicros(m.completionPrice)} applies until the next 'gatewayctl models refresh'`),
        );
      }),
    );
}
