// What the benchmark scripts share: child processes that print "listening on <url>", CPU time
// read from /proc, one chat request timed, and a bench org with a key on a fresh SQLite store.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'undici';
import { cliFor, tempDir } from '../helpers/cli.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TICKS = 100; // USER_HZ on Linux

/**
 * A server process and the URL it prints once it listens: node unless `command` says otherwise
 * (valgrind, say, whose own report on stderr `quiet` drops).
 */
export async function startProcess(
  args: string[],
  env: Record<string, string> = {},
  opts: { command?: string; quiet?: boolean } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(opts.command ?? process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', opts.quiet ? 'ignore' : 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    // BENCH_CHILD_STDOUT=<file> keeps what the servers print (e.g. node's --trace-deopt) in a file.
    const keep = process.env.BENCH_CHILD_STDOUT;
    child.stdout!.on('data', (d) => {
      if (keep) appendFileSync(keep, d);
      out = (out + d).slice(-4096);
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
  return { child, url };
}

/** User and system CPU seconds of a process so far. */
export function cpuSeconds(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / TICKS, sys: Number(fields[12]) / TICKS };
}

export interface Target {
  name: string;
  url: string;
  pid: number;
  headers: Record<string, string>;
}

const body = (stream: boolean) => JSON.stringify({ model: 'bench/model', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 16, stream });

/** One chat completion, read to the end: total time and time to the first body byte, ms. */
export async function chatOnce(pool: Pool, t: Target, stream: boolean): Promise<{ total: number; firstByte: number }> {
  const start = performance.now();
  const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', ...t.headers }, body: body(stream) });
  let firstByte = 0;
  for await (const _ of res.body) if (!firstByte) firstByte = performance.now() - start;
  if (res.statusCode !== 200) throw new Error(`${t.name}: status ${res.statusCode}`);
  return { total: performance.now() - start, firstByte };
}

/** Keeps `connections` requests in flight on each target at the same time (closed loop) for `ms`; requests done per target. */
export async function loadTogether(targets: readonly Target[], pools: readonly Pool[], stream: boolean, ms: number, connections: number): Promise<number[]> {
  const done = targets.map(() => 0);
  const end = performance.now() + ms;
  await Promise.all(
    targets.flatMap((t, i) =>
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          await chatOnce(pools[i]!, t, stream);
          done[i]!++;
        }
      }),
    ),
  );
  return done;
}

/** A fresh store (SQLite unless `db` names another) with an org on the bench upstream and an org key under three limits. */
export async function setupBenchGateway(upstreamUrl: string, opts: { db?: string; env?: Record<string, string> } = {}): Promise<{ db: string; key: string }> {
  const db = opts.db ?? join(tempDir('gw-bench-'), 'gateway.db');
  const gw = cliFor(db, opts.env);
  const must = async (argv: string[]) => {
    const r = await gw([...argv, '--json']);
    if (r.code !== 0) throw new Error(`gatewayctl ${argv.join(' ')}: ${r.stderr}`);
    return r.json<{ key: string }>();
  };
  await must(['init']);
  await must(['orgs', 'create', 'bench', '--provider', 'openai-compatible', '--base-url', `${upstreamUrl}/v1`, '--unknown-models', 'free']);
  const k = await must(['keys', 'create', '--org', 'bench', '--type', 'org', '--daily-tokens', '1000000000', '--rpm', '100000000', '--budget', '1000000', '--budget-period', 'month']);
  return { db, key: k.key };
}

/** gateway-proxy (bin/gateway-proxy of this checkout unless `bin` names another) on a store, production settings, quiet logs. */
export function startGateway(db: string, opts: { bin?: string; nodeFlags?: string[]; env?: Record<string, string> } = {}) {
  return startProcess([...(opts.nodeFlags ?? []), opts.bin ?? join(ROOT, 'bin/gateway-proxy'), '--port', '0', '--db', db, '--log-level', 'warn'], {
    GATEWAY_MASTER_KEY: 'a'.repeat(64),
    ...opts.env,
  });
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
