// gatewayctl login | logout | whoami: the operator's Keycloak session. Without Keycloak the
// operator is the local gateway-admin and only whoami has something to say.
import type { Command } from 'commander';
import { GatewayError, usageError } from '../../../shared/errors.js';
import type { DeviceStart } from '../../../shared/identity/oidc-client.js';
import type { Principal } from '../../../shared/identity/principal.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { readAll } from '../../io.js';
import type { Output } from '../../output.js';
import { identityView, showIdentity } from './views.js';

interface LoginFlags {
  username?: string;
  device?: boolean;
  clientId?: string;
}

function showDeviceCode(out: Output, d: DeviceStart): void {
  // stderr, so `--json` still prints exactly one document on stdout.
  out.note(`To sign in, open ${d.verificationUriComplete ?? d.verificationUri}`);
  out.note(`and confirm the code ${d.userCode} (valid ${Math.round(d.expiresIn / 60)} min). Waiting…`);
}

async function password(run: Run, app: App, username: string): Promise<string> {
  if (run.prompt.canPrompt) return run.prompt.secret('--username', `Password for ${username}`);
  const text = (await readAll(app.io.stdin)).replace(/\r?\n$/, '');
  if (!text) throw usageError(`no password on stdin for '${username}': pipe it in (e.g. printf %s "$PW" | gatewayctl login --username ${username}), or use --device`, 'password');
  return text;
}

export function registerAuth(program: Command, app: App): void {
  program
    .command('login')
    .description('sign in to the Keycloak realm (KEYCLOAK_URL, KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET)')
    .option('--username <name>', 'sign in as this user; without a terminal the password is read from stdin')
    .option('--device', 'sign in in a browser with a one-time code (OAuth device grant), e.g. over SSH')
    .option('--client-id <id>', 'sign in through another (public) client of the realm, e.g. one allowed the device grant')
    .addHelpText(
      'after',
      '\nExamples:\n  gatewayctl login\n  printf %s "$PASSWORD" | gatewayctl login --username alice --json\n  gatewayctl login --device --client-id gatewayctl',
    )
    .action(
      action(app, async (run: Run, flags: LoginFlags) => {
        const { out, prompt } = run;
        const signIn = await app.signIn();
        let principal: Principal;
        if (flags.device) {
          if (flags.username) throw usageError('--device signs in in the browser: drop --username', 'username');
          principal = await signIn.loginDevice((d) => showDeviceCode(out, d), flags.clientId);
        } else {
          if (!flags.username && !prompt.canPrompt) throw usageError('missing username: pass --username (password on stdin), or use --device', 'username');
          const username = flags.username ?? (await prompt.text('--username', 'Username'));
          principal = await signIn.loginPassword(username, await password(run, app, username), flags.clientId);
        }
        const view = identityView(principal);
        out.result(view, () => {
          out.success(`signed in as ${out.c.bold(view.username)} (${view.roles.join(', ') || 'no gateway role'})`);
          if (view.roles.length === 0) out.warn('this user holds none of gateway-admin, org-admin, gateway-user: most commands will be refused');
        });
      }),
    );

  program
    .command('logout')
    .description('sign out: end the session at Keycloak and delete the local tokens')
    .option('--forget', 'only delete the local tokens, without contacting Keycloak (when it is gone for good)')
    .action(
      action(app, async ({ out }: Run, flags: { forget?: boolean }) => {
        const signIn = await app.signIn();
        if (flags.forget) {
          const had = signIn.forget();
          out.result({ signed_out: had, revoked: false }, () => out.success(had ? 'local session deleted (not revoked at Keycloak)' : 'not signed in'));
          return;
        }
        const done = await signIn.logout().catch((err: unknown) => {
          if (err instanceof GatewayError && err.code === 'identity_unavailable') {
            throw new GatewayError(err.code, `${err.message}; the local session is kept: retry, or run \`gatewayctl logout --forget\``);
          }
          throw err;
        });
        const view = { signed_out: done.username !== null, username: done.username, revoked: done.remote === 'ended' };
        out.result(view, () => {
          if (!done.username) out.success('not signed in');
          else if (done.remote === 'already-ended') out.success(`signed out ${done.username} (the Keycloak session had already ended)`);
          else out.success(`signed out ${done.username}; the session is revoked at Keycloak`);
        });
      }),
    );

  program
    .command('whoami')
    .description('who gatewayctl acts as: user, roles and org')
    .action(
      action(app, async ({ out }: Run) => {
        const view = identityView(await app.principal());
        out.result(view, () => showIdentity(out, view));
      }),
    );
}
