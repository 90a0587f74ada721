import type { Command } from 'commander';
import { migrate, migrationStatus } from '../../../shared/db/migrate.js';
import { action } from '../../action.js';
import type { App } from '../../app.js';

export function registerDb(program: Command, app: App): void {
  const db = program.command('db').description('store maintenance: migrations');
  db.command('migrate')
    .description('apply pending migrations')
    .action(
      action(app, async ({ cmd, out }) => {
        const store = await app.openStore(cmd);
        const status = await migrate(store);
        out.result({ store: store.display, dialect: store.dialect, ...status }, () => {
          out.success(`${status.applied.length} migration(s) applied, ${status.pending.length} pending`);
        });
      }),
    );
  db.command('status')
    .description('show applied and pending migrations')
    .action(
      action(app, async ({ cmd, out }) => {
        const store = await app.openStore(cmd);
        const status = await migrationStatus(store);
        out.result({ store: store.display, dialect: store.dialect, ...status }, () => {
          out.line(`store: ${store.display} (${store.dialect})`);
          out.table(
            ['migration', 'state', 'created'],
            [
              ...status.applied.map((m) => [m.tag, out.c.green('applied'), m.created_at]),
              ...status.pending.map((m) => [m.tag, out.c.yellow('pending'), null]),
            ],
          );
        });
      }),
    );
}
