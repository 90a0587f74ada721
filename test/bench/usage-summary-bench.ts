// Benchmark (a script, not a test): `gatewayctl usage summary` over 1,000,000 usage events on
// SQLite. Seeds the events and their daily rollups the fast way (prepared statements in one
// transaction), then times the real command in-process through run(argv).
//
//   npx tsx test/bench/usage-summary-bench.ts [--events 1000000] [--days 90] [--keep]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { run } from '../../src/cli/main.js';
import { openStore } from '../../src/shared/db/store.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, days: { type: 'string', default: '90' }, keep: { type: 'boolean', default: false } } });
const EVENTS = Number(values.events);
const DAYS = Number(values.days);
const dir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
const db = join(dir, 'gateway.db');
const env = { USER: 'bench', GATEWAY_MASTER_KEY: 'b'.repeat(64), GATEWAY_DATA_DIR: join(dir, 'data') };

async function gw(argv: string[]): Promise<{ code: number; stdout: string; ms: number }> {
  let stdout = '';
  let stderr = '';
  const started = performance.now();
  const code = await run(['--db', db, ...argv], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from([]),
    env,
    cwd: dir,
    interactive: false,
    stdoutIsTTY: false,
  });
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`gatewayctl ${argv.join(' ')} exited ${code}: ${stderr}`);
  return { code, stdout, ms };
}

async function seed(): Promise<void> {
  await gw(['init']);
  const orgIds: string[] = [];
  for (const name of ['acme', 'globex']) orgIds.push(JSON.parse((await gw(['orgs', 'create', name, '--provider', 'mock', '--json'])).stdout).id);
  const keys: { id: string; org: string; user: string }[] = [];
  for (let i = 0; i < 20; i++) {
    const org = i % 2 === 0 ? 'acme' : 'globex';
    const key = JSON.parse((await gw(['keys', 'create', '--org', org, '--json'])).stdout) as { id: string; org_id: string };
    keys.push({ id: key.id, org: key.org_id, user: i % 3 === 0 ? '' : `usr_bench${i % 3}` });
  }
  const models = ['openai/gpt-4o', 'openai/gpt-4o-mini', 'anthropic/claude-3.5-sonnet', 'meta-llama/llama-3.1-8b-instruct', 'mock/echo'];
  const store = await openStore(db);
  const sqlite = store.sqlite!;
  const insertEvent = sqlite.prepare(
    `insert into usage_events (request_id, ts, org_id, user_id, key_id, model, provider, prompt_tokens, completion_tokens, total_tokens, cost_micros, status, error_code, latency_ms, ttfb_ms, stream, usage_source, instance)
     values (?, ?, ?, ?, ?, ?, 'openrouter', ?, ?, ?, ?, 200, null, 350, 120, 0, 'upstream', 'bench')`,
  );
  const insertRollup = sqlite.prepare(
    `insert into usage_daily (day, org_id, key_id, user_id, model, requests, errors, prompt_tokens, completion_tokens, total_tokens, cost_micros) values (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
  );
  sqlite.pragma('cache_size = -262144');
  const now = Date.now();
  const rollups = new Map<string, [string, string, string, string, string, number, number, number, number, number]>();
  let x = 12345;
  const rand = () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
  const started = performance.now();
  sqlite.transaction(() => {
    for (let i = 0; i < EVENTS; i++) {
      const k = keys[Math.floor(rand() * keys.length)]!;
      const model = models[Math.floor(rand() * models.length)]!;
      // In time order, as a proxy writes them: index inserts append instead of landing at random.
      const ts = now - DAYS * 86_400_000 + Math.floor(((i + rand()) * DAYS * 86_400_000) / EVENTS);
      const prompt = Math.floor(rand() * 2000);
      const completion = Math.floor(rand() * 600);
      const cost = Math.floor(rand() * 20_000);
      insertEvent.run(`req_${i}`, ts, k.org, k.user || null, k.id, model, prompt, completion, prompt + completion, cost);
      const day = new Date(ts).toISOString().slice(0, 10);
      const id = `${day}|${k.id}|${model}`;
      const r = rollups.get(id) ?? [day, k.org, k.id, k.user, model, 0, 0, 0, 0, 0];
      r[5] += 1;
      r[6] += prompt;
      r[7] += completion;
      r[8] += prompt + completion;
      r[9] += cost;
      rollups.set(id, r);
    }
    for (const r of rollups.values()) insertRollup.run(...r);
  })();
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  sqlite.exec('analyze');
  await store.close();
  console.log(`seeded ${EVENTS.toLocaleString('en')} events and ${rollups.size.toLocaleString('en')} rollup rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function time(label: string, argv: string[], reps = 5): Promise<void> {
  const times: number[] = [];
  let out = '';
  for (let i = 0; i < reps; i++) {
    const r = await gw(argv);
    times.push(r.ms);
    out = r.stdout;
  }
  times.sort((a, b) => a - b);
  const requests = (JSON.parse(out) as { requests: number }).requests;
  console.log(`${label.padEnd(44)} median ${times[Math.floor(reps / 2)]!.toFixed(1).padStart(7)} ms  best ${times[0]!.toFixed(1).padStart(7)} ms  (requests=${requests})`);
}

try {
  await seed();
  console.log('gatewayctl usage summary, in-process (includes opening the store), 5 runs each:');
  await time('usage summary', ['usage', 'summary', '--json']);
  await time('usage summary --since 30d', ['usage', 'summary', '--since', '30d', '--json']);
  await time('usage summary --by model', ['usage', 'summary', '--by', 'model', '--json']);
  await time('usage summary --by day', ['usage', 'summary', '--by', 'day', '--json']);
  await time('usage summary --org acme --since 7d --by key', ['usage', 'summary', '--org', 'acme', '--since', '7d', '--by', 'key', '--json']);
  await time('usage summary --since 1h (raw events only)', ['usage', 'summary', '--since', '1h', '--json']);
} finally {
  if (values.keep) console.log(`store kept at ${db}`);
  else rmSync(dir, { recursive: true, force: true });
}
