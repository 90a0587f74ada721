// gatewayctl users sync: mirror the Keycloak realm into the store, so keys and usage attach to
// realm users and a user disabled (or deleted) in Keycloak has their keys refused by the proxy.
import type { Command } from 'commander';
import { usageError } from '../../../shared/errors.js';
import { KeycloakDirectory } from '../../../shared/identity/keycloak-directory.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';

export function registerUsersSync(users: Command, app: App): void {
  users
    .command('sync')
    .description('Keycloak only: mirror every realm user into the store; disable the rows of users gone from the realm')
    .addHelpText('after', '\nRun it from cron to pick up changes made in the Keycloak console.\n\nExample:\n  gatewayctl users sync --json')
    .action(
      action(app, async ({ cmd, out }: Run) => {
        const dir = await app.userDirectory(cmd);
        if (!(dir instanceof KeycloakDirectory)) throw usageError('users sync needs Keycloak: set KEYCLOAK_URL, KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET');
        const r = await dir.sync();
        out.result(r, () => {
          out.success(`${r.users} realm user(s) mirrored: ${r.created.length} new, ${r.updated.length} changed, ${r.orphaned.length} gone from the realm (disabled)`);
          if (r.created.length) out.line(`  new: ${r.created.join(', ')}`);
          if (r.updated.length) out.line(`  changed: ${r.updated.join(', ')}`);
          if (r.orphaned.length) out.line(`  disabled (deleted in Keycloak): ${r.orphaned.join(', ')}`);
        });
      }),
    );
}
