// gatewayctl users delete: a user with live keys needs a decision about them — asked on a
// terminal, or given as --keys revoke | --keys reassign --to <user> (else exit 2).
import type { Command } from 'commander';
import { GatewayError, usageError } from '../../../shared/errors.js';
import type { KeyDisposition } from '../../../shared/services/users.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { choiceArg } from '../../parse.js';

interface DeleteFlags {
  keys?: 'revoke' | 'reassign';
  to?: string;
}

const CHOICES = ['revoke them', 'reassign them to another user', 'cancel'] as const;

async function decide({ prompt }: Run, username: string, count: number, flags: DeleteFlags): Promise<KeyDisposition> {
  let choice = flags.keys;
  if (!choice) {
    if (!prompt.canPrompt) throw usageError(`user '${username}' has ${count} key(s): pass --keys revoke, or --keys reassign --to <user>`, 'keys');
    const picked = await prompt.choose('--keys', `User '${username}' has ${count} key(s). What should happen to them?`, CHOICES);
    if (picked === 'cancel') throw new GatewayError('aborted', 'aborted: nothing was changed');
    choice = picked === 'revoke them' ? 'revoke' : 'reassign';
  }
  if (choice === 'revoke') {
    if (flags.to) throw usageError('--to goes with --keys reassign', 'to');
    return { action: 'revoke' };
  }
  const to = flags.to ?? (await prompt.text('--to', 'Reassign the keys to which user (id, username or email)'));
  return { action: 'reassign', to };
}

export function registerUsersDelete(users: Command, app: App): void {
  users
    .command('delete')
    .argument('<user>', 'user id, username or email')
    .option('--keys <what>', "what to do with the user's keys: revoke or reassign", choiceArg(['revoke', 'reassign'] as const))
    .option('--to <user>', 'with --keys reassign: the user who gets the keys')
    .description('delete a user (their usage history stays)')
    .addHelpText('after', '\nExamples:\n  gatewayctl users delete alice --keys revoke --yes\n  gatewayctl users delete alice --keys reassign --to bob --yes')
    .action(
      action(app, async (run: Run, ref: string, flags: DeleteFlags) => {
        const { cmd, out, prompt } = run;
        const dir = await app.userDirectory(cmd);
        const user = await dir.get(ref);
        const keys = await dir.liveKeys(user.id);
        if (flags.to && flags.keys !== 'reassign') throw usageError('--to goes with --keys reassign', 'to');
        const disposition = keys.length ? await decide(run, user.username, keys.length, flags) : undefined;
        const what = disposition?.action === 'revoke' ? ` and revoke ${keys.length} key(s)` : disposition ? ` and give ${keys.length} key(s) to ${disposition.to}` : '';
        await prompt.confirmDestructive(`delete user '${user.username}'${what}`);
        const res = await dir.delete(user.id, disposition);
        out.result({ id: res.user.id, username: res.user.username, deleted: true, keys_revoked: res.keys.revoked, keys_reassigned: res.keys.reassigned, keys_to: res.keys.to }, () => {
          out.success(`user ${res.user.username} deleted`);
          if (res.keys.revoked.length) out.line(`  revoked keys: ${res.keys.revoked.join(', ')}`);
          if (res.keys.reassigned.length) out.line(`  keys now belong to ${res.keys.to}: ${res.keys.reassigned.join(', ')}`);
        });
      }),
    );
}
