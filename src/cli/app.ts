// Per-run state shared by the commands: the IO, the environment, the global flags, and the
// store and services opened lazily (so `--help` never touches a database). The store, identity
// and policy modules are imported on first use, not at start-up: they are most of the start-up time.
import type { Command } from 'commander';
import { dataDir, defaultDbUrl, type GatewayEnv, masterKeyFile, readEnv } from '../shared/config.js';
import type { BundledAssets } from '../shared/db/bundled-assets.js';
import type { Store } from '../shared/db/store.js';
import { usageError } from '../shared/errors.js';
import type { Principal } from '../shared/identity/principal.js';
import { type KeycloakSettings, keycloakSettings } from '../shared/identity/settings.js';
import type { KeycloakSignIn } from '../shared/identity/sign-in.js';
import { loadMasterKey } from '../shared/master-key.js';
import type { ServiceContext } from '../shared/services/context.js';
import type { UserDirectory } from '../shared/services/users.js';
import { commandPath, requirementOf } from './access-policy.js';
import type { CliIO } from './io.js';
import { Output } from './output.js';
import { Prompter } from './prompt.js';

export interface GlobalFlags {
  db?: string;
  json?: boolean;
  yes?: boolean;
  color?: boolean;
}

export class App {
  readonly io: CliIO;
  readonly env: GatewayEnv;
  private store: Store | undefined;
  private masterKey: Buffer | undefined;
  private principalOnce: Promise<Principal> | undefined;
  /** Who the audit log names. Sign-in (Keycloak) replaces the OS user. */
  actor: string;

  /** Set when running as a standalone executable (src/cli/sea-entry.ts). */
  private readonly bundled: BundledAssets | undefined;

  constructor(io: CliIO, bundled?: BundledAssets) {
    this.io = io;
    this.bundled = bundled;
    this.env = readEnv(io.env);
    this.actor = `os:${this.env.osUser}`;
  }

  flags(cmd: Command): GlobalFlags {
    return cmd.optsWithGlobals<GlobalFlags>();
  }

  output(cmd: Command): Output {
    const f = this.flags(cmd);
    const color = f.color !== false && !this.env.noColor && this.io.stdoutIsTTY;
    return new Output({ json: Boolean(f.json), color, stdout: this.io.stdout, stderr: this.io.stderr });
  }

  prompter(cmd: Command): Prompter {
    const f = this.flags(cmd);
    return new Prompter(
      { interactive: this.io.interactive, json: Boolean(f.json), yes: Boolean(f.yes), ci: this.env.ci },
      this.io,
    );
  }

  dbUrl(cmd: Command): string {
    return this.flags(cmd).db ?? defaultDbUrl(this.env, this.io.cwd);
  }

  dataDir(): string {
    return dataDir(this.env, this.io.cwd);
  }

  masterKeySource() {
    return { envValue: this.env.gateway.master_key, file: masterKeyFile(this.env, this.io.cwd) };
  }

  async openStore(cmd: Command, create = false): Promise<Store> {
    if (!this.store) {
      const { openStore } = await import('../shared/db/store.js');
      this.store = await openStore(this.dbUrl(cmd), { create, poolSize: 4, bundled: this.bundled });
    }
    return this.store;
  }

  async services(cmd: Command): Promise<ServiceContext> {
    const store = await this.openStore(cmd);
    return {
      store,
      actor: this.actor,
      now: () => new Date(),
      masterKey: () => {
        this.masterKey ??= loadMasterKey(this.masterKeySource());
        return this.masterKey;
      },
    };
  }

  /** The realm when all four KEYCLOAK_* variables are set; undefined without them; exit 6 when only some are. */
  keycloak(): KeycloakSettings | undefined {
    return keycloakSettings(this.env.keycloak);
  }

  async signIn(): Promise<KeycloakSignIn> {
    const settings = this.keycloak();
    if (!settings) {
      throw usageError('Keycloak is not configured: set KEYCLOAK_URL, KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET (local users need no sign-in)');
    }
    const [{ KeycloakSignIn }, { SessionStore, sessionFile }] = await Promise.all([
      import('../shared/identity/sign-in.js'),
      import('../shared/identity/session-store.js'),
    ]);
    return new KeycloakSignIn({ settings, sessions: new SessionStore(sessionFile(this.env.configHome)) });
  }

  /** Who runs the command: the signed-in Keycloak user (then also the audit actor), else the local operator. */
  principal(): Promise<Principal> {
    this.principalOnce ??= (async () => {
      const { localPrincipal } = await import('../shared/identity/principal.js');
      const p = this.keycloak() ? await (await this.signIn()).current() : localPrincipal(this.env.osUser);
      this.actor = p.actor;
      return p;
    })();
    return this.principalOnce;
  }

  /** Checks the command's requirement (access-policy.ts) and fills in options that keep it in bounds. */
  async authorize(cmd: Command, args: unknown[]): Promise<void> {
    const opts = (args[args.length - 1] ?? {}) as Record<string, unknown>;
    const req = requirementOf(cmd, args.slice(0, -1), opts);
    if (req.level === 'public') return;
    const { authorize } = await import('../shared/identity/access.js');
    const decision = await authorize(await this.principal(), req, commandPath(cmd), () => this.services(cmd));
    Object.assign(opts, decision.fill);
  }

  /** Users in the Keycloak realm when configured, else the store's local users. */
  async userDirectory(cmd: Command): Promise<UserDirectory> {
    const { userDirectory } = await import('../shared/identity/directory.js');
    return userDirectory(await this.services(cmd), this.keycloak());
  }

  async close(): Promise<void> {
    await this.store?.close();
    this.store = undefined;
  }
}
