// gatewayctl users …: local users in the store, behind the UserDirectory interface so a Keycloak
// directory can take over the same commands.
import type { Command } from 'commander';
import { type UserDirectory, type UserInput, ROLES } from '../../../shared/services/users.js';
import type { User } from '../../../shared/db/schema.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { choiceArg, listArg } from '../../parse.js';
import { registerUsersDelete } from './delete.js';
import { registerUsersSync } from './sync.js';
import { showUser, userView } from './views.js';

interface UserFlags {
  email?: string;
  org?: string;
  role?: string[];
  group?: string[];
  username?: string;
}

function userInput(f: UserFlags): UserInput {
  const input: UserInput = {};
  if (f.email !== undefined) input.email = f.email === '' ? null : f.email;
  if (f.org !== undefined) input.org = f.org === '' ? null : f.org;
  if (f.role !== undefined) input.roles = f.role;
  if (f.group !== undefined) input.groups = f.group;
  if (f.username !== undefined) input.username = f.username;
  return input;
}

const roleHelp = `role(s), comma-separated: ${ROLES.join(', ')}`;

/** One verb that changes a user and prints it. */
function mutation(app: App, verb: (dir: UserDirectory, ref: string, arg: string) => Promise<User>, done: (u: User, arg: string) => string) {
  return action(app, async ({ cmd, out }: Run, ref: string, arg: string) => {
    const user = await verb(await app.userDirectory(cmd), ref, arg);
    out.result(userView(user), () => out.success(done(user, arg)));
  });
}

export function registerUsers(program: Command, app: App): void {
  const users = program.command('users').description('local users (the embedded directory): org, roles, groups and status');

  users
    .command('list')
    .option('--org <org>', 'only users of this org')
    .option('--status <status>', 'active or disabled', choiceArg(['active', 'disabled'] as const))
    .option('--role <role>', 'only users with this role', choiceArg(ROLES))
    .description('list users')
    .action(
      action(app, async ({ cmd, out }: Run, flags: { org?: string; status?: string; role?: string }) => {
        const rows = await (await app.userDirectory(cmd)).list(flags);
        out.result(rows.map(userView), () =>
          out.table(['id', 'username', 'email', 'org', 'status', 'roles', 'groups'], rows.map((u) => [u.id, u.username, u.email, u.orgId, u.status, u.roles.join(','), u.groups.join(',')])),
        );
      }),
    );

  users
    .command('create')
    .argument('[username]', 'unique username (for `keys mine`, the same as the OS user)')
    .option('--email <email>', 'unique email')
    .option('--org <org>', 'the org the user belongs to (only a gateway-admin may have none)')
    .option('--role <roles>', `${roleHelp} (default gateway-user)`, listArg)
    .option('--group <groups>', 'group(s), comma-separated', listArg)
    .description('create a local user')
    .addHelpText('after', '\nExamples:\n  gatewayctl users create alice --org acme --email alice@example.com\n  gatewayctl users create root --role gateway-admin --json')
    .action(
      action(app, async ({ cmd, out, prompt }: Run, name: string | undefined, flags: UserFlags) => {
        const username = name ?? (await prompt.text('<username>', 'Username'));
        const user = await (await app.userDirectory(cmd)).create(username, userInput(flags));
        out.result(userView(user), () => out.success(`user ${out.c.bold(user.username)} created (${user.id})`));
      }),
    );

  users
    .command('get')
    .argument('<user>', 'user id, username or email')
    .description('show one user')
    .action(
      action(app, async ({ cmd, out }: Run, ref: string) => {
        const view = userView(await (await app.userDirectory(cmd)).get(ref));
        out.result(view, () => showUser(out, view));
      }),
    );

  users
    .command('update')
    .argument('<user>', 'user id, username or email')
    .option('--username <name>', 'rename the user')
    .option('--email <email>', "new email ('' clears it)")
    .option('--org <org>', "move to another org ('' detaches)")
    .option('--role <roles>', `replace the roles: ${roleHelp}`, listArg)
    .option('--group <groups>', 'replace the groups, comma-separated', listArg)
    .description("change a user's details")
    .action(
      action(app, async ({ cmd, out }: Run, ref: string, flags: UserFlags) => {
        const user = await (await app.userDirectory(cmd)).update(ref, userInput(flags));
        out.result(userView(user), () => out.success(`user ${user.username} updated`));
      }),
    );

  registerUsersDelete(users, app);
  registerUsersSync(users, app);

  users
    .command('enable')
    .argument('<user>', 'user id, username or email')
    .description("let the user's keys work again")
    .action(mutation(app, (dir, ref) => dir.setStatus(ref, 'active'), (u) => `user ${u.username} enabled`));

  users
    .command('disable')
    .argument('<user>', 'user id, username or email')
    .description("stop the user's keys at once (the proxy refuses them on its next refresh, ~1 s)")
    .action(mutation(app, (dir, ref) => dir.setStatus(ref, 'disabled'), (u) => `user ${u.username} disabled: their keys stop working`));

  const roles = users.command('roles').description(`a user's roles: ${ROLES.join(', ')}`);
  roles.command('add').argument('<user>').argument('<role>').description('grant a role')
    .action(mutation(app, (dir, ref, role) => dir.addRole(ref, role), (u, r) => `role ${r} granted to ${u.username}`));
  roles.command('remove').argument('<user>').argument('<role>').description('take a role away')
    .action(mutation(app, (dir, ref, role) => dir.removeRole(ref, role), (u, r) => `role ${r} removed from ${u.username}`));

  const groups = users.command('groups').description("a user's groups");
  groups.command('add').argument('<user>').argument('<group>').description('add to a group')
    .action(mutation(app, (dir, ref, g) => dir.addGroup(ref, g), (u, g) => `${u.username} added to group ${g}`));
  groups.command('remove').argument('<user>').argument('<group>').description('remove from a group')
    .action(mutation(app, (dir, ref, g) => dir.removeGroup(ref, g), (u, g) => `${u.username} removed from group ${g}`));
}
