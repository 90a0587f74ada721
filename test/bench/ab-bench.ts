// `npm run bench:ab -- <other gateway-proxy bin>`: CPU per request of two gateway-proxy builds
// (this checkout's, "A", and another, "B", e.g. a git worktree of another commit, built) served
// AT THE SAME TIME at the same fixed rate each, JSON or streaming. Sequential runs on a shared
// 2-core VM swing by ±15% from one minute to the next; two processes measured side by side see
// the same weather, so the per-round ratio B/A is stable to ~2% (A/A runs), which is what small
// optimizations need. With no argument both sides run this checkout (an A/A run); with `bare`,
// B is the bare undici pass-through proxy of the main benchmark (the gateway's same-load ratio). A script that
// prints figures, not a test.
// Knobs: AB_RATE (requests/s for each, default 1500; 0: each as fast as it goes, closed loop), AB_SECONDS (6), AB_ROUNDS (5),
// AB_MODES (json,stream), AB_ENV_B ("K=V …": environment of B only), AB_NODE_FLAGS_B (node's flags for B only),
// BENCH_PIN (0: no core pinning; pinned, A and B share the servers' cores, see kit.ts).
import { join } from 'node:path';
import { Pool } from 'undici';
import { chatOnce, cpuSeconds, loadTogether, median, pinning, pinningNote, pinSelf, ROOT, setupBenchGateway, startGateway, startProcess, type Target } from './kit.js';

const RATE = Number(process.env.AB_RATE ?? 1500);
const SECONDS = Number(process.env.AB_SECONDS ?? 6);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 5);
const MODES = (process.env.AB_MODES ?? 'json,stream').split(',');
const CONNECTIONS = 50;

async function saturate(targets: Target[], pools: Pool[], stream: boolean, ms: number): Promise<{ done: number[]; missed: number[] }> {
  return { done: await loadTogether(targets, pools, stream, ms, CONNECTIONS), missed: targets.map(() => 0) };
}

/** Offers `rate` requests/s to each target at once (open loop) for `ms`; returns requests done per target. */
async function offer(targets: Target[], pools: Pool[], stream: boolean, ms: number, swap = false): Promise<{ done: number[]; missed: number[] }> {
  if (RATE === 0) return saturate(targets, pools, stream, ms);
  // Which target gets each tick's requests first alternates by round (the first had an edge of ~2%).
  const order = swap ? [...targets.keys()].reverse() : [...targets.keys()];
  const inFlight = targets.map(() => 0);
  const done = targets.map(() => 0);
  const missed = targets.map(() => 0);
  const failures: unknown[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < ms) {
    const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
    for (; sent < due; sent++) {
      for (const i of order) {
        const t = targets[i]!;
        if (inFlight[i]! >= 4 * CONNECTIONS) {
          missed[i]!++;
          continue;
        }
        inFlight[i]!++;
        chatOnce(pools[i]!, t, stream).then(
          () => {
            inFlight[i]!--;
            done[i]!++;
          },
          (err: unknown) => {
            inFlight[i]!--;
            failures.push(err);
          },
        );
      }
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  while (inFlight.some((n) => n > 0)) await new Promise((r) => setTimeout(r, 2));
  if (failures.length) throw failures[0];
  return { done, missed };
}

async function main() {
  const binB = process.argv[2] ?? join(ROOT, 'bin/gateway-proxy');
  const envB = Object.fromEntries(
    (process.env.AB_ENV_B ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  pinSelf();
  const servers = pinning ? { cpus: pinning.servers } : {};
  const up = await startProcess([join(ROOT, 'test/bench/upstream-server.mjs')], {}, pinning ? { cpus: pinning.load } : {});
  // Each side has its own store, so neither waits on the other's SQLite write lock.
  const stores = [await setupBenchGateway(up.url), await setupBenchGateway(up.url)];
  const a = await startGateway(stores[0]!.db, servers);
  const flagsB = process.env.AB_NODE_FLAGS_B?.split(' ').filter(Boolean) ?? [];
  const b =
    binB === 'bare'
      ? await startProcess([...flagsB, join(ROOT, 'test/bench/bare-proxy.mjs'), `${up.url}/v1`], envB, servers)
      : await startGateway(stores[1]!.db, { bin: binB, env: envB, nodeFlags: flagsB, ...servers });
  const targets: Target[] = [
    { name: 'A', url: a.url, pid: a.child.pid!, headers: { authorization: `Bearer ${stores[0]!.key}` } },
    { name: 'B', url: b.url, pid: b.child.pid!, headers: { authorization: `Bearer ${stores[1]!.key}` } },
  ];
  console.log(`A: ${join(ROOT, 'bin/gateway-proxy')}\nB: ${binB}${Object.keys(envB).length ? ` with ${process.env.AB_ENV_B}` : ''}${flagsB.length ? ` under node ${flagsB.join(' ')}` : ''}`);
  const load = RATE === 0 ? `${CONNECTIONS} requests kept in flight on each (closed loop)` : `${RATE} requests/s offered to each`;
  console.log(`${load} at once, ${CONNECTIONS} connections each, ${SECONDS} s a round, ${ROUNDS} rounds; ${pinningNote()}\n`);
  for (const stream of [false, true].filter((s) => MODES.includes(s ? 'stream' : 'json'))) {
    const pools = targets.map((t) => new Pool(t.url, { connections: CONNECTIONS, keepAliveTimeout: 60_000 }));
    await offer(targets, pools, stream, 3_000); // warm-up: JIT, pools, counters
    const cpu = targets.map(() => [] as number[]);
    const ratios: number[] = [];
    console.log(`${stream ? 'streaming' : 'JSON'}:  round   A µs/req   B µs/req   B/A    A req/s   B req/s`);
    for (let round = 0; round < ROUNDS; round++) {
      const before = targets.map((t) => cpuSeconds(t.pid));
      const { done, missed } = await offer(targets, pools, stream, SECONDS * 1000, round % 2 === 1);
      const us = targets.map((t, i) => {
        const after = cpuSeconds(t.pid);
        return ((after.user - before[i]!.user + after.sys - before[i]!.sys) / done[i]!) * 1e6;
      });
      for (const [i, u] of us.entries()) cpu[i]!.push(u);
      ratios.push(us[1]! / us[0]!);
      const late = missed.some((m) => m > 0) ? `  (not sent, a server fell behind: ${missed.join(' / ')})` : '';
      const rps = done.map((d) => (d / SECONDS).toFixed(0).padStart(9)).join(' ');
      console.log(`        ${String(round + 1).padStart(5)} ${us[0]!.toFixed(1).padStart(10)} ${us[1]!.toFixed(1).padStart(10)} ${ratios.at(-1)!.toFixed(3).padStart(7)}  ${rps}${late}`);
    }
    console.log(`        median ${median(cpu[0]!).toFixed(1).padStart(9)} ${median(cpu[1]!).toFixed(1).padStart(10)} ${median(ratios).toFixed(3).padStart(7)}  (ratios ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})\n`);
    await Promise.all(pools.map((p) => p.close()));
  }
  const exited = [a.child, b.child].map((c) => new Promise((resolve) => c.once('exit', resolve)));
  for (const c of [a.child, b.child, up.child]) c.kill('SIGTERM');
  await Promise.all(exited);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
