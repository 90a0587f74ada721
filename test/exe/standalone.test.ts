// The standalone executables (test/scripts/build-exe.ts), run the way ops will: two files copied
// into an empty folder, an empty environment (`env -i`), no Node and no node_modules in reach.
// Builds them first (≈20 s) unless GATEWAY_EXE_DIR names a folder that holds a build.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExecutables, PROGRAMS } from '../scripts/build-exe.js';
import { tempDir } from '../helpers/cli.js';
import { freshPgUrl } from '../helpers/stores.js';

const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let folder: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const built = process.env.GATEWAY_EXE_DIR
    ? resolve(process.env.GATEWAY_EXE_DIR)
    : (await buildExecutables({ outDir: tempDir('gw-exe-build-') })).outDir;
  folder = tempDir('gw-exe-');
  for (const p of PROGRAMS) copyFileSync(join(built, p.name), join(folder, p.name));
}, 300_000);

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Runs one of the copied executables like `env -i ./name args…` (extra variables only when given). */
async function exe(name: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Result> {
  try {
    const r = await run(join(folder, name), args, { cwd: opts.cwd ?? folder, env: opts.env ?? {}, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function ok(args: string[], cwd: string): Promise<unknown> {
  const r = await exe('gatewayctl', [...args, '--json'], { cwd });
  if (r.code !== 0) throw new Error(`gatewayctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  // Nothing else on stderr: no warning from the executable's runtime about modules it cannot load.
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** A working folder of its own, like an operator's server directory. */
function workdir(): string {
  const dir = join(folder, `work-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  return dir;
}

describe('standalone executables', () => {
  it('are single files in a folder with no node_modules up to the root', () => {
    for (let dir = folder; ; dir = dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);
      if (dir === dirname(dir)) break;
    }
    for (const p of PROGRAMS) expect(statSync(join(folder, p.name)).mode & 0o111).not.toBe(0);
  });

  it.each(PROGRAMS.map((p) => p.name))('%s --version prints the package version and the commit', async (name) => {
    const r = await exe(name, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^(gateway-proxy )?\d+\.\d+\.\d+\S* \([0-9a-f]{7,}(-dirty)?\)$/);
  });

  it('gatewayctl --help lists the commands, and a bad flag exits 2 as bin/gatewayctl does', async () => {
    const help = await exe('gatewayctl', ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: gatewayctl');
    expect(help.stdout).toMatch(/orgs[\s\S]*keys/);
    const bad = await exe('gatewayctl', ['--no-such-flag']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--no-such-flag'");
  });

  it.each(['sqlite', 'postgres'] as const)('runs init, orgs create and keys create --json on %s with an empty environment', async (dialect) => {
    const cwd = workdir();
    const db = dialect === 'sqlite' ? [] : ['--db', await freshPgUrl()];
    const init = (await ok(['init', ...db], cwd)) as { dialect: string; migrations_applied: string[] };
    expect(init.dialect).toBe(dialect);
    expect(init.migrations_applied.length).toBeGreaterThan(0);
    expect(statSync(join(cwd, '.gateway', 'master.key')).mode & 0o777).toBe(0o600);
    const again = await exe('gatewayctl', ['db', 'status', ...db, '--json'], { cwd });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ pending: [] });
    expect(await ok(['orgs', 'create', 'acme', '--provider', 'mock', ...db], cwd)).toMatchObject({ name: 'acme', provider: 'mock' });
    const key = (await ok(['keys', 'create', '--org', 'acme', ...db], cwd)) as { key: string };
    expect(key.key).toMatch(/^gw_live_/);
    const missing = await exe('gatewayctl', ['orgs', 'get', 'nope', ...db, '--json'], { cwd });
    expect(missing.code).toBe(3);
  });

  it('unpacks the SQLite addon once into GATEWAY_CACHE_DIR and reuses it', async () => {
    const cwd = workdir();
    const cache = join(cwd, 'cache');
    const env = { GATEWAY_CACHE_DIR: cache };
    expect((await exe('gatewayctl', ['init', '--json'], { cwd, env })).code).toBe(0);
    const files = await run('ls', [cache]);
    const addon = files.stdout.trim();
    expect(addon).toMatch(/^better_sqlite3-[0-9a-f]{16}\.node$/);
    const first = statSync(join(cache, addon));
    expect(first.mode & 0o077).toBe(0);
    expect((await exe('gatewayctl', ['orgs', 'list', '--json'], { cwd, env })).code).toBe(0);
    expect(statSync(join(cache, addon)).mtimeMs).toBe(first.mtimeMs);
  });

  it('exits 6 with the reason when the SQLite addon cannot be unpacked', async () => {
    const cwd = workdir();
    const notADir = join(cwd, 'cache-file');
    writeFileSync(notADir, '');
    const r = await exe('gatewayctl', ['init'], { cwd, env: { GATEWAY_CACHE_DIR: notADir } });
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('cannot unpack the SQLite addon');
    expect(r.stderr).toContain('GATEWAY_CACHE_DIR');
  });

  it('asks for a missing org name on a terminal, like bin/gatewayctl', async () => {
    const cwd = workdir();
    expect((await exe('gatewayctl', ['init'], { cwd })).code).toBe(0);
    const answered = await onTerminal(`${join(folder, 'gatewayctl')} orgs create --provider mock`, cwd, 'Org name', 'acme\r');
    expect(answered).toContain('Org name');
    expect(await ok(['orgs', 'get', 'acme'], cwd)).toMatchObject({ name: 'acme' });
  });

  it.each(['sqlite', 'postgres'] as const)('gateway-proxy on %s serves a chat completion from the mock provider, checked with curl', async (dialect) => {
    const cwd = workdir();
    const db = dialect === 'sqlite' ? [] : ['--db', await freshPgUrl()];
    await ok(['init', ...db], cwd);
    await ok(['orgs', 'create', 'acme', '--provider', 'mock', ...db], cwd);
    const { key } = (await ok(['keys', 'create', '--org', 'acme', '--type', 'org', ...db], cwd)) as { key: string };
    const args = ['--port', '0', '--log-level', 'warn', ...db];
    const proxy = spawn(join(folder, 'gateway-proxy'), args, { cwd, env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proxy);
    let stderr = '';
    proxy.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await listeningUrl(proxy, () => stderr);
    const body = JSON.stringify({ model: 'mock/gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }] });
    const curl = await run('curl', ['-sS', '-w', '\n%{http_code}', '-H', `authorization: Bearer ${key}`, '-H', 'content-type: application/json', '-d', body, `${url}/v1/chat/completions`]);
    const [text, status] = splitStatus(curl.stdout);
    expect(status, text).toBe('200');
    const reply = JSON.parse(text) as { choices: { message: { content: string } }[]; usage: { total_tokens: number } };
    expect(reply.choices[0]?.message.content.length).toBeGreaterThan(0);
    expect(reply.usage.total_tokens).toBeGreaterThan(0);
    proxy.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => proxy.once('exit', (c) => r(c)));
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/Warning|single-executable/);
  });
});

function splitStatus(out: string): [string, string] {
  const i = out.lastIndexOf('\n');
  return [out.slice(0, i), out.slice(i + 1)];
}

async function listeningUrl(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway-proxy did not listen in 15 s: ${stderr()}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway-proxy exited ${code}: ${stderr()}`)));
  });
}

/** Runs a command on a pseudo-terminal (util-linux `script`), typing `answer` once `prompt` shows. */
async function onTerminal(command: string, cwd: string, prompt: string, answer: string): Promise<string> {
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, env: {}, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let screen = '';
  let typed = false;
  child.stdout.on('data', (d: Buffer) => {
    screen += d.toString();
    if (!typed && screen.includes(prompt)) {
      typed = true;
      child.stdin.write(answer);
    }
  });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  expect(code, screen).toBe(0);
  return screen;
}
