// Per-run state shared by the commands: the IO, the environment, the global flags, and the
// store and services opened lazily (so `--help` never touches a database). The store, identity
// and policy modules are imported on first use, not at start-up: they are most of the start-up time.
import type { Command } from 'commander';
import { dataDir, defaultDbUrl, type GatewayEnv, masterKeyFile, readEnv } from '../shared/config.js';
import type { BundledAssets } from '../shared/db/bundled-assets.js';
import type { Store } from '../shared/db/store.js';
import { storeFailure } from '../shared/db/store-errors.js';
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
  storeTimeoutMs?: string;
  json?: boolean;
  yes?: boolean;
  color?: boolean;
}

/**
 * How long gatewayctl waits on Postgres by default. Its reports read the daily rollups and its
 * writes touch a few rows: a minute is over ten times the slowest work measured (README, Scripts
 * and CI), and a store that stopped answering is reported within a minute and a second instead
 * of never. Longer work, such as pruning tens of millions of raw events, can raise it.
 */
export const DEFAULT_STORE_TIMEOUT_MS = 60_000;
/** The most both pg's timers (setTimeout, at timeout + 1 s) and Postgres' settings accept. */
const MAX_STORE_TIMEOUT_MS = 2 ** 31 - 1 - 1000;

export class App {
  readonly io: CliIO;
  readonly env: GatewayEnv;
  private store: Store | undefined;
  private storeTimeout: number | undefined;
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

  /** --store-timeout-ms, else GATEWAY_STORE_TIMEOUT_MS, else the default; a bad value is a usage error. */
  storeTimeoutMs(cmd: Command): number {
    const flag = this.flags(cmd).storeTimeoutMs;
    const [name, raw] = flag === undefined ? ['GATEWAY_STORE_TIMEOUT_MS', this.env.gateway.store_timeout_ms] : ['--store-timeout-ms', flag];
    if (raw === undefined) return DEFAULT_STORE_TIMEOUT_MS;
    const ms = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || ms < 100 || ms > MAX_STORE_TIMEOUT_MS) {
      throw usageError(`${name} must be a number of milliseconds from 100 to ${MAX_STORE_TIMEOUT_MS}, got '${raw}'`, 'store_timeout_ms');
    }
    return ms;
  }

  async openStore(cmd: Command, create = false): Promise<Store> {
    if (!this.store) {
      const timeoutMs = this.storeTimeoutMs(cmd);
      const { openStore } = await import('../shared/db/store.js');
      this.store = await openStore(this.dbUrl(cmd), { create, poolSize: 4, bundled: this.bundled, timeoutMs });
      this.storeTimeout = timeoutMs;
    }
    return this.store;
  }

  /**
   * A failure of the Postgres store (no answer in time, unreachable) as the one error to report,
   * naming the store and the limit; any other error as it is.
   */
  explain(err: unknown): unknown {
    if (this.store?.dialect !== 'postgres') return err;
    return storeFailure(err, { display: this.store.display, timeoutMs: this.storeTimeout }) ?? err;
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
