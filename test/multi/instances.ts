// Helpers for the multi-instance tests and benchmark: real bin/gateway-proxy processes (what
// operators run) on one store, and a private redis-server the test may kill and restart.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { tempDir } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gateway-proxy');
export const MASTER_KEY_HEX = 'a'.repeat(64);

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * bin/gateway-proxy runs dist/: compile when the sources are newer (CI builds first). Type
 * errors are the typecheck step's business; tsc still emits, so only a missing output fails.
 */
export function ensureBuilt(): void {
  const built = join(ROOT, 'dist/proxy/cli.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'))) return;
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'ignore' });
  if (!existsSync(built)) throw new Error('npm run build did not produce dist/proxy/cli.js');
}

export interface ProxyProcess {
  url: string;
  instanceId: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then the exit code once it has drained and flushed. */
  stop(): Promise<number | null>;
}

export interface ProxyProcessOptions {
  db: string;
  instanceId: string;
  redisUrl?: string;
  redisPrefix?: string;
  /** Extra flags (e.g. --flush-interval-ms). */
  args?: string[];
}

export async function startProxyProcess(o: ProxyProcessOptions): Promise<ProxyProcess> {
  const args = ['--port', '0', '--db', o.db, '--instance-id', o.instanceId, '--log-level', 'warn', '--flush-interval-ms', '100', ...(o.args ?? [])];
  if (o.redisUrl) args.push('--redis', o.redisUrl);
  if (o.redisPrefix) args.push('--redis-prefix', o.redisPrefix);
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: tempDir(),
    env: { PATH: process.env.PATH ?? '', HOME: tempDir(), GATEWAY_MASTER_KEY: MASTER_KEY_HEX },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!out.includes('\n')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`gateway-proxy ${o.instanceId} did not start; stderr: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const m = /^listening on (http:\/\/[^\s]+)\n/.exec(out);
  if (!m) throw new Error(`unexpected stdout from gateway-proxy: ${JSON.stringify(out)}`);
  let stopping: Promise<number | null> | null = null;
  return {
    url: m[1]!,
    instanceId: o.instanceId,
    child,
    stderr: () => err,
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        return exit;
      })();
      return stopping;
    },
  };
}

/** A port nobody listens on right now (the kernel picks it; we release it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let got = '';
    sock.setTimeout(500, () => sock.destroy());
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) sock.end();
    });
    sock.on('close', () => resolve(got.startsWith('+PONG')));
    sock.on('error', () => resolve(false));
  });
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL: the server is gone at once, as after a crash (no persistence: it comes back empty). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A redis-server of the test's own on a free port, with no persistence. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const up = async () => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    child = c;
    const deadline = Date.now() + 10_000;
    while (!(await pong(port))) {
      if (Date.now() > deadline || c.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const kill = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  await up();
  return { url: `redis://127.0.0.1:${port}`, port, kill, restart: up, close: kill };
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export async function post(url: string, path: string, key: string, body: unknown): Promise<HttpReply> {
  const res = await request(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

export async function get(url: string, path: string, key?: string): Promise<HttpReply> {
  const res = await request(`${url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

/** ms until `check` passes, polling every 25 ms, or throws after `limitMs`. */
export async function msUntil(check: () => Promise<boolean>, limitMs: number): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return performance.now() - start;
}
