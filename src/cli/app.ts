// Per-run state shared by the commands: the IO, the environment, the global flags, and the
// store and services opened lazily (so `--help` never touches a database).
import type { Command } from 'commander';
import { dataDir, defaultDbUrl, type GatewayEnv, masterKeyFile, readEnv } from '../shared/config.js';
import type { BundledAssets } from '../shared/db/bundled-assets.js';
import { openStore, type Store } from '../shared/db/store.js';
import { loadMasterKey } from '../shared/master-key.js';
import type { ServiceContext } from '../shared/services/context.js';
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
    if (!this.store) this.store = await openStore(this.dbUrl(cmd), { create, poolSize: 4, bundled: this.bundled });
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

  async close(): Promise<void> {
    await this.store?.close();
    this.store = undefined;
  }
}
