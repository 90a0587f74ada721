// `npm run bench:multi`: throughput of gateway-proxy on one Postgres store with its counters in
// Redis, one instance vs two behind a client-side round robin (what a load balancer does), at
// 50 concurrent connections in total, JSON and streaming; one instance with memory counters as
// the reference. Every proxy and the upstream run in their own processes; all share this
// machine's cores with Postgres, Redis and the load generator, so say how many there are.
// A script that prints figures, not a test. Needs Postgres and Redis (test/scripts/services.sh).
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { randomString } from '../../src/shared/ids.js';
import { freshPgUrl, REDIS_URL } from '../helpers/stores.js';
import { MASTER_KEY_HEX, type ProxyProcess, startProxyProcess } from '../multi/instances.js';
import { cpuSeconds as processCpu, ROOT, setupBenchGateway, startProcess } from './kit.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 50;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** User + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const { user, sys } = processCpu(pid);
  return user + sys;
}

/** Four counters per request (daily tokens, rpm, monthly budget, and the key's), so the shared counters do real work on every request. */
const setup = async (upstreamUrl: string) => setupBenchGateway(upstreamUrl, { db: await freshPgUrl(), env: { GATEWAY_MASTER_KEY: MASTER_KEY_HEX } });

const body = (stream: boolean) => JSON.stringify({ model: 'bench/model', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 16, stream });

/** 50 connections in total, split evenly over the instances; returns requests per second. */
async function load(proxies: ProxyProcess[], key: string, stream: boolean, seconds: number): Promise<{ rps: number; errors: number; p50: number; p99: number; cpuUs: number }> {
  const per = CONCURRENCY / proxies.length;
  const pools = proxies.map((p) => new Pool(p.url, { connections: per, keepAliveTimeout: 60_000 }));
  const lat: number[] = [];
  let errors = 0;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const cpu0 = proxies.reduce((sum, p) => sum + cpuSeconds(p.child.pid!), 0);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      const pool = pools[i % pools.length]!;
      while (performance.now() < end) {
        const start = performance.now();
        const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body: body(stream) });
        await res.body.dump();
        if (res.statusCode === 200) lat.push(performance.now() - start);
        else errors++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = proxies.reduce((sum, p) => sum + cpuSeconds(p.child.pid!), 0) - cpu0;
  await Promise.all(pools.map((p) => p.close()));
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? 0;
  return { rps: lat.length / secs, errors, p50: pct(50), p99: pct(99), cpuUs: (cpu / Math.max(1, lat.length)) * 1e6 };
}

interface Setup {
  name: string;
  instances: number;
  redis: boolean;
}

const SETUPS: Setup[] = [
  { name: '1 instance, memory counters', instances: 1, redis: false },
  { name: '1 instance, Redis counters', instances: 1, redis: true },
  { name: '2 instances, Redis counters', instances: 2, redis: true },
];

/** Runs one setup: starts its proxies, measures JSON then streaming, stops them. */
async function measure(s: Setup, db: string, key: string): Promise<Record<string, Awaited<ReturnType<typeof load>>>> {
  const prefix = `gw-bench-${randomString(6)}:`;
  const proxies = await Promise.all(
    Array.from({ length: s.instances }, (_, i) =>
      startProxyProcess({ db, instanceId: `bench-${i}`, redisUrl: s.redis ? REDIS_URL : undefined, redisPrefix: s.redis ? prefix : undefined, args: ['--flush-interval-ms', '500'] }),
    ),
  );
  try {
    const out: Record<string, Awaited<ReturnType<typeof load>>> = {};
    for (const stream of [false, true]) {
      await load(proxies, key, stream, 0.5); // warm-up: JIT, keep-alive sockets, seeded counters
      out[stream ? 'streaming' : 'JSON'] = await load(proxies, key, stream, SECONDS);
    }
    return out;
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
  }
}

async function main() {
  const up = await startProcess([join(ROOT, 'test/bench/upstream-server.mjs')]);
  const { db, key } = await setup(up.url);
  console.log(`gateway-proxy on Postgres: 1 vs 2 instances, ${CONCURRENCY} connections in total, ${SECONDS} s per run, best of ${ROUNDS} interleaved rounds; node ${process.version}, ${cpus().length} cores`);
  console.log('Upstream, proxies, Postgres, Redis and this load generator all share those cores.\n');
  // Rounds interleave the setups so that noise from the rest of the machine hits them alike.
  const best: Record<string, Awaited<ReturnType<typeof load>>> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of SETUPS) {
      for (const [mode, r] of Object.entries(await measure(s, db, key))) {
        const id = `${s.name}/${mode}`;
        if (!best[id] || r.rps > best[id].rps) best[id] = r;
      }
    }
  }
  console.log('  setup                            mode        req/s   p50 ms   p99 ms   non-200   proxy CPU µs/req');
  for (const s of SETUPS) {
    for (const mode of ['JSON', 'streaming']) {
      const r = best[`${s.name}/${mode}`]!;
      console.log(`  ${s.name.padEnd(32)} ${mode.padEnd(9)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.errors).padStart(9)} ${r.cpuUs.toFixed(0).padStart(18)}`);
    }
  }
  for (const mode of ['JSON', 'streaming']) {
    const one = best[`1 instance, Redis counters/${mode}`]!.rps;
    const two = best[`2 instances, Redis counters/${mode}`]!.rps;
    console.log(`\n${mode}: 2 instances give ${(two / one).toFixed(2)}× the throughput of 1 (both with Redis counters)`);
  }
  up.child.kill('SIGTERM');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
