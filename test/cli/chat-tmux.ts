// Drives gatewayctl in a real pseudo-terminal: a private tmux server per test (its own socket),
// keys sent with send-keys, the screen read with capture-pane. The CLI runs from an esbuild
// bundle of the current sources, so the test never depends on a stale dist/.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { randomString } from '../../src/shared/ids.js';
import { tempDir } from '../helpers/cli.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/**
 * Bundles one program's entry (src/cli/main.ts `run`, or src/proxy/cli.ts `runCli`) into an
 * executable file under node_modules/.cache (so bare imports resolve) and returns its path.
 */
export async function bundleProgram(entry: 'src/cli/main.ts' | 'src/proxy/cli.ts', exportName: 'run' | 'runCli'): Promise<string> {
  const dir = join(ROOT, 'node_modules', '.cache', 'gw-cli-test');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `${exportName}-${process.pid}-${randomString(6)}.mjs`);
  await build({
    stdin: {
      contents: `import { ${exportName} } from ${JSON.stringify(join(ROOT, entry))};\nprocess.exitCode = await ${exportName}(process.argv.slice(2));\nprocess.stdout.write('', () => process.exit());\n`,
      resolveDir: ROOT,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    banner: { js: '#!/usr/bin/env node' },
    outfile,
    logLevel: 'silent',
  });
  chmodSync(outfile, 0o755);
  return outfile;
}

export const bundleCli = () => bundleProgram('src/cli/main.ts', 'run');

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class Tmux {
  private readonly socket = `gw-test-${process.pid}-${randomString(6)}`;

  private tmux(args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  }

  private readonly statusFile = join(tempDir('gw-tmux-'), 'exit-status');

  /**
   * Starts `argv` in a 120x40 pane with exactly `env` added (CI removed, so prompts are allowed).
   * A shell around it records the exit status in a file: tmux's own pane_dead_status is not
   * always filled in. The shell traps SIGINT (a trap, unlike an ignore, is not inherited), so a
   * Ctrl-C reaches the program alone.
   */
  start(argv: string[], env: Record<string, string>, cwd: string): void {
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`);
    const program = ['env', '-u', 'CI', ...assignments, ...argv.map(shq)].join(' ');
    const command = `trap : INT; ${program}; echo $? > ${shq(this.statusFile)}`;
    this.tmux(['new-session', '-d', '-s', 'chat', '-x', '120', '-y', '40', '-c', cwd, 'sh', '-c', command, ';', 'set-option', '-g', 'remain-on-exit', 'on']);
  }

  /** The visible screen; `escapes` keeps colour codes (to check NO_COLOR). */
  screen(escapes = false): string {
    return this.tmux(['capture-pane', '-p', '-J', '-t', 'chat', ...(escapes ? ['-e'] : []), '-S', '-200']);
  }

  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', 'chat', ...keys]);
  }

  /** Types text literally, then Enter. */
  type(text: string): void {
    this.tmux(['send-keys', '-t', 'chat', '-l', text]);
    this.tmux(['send-keys', '-t', 'chat', 'Enter']);
  }

  /** Waits until the screen satisfies `test` (a substring, regex or predicate), else throws with the screen. */
  async waitFor(test: string | RegExp | ((screen: string) => boolean), timeoutMs = 30_000): Promise<string> {
    const check = typeof test === 'string' ? (s: string) => s.includes(test) : test instanceof RegExp ? (s: string) => test.test(s) : test;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = this.screen();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${String(test)}; ${this.diagnose()}; screen:\n${last}`);
  }

  /** Waits for the program to end and returns its exit status. */
  async waitForExit(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = existsSync(this.statusFile) ? readFileSync(this.statusFile, 'utf8').trim() : '';
      if (text) return Number(text);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the program did not exit; ${this.diagnose()}; screen:\n${this.screen()}`);
  }

  /** The pane's process and what it is blocked on, for timeouts. */
  diagnose(): string {
    try {
      const [dead, pid] = this.tmux(['list-panes', '-t', 'chat', '-F', '#{pane_dead} #{pane_pid}']).trim().split(' ');
      if (dead === '1') return `pane dead (pid ${pid})`;
      const ps = execFileSync('ps', ['-o', 'pid,stat,wchan:30,pcpu,args', '--ppid', pid!, '-p', pid!], { encoding: 'utf8' });
      return `pane alive:\n${ps}`;
    } catch (err) {
      return `no pane: ${String(err)}`;
    }
  }

  /** Counts occurrences of `needle` on the screen (for "the prompt came back" checks). */
  count(needle: string): number {
    return this.screen().split(needle).length - 1;
  }

  kill(): void {
    try {
      this.tmux(['kill-server']);
    } catch {
      // Already gone: nothing to clean up.
    }
  }
}
