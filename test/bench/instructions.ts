// `npm run bench:instructions -- [other gateway-proxy bin | bare]`: instructions per request of
// gateway-proxy's main thread (the event loop: JavaScript, node, and the GC work done there)
// under valgrind's callgrind, which counts instructions instead of timing them. It sees only
// user-space work (no kernel time, no cache misses, no GC helper threads). The count does not
// depend on how busy the machine is, but it still moves by ±5% between runs of one build (usage
// batches are flushed by the clock; scavenges and optimizing compiles land when they land), so
// compare several runs. Each build serves WARM requests, then its counters are zeroed and it
// serves COUNT more, JSON or streaming, 8 at a time; the upstream and this client run natively.
// Knobs: INSTR_WARM (3000), INSTR_COUNT (2000), INSTR_MODES (json,stream).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { chatOnce, ROOT, setupBenchGateway, startProcess, type Target } from './kit.js';

const WARM = Number(process.env.INSTR_WARM ?? 3000);
const COUNT = Number(process.env.INSTR_COUNT ?? 2000);
const MODES = (process.env.INSTR_MODES ?? 'json,stream').split(',');
const IN_FLIGHT = 8;

async function serve(pool: Pool, t: Target, stream: boolean, n: number): Promise<void> {
  let left = n;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await chatOnce(pool, t, stream);
    }),
  );
}

/** The instruction count (Ir) of one callgrind dump. */
function instructionsOf(file: string): number {
  const text = readFileSync(file, 'utf8');
  const m = /^summary: (\d+)/m.exec(text) ?? /^totals: (\d+)/m.exec(text);
  if (!m) throw new Error(`no instruction count in ${file}`);
  return Number(m[1]);
}

async function measure(bin: string, upstreamUrl: string, stream: boolean): Promise<number> {
  const { db, key } = await setupBenchGateway(upstreamUrl);
  const out = mkdtempSync(join(tmpdir(), 'gw-callgrind-'));
  const args = bin === 'bare' ? [join(ROOT, 'test/bench/bare-proxy.mjs'), `${upstreamUrl}/v1`] : [bin, '--port', '0', '--db', db, '--log-level', 'warn'];
  const { child, url } = await startProcess(
    ['--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${join(out, 'cg.%p')}`, process.execPath, ...args],
    { GATEWAY_MASTER_KEY: 'a'.repeat(64) },
    { command: 'valgrind', quiet: true },
  );
  const t: Target = { name: 'gateway', url, pid: child.pid!, headers: { authorization: `Bearer ${key}` } };
  const pool = new Pool(url, { connections: IN_FLIGHT, keepAliveTimeout: 600_000 });
  await serve(pool, t, stream, WARM);
  execFileSync('callgrind_control', ['--zero', String(child.pid)], { stdio: 'ignore' });
  await serve(pool, t, stream, COUNT);
  execFileSync('callgrind_control', ['--dump', String(child.pid)], { stdio: 'ignore' });
  await pool.close();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  // The dump asked for at the end of the counted requests is part 1, one file per thread
  // (cg.<pid>.1-<thread>); the one written at exit holds the shutdown. Only the main thread
  // counts: V8's compiler and GC helper threads run whenever valgrind schedules them, which
  // moved the all-threads total by ±5% between identical runs.
  const part = readdirSync(out).find((f) => f.endsWith('.1-01'));
  if (!part) throw new Error(`callgrind wrote no dump of the counted requests in ${out}`);
  return instructionsOf(join(out, part)) / COUNT;
}

async function main() {
  const bins = [join(ROOT, 'bin/gateway-proxy'), ...(process.argv[2] ? [process.argv[2]] : [])];
  const up = await startProcess([join(ROOT, 'test/bench/upstream-server.mjs')]);
  console.log(`instructions per request under callgrind (${WARM} warm-up requests, then ${COUNT} counted, ${IN_FLIGHT} in flight)`);
  for (const stream of [false, true].filter((s) => MODES.includes(s ? 'stream' : 'json'))) {
    const figures: number[] = [];
    for (const bin of bins) {
      const ir = await measure(bin, up.url, stream);
      figures.push(ir);
      console.log(`  ${(stream ? 'streaming' : 'JSON').padEnd(9)} ${Math.round(ir).toLocaleString('en-US').padStart(10)}  ${bin}`);
    }
    if (figures.length === 2) console.log(`  ${''.padEnd(9)} second / first: ${(figures[1]! / figures[0]!).toFixed(3)}`);
  }
  up.child.kill('SIGTERM');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
