// gatewayctl keys mine: the keys of the operator running the command. Until sign-in exists the
// operator is the OS user (App.actor `os:<user>`), matched to the local user of that username.
import type { Command } from 'commander';
import { GatewayError } from '../../../shared/errors.js';
import { listKeys } from '../../../shared/services/keys.js';
import { operatorUser } from '../../../shared/services/users.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { describeLimits, keyView } from '../../views.js';

export function registerKeysMine(keys: Command, app: App): void {
  keys
    .command('mine')
    .description('keys of the current operator (the signed-in user, else the local user named like the OS user)')
    .action(
      action(app, async ({ cmd, out }: Run) => {
        const ctx = await app.services(cmd);
        const user = await operatorUser(ctx);
        if (!user) {
          const who = ctx.actor.replace(/^os:/, '');
          throw new GatewayError(
            'not_found',
            `no user matches the current operator '${ctx.actor}': create one with 'gatewayctl users create ${who} --org <org>', or sign in with 'gatewayctl login'`,
          );
        }
        const rows = await listKeys(ctx, { user: user.id });
        const now = ctx.now();
        const views = rows.map((r) => keyView(r.key, r.limits, now));
        out.result(views, () => {
          out.line(`keys of ${out.c.bold(user.username)} (${user.id})`);
          out.table(
            ['id', 'name', 'org', 'type', 'env', 'status', 'limits', 'expires', 'last used'],
            views.map((k, i) => [k.id, k.name, k.org_id, k.type, k.env, k.status, describeLimits(rows[i]!.limits), k.expires_at, k.last_used_at]),
          );
        });
      }),
    );
}
