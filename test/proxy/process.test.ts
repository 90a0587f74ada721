// The real program: bin/gateway-proxy spawned as a process. Configuration problems are all
// listed before the port opens; one "listening on" line; SIGTERM under load drains in-flight
// requests and flushes every usage event.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { tempDir } from '../helpers/cli.js';
import { createKey, createOrg, freshStore, hello, MASTER_KEY_HEX, storedEvents } from './harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gateway-proxy');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** bin/gateway-proxy runs dist/: build it when the sources are newer (CI builds before testing). */
beforeAll(() => {
  const built = join(ROOT, 'dist/proxy/cli.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newest(join(ROOT, 'src'))) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  }
}, 240_000);

interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tempDir(), env: { PATH: process.env.PATH ?? '', HOME: tempDir(), ...env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function listening(p: Spawned): Promise<string> {
  const deadline = Date.now() + 20_000;
  while (!p.stdout().includes('\n')) {
    if (Date.now() > deadline || p.child.exitCode !== null) throw new Error(`no listening line; stderr: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(p.stdout());
  if (!m) throw new Error(`unexpected stdout: ${JSON.stringify(p.stdout())}`);
  return m[1]!;
}

describe('configuration', () => {
  it('exits 2 before the port opens, listing every problem', async () => {
    const p = run(['--port', 'abc', '--log-level', 'loud', '--trusted-proxies', '10.0.0.0/8,300.1.1.1'], { GATEWAY_FLUSH_INTERVAL_MS: 'soon', GATEWAY_USAGE_WRITER: 'sometimes' });
    expect(await p.exit).toBe(2);
    expect(p.stdout()).toBe('');
    const err = p.stderr();
    for (const problem of ['--port', '--log-level', "'300.1.1.1'", 'GATEWAY_FLUSH_INTERVAL_MS', 'GATEWAY_USAGE_WRITER', 'master key']) expect(err).toContain(problem);
  });

  it('rejects an unknown flag with exit 2 and prints help with --help', async () => {
    const bad = run(['--prot', '1']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toContain('--prot');
    const help = run(['--help']);
    expect(await help.exit).toBe(0);
    expect(help.stdout()).toContain('Usage: gateway-proxy');
  });
});

describe('SIGTERM', () => {
  let fake: FakeUpstream;
  beforeAll(async () => {
    fake = await startFakeUpstream();
    fake.script(() => ({ type: 'default', chunkDelayMs: 30 }));
  });
  afterAll(() => fake?.close());

  // Both ways of writing SQLite usage batches: the writer thread (default) and the event loop.
  it.each(['thread', 'inline'])('under load drains in-flight requests and loses no usage event (usage writer: %s)', async (writer) => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'load', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
    const k = await createKey(gw, 'load', ['--daily-tokens', '100000000']);
    const p = run(['--port', '0', '--db', db, '--log-level', 'warn', '--usage-writer', writer], { GATEWAY_MASTER_KEY: MASTER_KEY_HEX, GATEWAY_FLUSH_INTERVAL_MS: '200' });
    const url = await listening(p);
    let served = 0;
    let stop = false;
    const worker = async (i: number) => {
      while (!stop) {
        try {
          const res = await request(`${url}/v1/chat/completions`, {
            method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
            body: JSON.stringify(hello('openai/gpt-4o-mini', { stream: i % 2 === 0 })),
          });
          const text = await res.body.text();
          if (res.statusCode === 200) {
            expect(text.includes('"error"')).toBe(false);
            served++;
          } else {
            expect(res.statusCode).toBe(503);
            return;
          }
        } catch {
          return; // connection refused or closed: the proxy is gone
        }
      }
    };
    const workers = Array.from({ length: 40 }, (_, i) => worker(i));
    // Under load: requests served and 40 more in flight when the signal arrives.
    const deadline = Date.now() + 30_000;
    while (served < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    stop = true;
    await Promise.all(workers);
    expect(served).toBeGreaterThanOrEqual(40);
    const events = await storedEvents(db, k.id);
    expect(events.length).toBe(served);
    expect(events.every((e) => e.status === 200 && e.usageSource === 'upstream')).toBe(true);
  });
});
