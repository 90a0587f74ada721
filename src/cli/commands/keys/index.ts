import type { Command } from 'commander';
import { parseDuration } from '../../../shared/duration.js';
import { createKey, deleteKey, getKey, listKeys, revokeKey, rotateKey, updateKey } from '../../../shared/services/keys.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import type { Output } from '../../output.js';
import { choiceArg } from '../../parse.js';
import { createdKeyView, describeLimits, keyView } from '../../views.js';
import { registerKeysMine } from './mine.js';
import { addCreateOnlyOptions, addKeyOptions, type KeyFlags, keyInput } from './options.js';
import { registerKeysUsage } from './usage.js';

function showKey(out: Output, k: ReturnType<typeof keyView>): void {
  out.fields([
    ['id', k.id],
    ['name', k.name],
    ['org', k.org_id],
    ['type', k.type],
    ['env', k.env],
    ['status', k.status],
    ['user', k.user_id],
    ['parent', k.parent_id],
    ['models', k.models ? k.models.join(', ') : 'all the org allows'],
    ['ip allow', k.ip_allow.join(', ')],
    ['referrers', k.referrers.join(', ')],
    ['limits', k.limits.map((l) => `${l.metric}/${l.window}${l.model ? `[${l.model}]` : ''}≤${l.metric === 'cost' ? `$${l.max}` : l.max}`).join('  ')],
    ['expires', k.expires_at],
    ['last used', k.last_used_at],
    ['created', `${k.created_at} by ${k.created_by}`],
  ]);
}

function showSecret(out: Output, plaintext: string): void {
  out.line('');
  out.line(`  ${out.c.bold(plaintext)}`);
  out.line('');
  out.line(out.c.yellow('  Copy it now: the key is shown only once and cannot be recovered.'));
}

export function registerKeys(program: Command, app: App): void {
  const keys = program.command('keys').description('API keys: org, admin and user keys with their policy and limits');

  addKeyOptions(addCreateOnlyOptions(keys.command('create')))
    .description('create a key; the plaintext is printed once')
    .addHelpText(
      'after',
      '\nExamples:\n  gatewayctl keys create --org acme --json\n  gatewayctl keys create --org acme --user alice --models "openai/*" --daily-tokens 100000 --rpm 60\n  gatewayctl keys create --org acme --parent k1a2b3c4d5e6 --budget 5 --budget-period day --expires-in 30d',
    )
    .action(
      action(app, async ({ cmd, out, prompt }: Run, flags: KeyFlags) => {
        const org = flags.org ?? (await prompt.text('--org', 'Org (id or name)'));
        const ctx = await app.services(cmd);
        const input = keyInput({ ...flags, type: flags.type ?? (flags.user ? 'user' : 'org') }, ctx.now());
        const created = await createKey(ctx, org, input);
        out.result(createdKeyView(created.plaintext, created.key, created.limits, ctx.now()), () => {
          out.success(`key ${created.key.id} (${created.key.type}, ${created.key.env}) created for org ${org}`);
          const limits = describeLimits(created.limits);
          if (limits) out.line(`  limits: ${limits}`);
          showSecret(out, created.plaintext);
        });
      }),
    );

  keys
    .command('list')
    .description('list keys')
    .option('--org <org>', 'only this org')
    .option('--user <user>', 'only keys of this user')
    .option('--status <status>', 'active, disabled, revoked or expired', choiceArg(['active', 'disabled', 'revoked', 'expired'] as const))
    .action(
      action(app, async ({ cmd, out }: Run, flags: { org?: string; user?: string; status?: string }) => {
        const ctx = await app.services(cmd);
        const rows = await listKeys(ctx, flags);
        const now = ctx.now();
        const views = rows.map((r) => keyView(r.key, r.limits, now));
        out.result(views, () =>
          out.table(
            ['id', 'name', 'org', 'type', 'env', 'status', 'user', 'limits', 'expires', 'last used'],
            views.map((k, i) => [k.id, k.name, k.org_id, k.type, k.env, k.status, k.user_id, describeLimits(rows[i]!.limits), k.expires_at, k.last_used_at]),
          ),
        );
      }),
    );

  keys
    .command('get')
    .argument('<key>', 'key id')
    .description('show one key (never its secret)')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string) => {
        const ctx = await app.services(cmd);
        const { key, limits } = await getKey(ctx, ref);
        const view = keyView(key, limits, ctx.now());
        out.result(view, () => showKey(out, view));
      }),
    );

  addKeyOptions(keys.command('update').argument('<key>', 'key id'))
    .option('--status <status>', 'active or disabled', choiceArg(['active', 'disabled'] as const))
    .description("change a key's settings and limits (a limit set to 0 is removed)")
    .addHelpText('after', '\nExamples:\n  gatewayctl keys update k1a2b3c4d5e6 --status disabled\n  gatewayctl keys update k1a2b3c4d5e6 --rpm 0 --daily-tokens 50000')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, flags: KeyFlags) => {
        const ctx = await app.services(cmd);
        const { key, limits } = await updateKey(ctx, ref, keyInput(flags, ctx.now()));
        const view = keyView(key, limits, ctx.now());
        out.result(view, () => out.success(`key ${key.id} updated`));
      }),
    );

  keys
    .command('revoke')
    .argument('<key>', 'key id')
    .description('revoke a key for good (the proxy refuses it within about a second)')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, ref: string) => {
        const ctx = await app.services(cmd);
        await prompt.confirmDestructive(`revoke key ${ref}`);
        const { key, limits } = await revokeKey(ctx, ref);
        out.result(keyView(key, limits, ctx.now()), () => out.success(`key ${key.id} revoked`));
      }),
    );

  keys
    .command('delete')
    .argument('<key>', 'key id')
    .description('delete a key row (its usage history stays); a child key with usage is revoked instead, as its usage counts against its parent')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, ref: string) => {
        const ctx = await app.services(cmd);
        await prompt.confirmDestructive(`delete key ${ref}`);
        const key = await deleteKey(ctx, ref);
        out.result({ id: key.id, deleted: true }, () => out.success(`key ${key.id} deleted`));
      }),
    );

  keys
    .command('rotate')
    .argument('<key>', 'key id')
    .option('--grace <duration>', 'let the old secret keep working this long, e.g. 1h')
    .description('issue a new secret for the same key id, settings and history')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, ref: string, flags: { grace?: string }) => {
        const ctx = await app.services(cmd);
        const grace = flags.grace ? parseDuration(flags.grace, 'grace') : 0;
        if (grace === 0) await prompt.confirmDestructive(`rotate key ${ref} (the old secret stops working at once)`);
        const created = await rotateKey(ctx, ref, grace);
        out.result(createdKeyView(created.plaintext, created.key, created.limits, ctx.now()), () => {
          out.success(`key ${created.key.id} rotated${grace ? `; the old secret works until ${created.key.prevKeyExpiresAt?.toISOString()}` : ''}`);
          showSecret(out, created.plaintext);
        });
      }),
    );

  registerKeysMine(keys, app);
  registerKeysUsage(keys, app);
}
