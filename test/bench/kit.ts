// What the benchmark scripts share: child processes that print "listening on <url>", CPU time
// read from /proc, one chat request timed, and a bench org with a key on a fresh SQLite store.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from 'undici';
import { cliFor, tempDir } from '../helpers/cli.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TICKS = 100; // USER_HZ on Linux

/**
 * Which cores the load and the servers measured run on. With BENCH_PIN=1 (the default on Linux
 * with `taskset` and at least two cores; BENCH_PIN=0 turns it off) the load generator (this
 * process) and the upstream share the first half of the cores and the servers measured (bare
 * proxy, gateway) the other half, so a server never waits for the client that loads it or
 * competes with it for a core. Unpinned on a 2-core machine all four processes share both cores
 * and the scheduler's choices move CPU per request by ±15% from one run to the next; pinned, the
 * per-round ratios of bare proxy and gateway loaded together hold within ~2%.
 */
export interface CpuPlan {
  /** taskset -c list for this process and the upstream. */
  load: string;
  /** taskset -c list for the servers measured. */
  servers: string;
}

export const pinning: CpuPlan | null = cpuPlan();

function cpuPlan(): CpuPlan | null {
  const want = process.env.BENCH_PIN;
  if (want === '0' || process.platform !== 'linux') return null;
  const cores = availableParallelism();
  let ok = cores >= 2;
  if (ok) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    if (want === '1') throw new Error('BENCH_PIN=1 needs Linux, taskset (util-linux) and at least two cores');
    return null;
  }
  const half = Math.floor(cores / 2);
  const list = (from: number, to: number) => (to - from === 1 ? String(from) : `${from}-${to - 1}`);
  return { load: list(0, half), servers: list(half, cores) };
}

/** Moves this process (every thread it has) onto the load cores; a no-op when unpinned. */
export function pinSelf(): void {
  if (pinning) execFileSync('taskset', ['-a', '-p', '-c', pinning.load, String(process.pid)], { stdio: 'ignore' });
}

/** How the run was placed, for the header line of a benchmark. */
export function pinningNote(): string {
  return pinning ? `load generator and upstream on cores ${pinning.load}, servers measured on ${pinning.servers} (BENCH_PIN=0: unpinned)` : 'unpinned';
}

/**
 * A server process and the URL it prints once it listens: node unless `command` says otherwise
 * (valgrind, say, whose own report on stderr `quiet` drops). `cpus` (a taskset list) pins it and
 * every thread it starts; taskset execs the command, so the child's pid is the server's.
 */
export async function startProcess(
  args: string[],
  env: Record<string, string> = {},
  opts: { command?: string; quiet?: boolean; cpus?: string } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const command = opts.command ?? process.execPath;
  const [file, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, command, ...args]] : [command, args];
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', opts.quiet ? 'ignore' : 'inherit'] });
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

// BENCH_MAX_TOKENS (16): raise it with BENCH_SSE_EVENTS, or long streams trip the guard against upstreams ignoring max_tokens.
// BENCH_MAX_TOKENS=none sends no max_tokens (as many chat clients do): the gateway then reserves its
// default cap and watches each stream against it event by event.
const MAX_TOKENS = process.env.BENCH_MAX_TOKENS === 'none' ? undefined : Number(process.env.BENCH_MAX_TOKENS ?? 16);
const body = (stream: boolean) => JSON.stringify({ model: 'bench/model', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: MAX_TOKENS, stream });

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
export function startGateway(db: string, opts: { bin?: string; nodeFlags?: string[]; env?: Record<string, string>; cpus?: string } = {}) {
  return startProcess(
    [...(opts.nodeFlags ?? []), opts.bin ?? join(ROOT, 'bin/gateway-proxy'), '--port', '0', '--db', db, '--log-level', 'warn'],
    { GATEWAY_MASTER_KEY: 'a'.repeat(64), ...opts.env },
    opts.cpus ? { cpus: opts.cpus } : {},
  );
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
