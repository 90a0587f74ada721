// gatewayctl's entry point. `run(argv, io)` never exits the process: bin/gatewayctl does that
// with the code it returns, so tests drive every command in-process.
import { Command, CommanderError, Help } from 'commander';
import { App } from './app.js';
import { CommandFailed } from './action.js';
import { type Namespace, registerNamespaces, targetCommand } from './commands/namespaces.js';
import { type CliIO, processIO } from './io.js';
import type { BundledAssets } from '../shared/db/bundled-assets.js';
import { versionString } from '../shared/version.js';

const defaultHelp = new Help();
const defaultTerm = (c: Command) => defaultHelp.subcommandTerm(c);

/**
 * Builds the program. `load` picks the namespaces whose code is imported (by default the one
 * argv targets); the others stay light entries for the top-level help.
 */
export async function buildProgram(
  app: App,
  load: (ns: Namespace) => boolean = () => true,
  wantsVersion = true,
  json = false,
): Promise<Command> {
  const program = new Command('gatewayctl')
    .description('Control plane of the AI gateway: orgs, keys, quotas, limits, credits, models, users and usage.')
    .option('--db <url>', 'store: SQLite file path or postgres://… (env GATEWAY_DB)')
    .option('--store-timeout-ms <ms>', 'Postgres: give up on a statement, or on a store that does not answer, after this long (env GATEWAY_STORE_TIMEOUT_MS; 60000)')
    .option('--json', 'print exactly one JSON document on stdout; errors as JSON on stderr')
    .option('-y, --yes', 'confirm destructive actions without asking')
    .option('--no-color', 'plain output (also NO_COLOR)')
    .version(wantsVersion ? versionString() : '', '-V, --version', 'print the version and commit')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false);
  const output = commanderOutput(app, json);
  program.configureOutput(output);
  const terms = new Map<string, string>();
  await registerNamespaces(program, app, load, terms);
  program.configureHelp({ subcommandTerm: (c) => terms.get(c.name()) ?? defaultTerm(c) });
  program.commands.forEach(function exitOverride(c: Command) {
    c.exitOverride();
    c.configureOutput(output);
    c.commands.forEach(exitOverride);
  });
  program.exitOverride();
  return program;
}

/**
 * Where commander writes. With --json, its parse errors (unknown option, bad value, missing
 * argument) become the one JSON error document on stderr, like every other failure.
 */
function commanderOutput(app: App, json: boolean) {
  return {
    writeOut: (s: string) => app.io.stdout.write(s),
    writeErr: (s: string) => (json ? true : app.io.stderr.write(s)),
    outputError: (s: string, write: (s: string) => void) => {
      if (!json) return write(s);
      const message = s.replace(/^error:\s*/, '').trim();
      app.io.stderr.write(`${JSON.stringify({ error: { code: 'usage_error', message } })}\n`);
    },
  };
}

export interface RunOptions {
  /** What a standalone executable carries (src/cli/sea-entry.ts); absent when run from a checkout. */
  bundled?: BundledAssets;
}

export async function run(argv: string[], io: CliIO = processIO(), opts: RunOptions = {}): Promise<number> {
  const app = new App(io, opts.bundled);
  const target = targetCommand(argv);
  const wantsVersion = argv.includes('-V') || argv.includes('--version');
  const json = argv.includes('--json');
  const program = await buildProgram(app, (ns) => ns.commands.some((c) => c.name === target), wantsVersion, json);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommandFailed) return err.exitCode;
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') {
        // A namespace without a verb (`gatewayctl keys`): help for people, a usage error for scripts.
        if (json) io.stderr.write(`${JSON.stringify({ error: { code: 'usage_error', message: `missing command: see gatewayctl ${target ?? ''} --help`.replace('  ', ' ') } })}\n`);
        return 2;
      }
      // Unknown command/option, missing argument, bad option value: a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    io.stderr.write(`error: unexpected: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await app.close();
  }
}
