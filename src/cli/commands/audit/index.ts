// gatewayctl audit list: who changed what and when.
import type { Command } from 'commander';
import { parseSince } from '../../../shared/duration.js';
import { listAudit } from '../../../shared/services/audit.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { positiveIntArg } from '../../parse.js';

interface AuditFlags {
  since?: string;
  actor?: string;
  target?: string;
  action?: string;
  limit?: number;
}

export function registerAudit(program: Command, app: App): void {
  const audit = program.command('audit').description('the audit log of every change');
  audit
    .command('list')
    .option('--since <when>', 'a duration such as 24h or an ISO date')
    .option('--actor <actor>', 'only changes by this actor, e.g. os:alice')
    .option('--target <target>', 'only changes to this target: an id, or type:id such as key:k1a2b3c4d5e6')
    .option('--action <action>', 'only this action, e.g. keys.revoke')
    .option('--limit <n>', 'at most this many entries, newest first (default 100)', positiveIntArg)
    .description('who changed what and when, newest first')
    .addHelpText('after', '\nExamples:\n  gatewayctl audit list --since 24h\n  gatewayctl audit list --target key:k1a2b3c4d5e6 --json')
    .action(
      action(app, async ({ cmd, out }: Run, flags: AuditFlags) => {
        const ctx = await app.services(cmd);
        const since = flags.since ? parseSince(flags.since, ctx.now().getTime()) : undefined;
        const rows = await listAudit(ctx, { since, actor: flags.actor, target: flags.target, action: flags.action, limit: flags.limit });
        const views = rows.map((r) => ({ id: r.id, ts: r.ts.toISOString(), actor: r.actor, action: r.action, target: `${r.targetType}:${r.targetId}`, details: r.details }));
        out.result(views, () =>
          out.table(['time', 'actor', 'action', 'target', 'details'], views.map((v) => [v.ts, v.actor, v.action, v.target, JSON.stringify(v.details)])),
        );
      }),
    );
}
