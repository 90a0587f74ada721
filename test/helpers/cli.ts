// Runs gatewayctl in-process through run(argv) with captured output and a chosen environment.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { run } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws if it is not exactly one JSON document). */
  json<T = unknown>(): T;
  /** stderr's JSON error, for --json failures. */
  errorJson(): { error: { code: string; message: string } };
}

export interface CliOptions {
  env?: Record<string, string>;
  stdin?: string;
  interactive?: boolean;
  cwd?: string;
}

export function tempDir(prefix = 'gw-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function cli(argv: string[], opts: CliOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(opts.stdin === undefined ? [] : [opts.stdin]),
    env: { USER: 'tester', ...opts.env },
    cwd: opts.cwd ?? process.cwd(),
    interactive: opts.interactive ?? false,
    stdoutIsTTY: false,
  });
  return {
    code,
    stdout,
    stderr,
    json: <T>() => JSON.parse(stdout) as T,
    errorJson: () => JSON.parse(stderr) as { error: { code: string; message: string } },
  };
}

/**
 * A CLI bound to one fresh store: `--db` is filled in and GATEWAY_MASTER_KEY set, so tests
 * read like the commands an operator types.
 */
export function cliFor(db: string, baseEnv: Record<string, string> = {}) {
  const cwd = tempDir();
  const env = { GATEWAY_MASTER_KEY: 'a'.repeat(64), GATEWAY_DATA_DIR: join(cwd, 'data'), ...baseEnv };
  return (argv: string[], opts: CliOptions = {}) =>
    cli(['--db', db, ...argv], { ...opts, cwd, env: { ...env, ...opts.env } });
}
