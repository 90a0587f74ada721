import type { Command } from 'commander';
import { migrate } from '../../shared/db/migrate.js';
import { ensureMasterKey } from '../../shared/master-key.js';
import { action } from '../action.js';
import type { App } from '../app.js';

export function registerInit(program: Command, app: App): void {
  program
    .command('init')
    .description('create the store, run its migrations and create the master key (safe to re-run)')
    .addHelpText('after', '\nExamples:\n  gatewayctl init\n  gatewayctl init --db postgres://gw:pw@127.0.0.1/gateway --json')
    .action(
      action(app, async ({ cmd, out }) => {
        const createdKey = ensureMasterKey(app.masterKeySource());
        const store = await app.openStore(cmd, true);
        const status = await migrate(store);
        const data = {
          store: store.display,
          dialect: store.dialect,
          master_key: app.env.gateway.master_key ? 'GATEWAY_MASTER_KEY' : app.masterKeySource().file,
          master_key_created: createdKey,
          migrations_applied: status.applied.map((m) => m.tag),
        };
        out.result(data, () => {
          out.success(`store ready: ${store.display} (${store.dialect})`);
          out.line(`  master key: ${data.master_key}${createdKey ? ' (created, mode 0600)' : ''}`);
          out.line(`  migrations: ${status.applied.length} applied, ${status.pending.length} pending`);
        });
      }),
    );
}
