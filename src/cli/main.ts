// gatewayctl's entry point. `run(argv, io)` never exits the process: bin/gatewayctl does that
// with the code it returns, so tests drive every command in-process.
import { Command, CommanderError } from 'commander';
import { App } from './app.js';
import { CommandFailed } from './action.js';
import { registerCommands } from './commands/index.js';
import { type CliIO, processIO } from './io.js';
import type { BundledAssets } from '../shared/db/bundled-assets.js';
import { VERSION_STRING } from '../shared/version.js';

export function buildProgram(app: App): Command {
  const program = new Command('gatewayctl')
    .description('Control plane of the AI gateway: orgs, keys, quotas, limits, credits, models, users and usage.')
    .option('--db <url>', 'store: SQLite file path or postgres://… (env GATEWAY_DB)')
    .option('--json', 'print exactly one JSON document on stdout; errors as JSON on stderr')
    .option('-y, --yes', 'confirm destructive actions without asking')
    .option('--no-color', 'plain output (also NO_COLOR)')
    .version(VERSION_STRING, '-V, --version', 'print the version and commit')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false);
  program.configureOutput({
    writeOut: (s) => app.io.stdout.write(s),
    writeErr: (s) => app.io.stderr.write(s),
  });
  registerCommands(program, app);
  program.commands.forEach(function exitOverride(c: Command) {
    c.exitOverride();
    c.configureOutput({ writeOut: (s) => app.io.stdout.write(s), writeErr: (s) => app.io.stderr.write(s) });
    c.commands.forEach(exitOverride);
  });
  program.exitOverride();
  return program;
}

export interface RunOptions {
  /** What a standalone executable carries (src/cli/sea-entry.ts); absent when run from a checkout. */
  bundled?: BundledAssets;
}

export async function run(argv: string[], io: CliIO = processIO(), opts: RunOptions = {}): Promise<number> {
  const app = new App(io, opts.bundled);
  const program = buildProgram(app);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommandFailed) return err.exitCode;
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      // Unknown command/option, missing argument, bad option value: a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    io.stderr.write(`error: unexpected: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await app.close();
  }
}
