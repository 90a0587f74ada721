// With the store unreachable, the request path keeps working from memory: fail-open orgs are
// served from the snapshot (which proves the request path makes no database read), fail-closed
// orgs get 503, and usage events wait in memory until the store is back: none is lost.
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../src/proxy/config.js';
import { startProxy } from '../../src/proxy/main.js';
import { readEnv } from '../../src/shared/config.js';
import { blackhole } from '../helpers/blackhole.js';
import { PG_ADMIN_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, freshStore, type Harness, hello, MASTER_KEY, ok, startHarness, synced, waitForEvents } from './harness.js';

let h: Harness;
let dbName: string;
const M = 'mock/gpt-4o-mini';

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Cuts the proxy off its database: no new connections, existing ones terminated. */
async function cutStore(): Promise<void> {
  await admin(`alter database ${dbName} allow_connections false`);
  await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName}' and pid <> pg_backend_pid()`);
}

const restoreStore = () => admin(`alter database ${dbName} allow_connections true`);

beforeAll(async () => {
  h = await startHarness({ dialect: 'postgres', proxy: { pollIntervalMs: 100 } });
  dbName = new URL(h.db).pathname.slice(1);
  await createOrg(h.gw, 'open-org', ['--provider', 'mock', '--failure-mode', 'open']);
  await createOrg(h.gw, 'closed-org', ['--provider', 'mock', '--failure-mode', 'closed']);
}, 60_000);
afterAll(async () => {
  await restoreStore().catch(() => {});
  await h?.close();
});

describe('store unreachable', () => {
  it('serves fail-open orgs from the snapshot, refuses fail-closed orgs with 503, and loses no usage event', async () => {
    const open = await createKey(h.gw, 'open-org', ['--daily-tokens', '100000', '--rpm', '1000']);
    const closed = await createKey(h.gw, 'closed-org');
    await synced();
    expect((await chat(h.url, open.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    expect((await chat(h.url, closed.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    await waitForEvents(h.db, open.id, 1);

    await cutStore();
    await new Promise((r) => setTimeout(r, 500));
    const ready = await call(h.url, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ store: 'unreachable' });

    // Fail-open: every request is answered from memory; any database read would fail now.
    const served = [];
    for (let i = 0; i < 20; i++) served.push(await chat(h.url, open.key, hello(M, { max_tokens: 5, stream: i % 2 === 0 })));
    expect(served.map((r) => r.status)).toEqual(Array(20).fill(200));
    const refused = await chat(h.url, closed.key, hello(M, { max_tokens: 5 }));
    expect(refused.status).toBe(503);
    expect(refused.json()).toMatchObject({ error: { code: 'unavailable', type: 'service_unavailable_error' } });
    expect(refused.headers['retry-after']).toBe('1');
    const metrics = (await call(h.url, '/metrics')).text;
    expect(metrics).toMatch(/gateway_usage_events_pending [1-9]/);

    await restoreStore();
    const events = await waitForEvents(h.db, open.id, 21, 15_000);
    expect(events).toHaveLength(21);
    // Fail-closed orgs are served again once the proxy has seen the store answer (its next
    // config poll or usage write).
    let status = 0;
    for (const end = Date.now() + 3_000; status !== 200 && Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      status = (await chat(h.url, closed.key, hello(M, { max_tokens: 5 }))).status;
    }
    expect(status).toBe(200);
  });
});

describe('logs during a store outage', () => {
  it('say once that reloads fail and log no warning per refused request', async () => {
    const { db, gw } = await freshStore('postgres');
    const name = new URL(db).pathname.slice(1);
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _enc, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    const proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50, logger });
    try {
      await createOrg(gw, 'log-closed', ['--provider', 'mock', '--failure-mode', 'closed']);
      const k = await createKey(gw, 'log-closed');
      await synced();
      expect((await chat(proxy.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
      const from = lines.length;
      await admin(`alter database ${name} allow_connections false`);
      await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`);
      const statuses: number[] = [];
      for (const end = Date.now() + 2_000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
        statuses.push((await chat(proxy.url, k.key, hello(M, { max_tokens: 5 }))).status);
      }
      await admin(`alter database ${name} allow_connections true`);
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(5);
      const during = lines.slice(from);
      const reloads = during.filter((l) => l.msg.startsWith('configuration reload failed'));
      // ~20 failed polls: one warning, the rest at debug (before: a warning per poll).
      expect(reloads.length).toBeGreaterThan(5);
      expect(reloads.filter((l) => l.level === 40)).toHaveLength(1);
      // Each 503 was a warning before (one line per refused request).
      expect(during.filter((l) => l.level >= 40 && !l.msg.startsWith('configuration reload failed') && !l.msg.startsWith('usage events could not be written'))).toEqual([]);
    } finally {
      await admin(`alter database ${name} allow_connections true`).catch(() => {});
      await proxy.close();
    }
  }, 60_000);
});

describe('SQLite write lock held by another connection (a long gatewayctl transaction, a sqlite3 shell, a backup)', () => {
  it('keeps serving without stalls, fail-closed orgs included, and writes the held-back usage when the lock goes', async () => {
    const { default: Database } = await import('better-sqlite3');
    const s = await startHarness({ dialect: 'sqlite', proxy: { pollIntervalMs: 100, flushIntervalMs: 50 } });
    const other = new Database(s.db.replace(/^sqlite:/, ''));
    try {
      await createOrg(s.gw, 'locked-closed', ['--provider', 'mock', '--failure-mode', 'closed']);
      const k = await createKey(s.gw, 'locked-closed');
      await synced();
      expect((await chat(s.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
      other.exec('BEGIN EXCLUSIVE');
      // The proxy runs in this process: a write waiting for the lock would stop this loop too.
      let last = performance.now();
      let stall = 0;
      const ticker = setInterval(() => {
        const t = performance.now();
        stall = Math.max(stall, t - last);
        last = t;
      }, 10);
      const slowest = { health: 0, chat: 0 };
      const statuses: number[] = [];
      const until = Date.now() + 2_000;
      while (Date.now() < until) {
        let t = performance.now();
        expect((await call(s.url, '/healthz')).status).toBe(200);
        slowest.health = Math.max(slowest.health, performance.now() - t);
        t = performance.now();
        statuses.push((await chat(s.url, k.key, hello(M, { max_tokens: 5 }))).status);
        slowest.chat = Math.max(slowest.chat, performance.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
      clearInterval(ticker);
      other.exec('COMMIT');
      // Before, each write attempt waited out the 5 s busy timeout on the event loop.
      expect(stall).toBeLessThan(500);
      expect(slowest.health).toBeLessThan(500);
      expect(slowest.chat).toBeLessThan(500);
      // A lock shorter than the grace is not an outage: the fail-closed org is served throughout.
      expect(new Set(statuses)).toEqual(new Set([200]));
      const events = await waitForEvents(s.db, k.id, statuses.length + 1, 10_000);
      expect(events).toHaveLength(statuses.length + 1);
    } finally {
      if (other.inTransaction) other.exec('COMMIT');
      other.close();
      await s.close();
    }
  });
});

describe('Postgres lost without a reset (a partition, a dead host: connections stay open, nothing answers)', () => {
  it('gives up on the silent connections: probes answer, fail-closed orgs get 503, and usage and config flow again once the network heals', async () => {
    const { db, gw } = await freshStore('postgres');
    const target = new URL(db);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 5432) });
    const proxy = await startProxy({ dbUrl: hole.via(db), port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50, storeTimeoutMs: 1_000 });
    const timed = async <T>(p: Promise<T>) => {
      const t = performance.now();
      const value = await p;
      return { value, ms: performance.now() - t };
    };
    try {
      await createOrg(gw, 'p-open', ['--provider', 'mock', '--failure-mode', 'open']);
      await createOrg(gw, 'p-closed', ['--provider', 'mock', '--failure-mode', 'closed']);
      const open = await createKey(gw, 'p-open', ['--daily-tokens', '1000000']);
      const closed = await createKey(gw, 'p-closed');
      await synced();
      let served = 0;
      for (const k of [open, closed]) expect((await chat(proxy.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
      served++;

      hole.swallow();
      const lostAt = Date.now();
      const closedStatuses: Array<{ at: number; status: number }> = [];
      let slowestHealth = 0;
      let slowestReady = 0;
      const readyStatuses = new Set<number>();
      while (Date.now() - lostAt < 5_000) {
        const health = await timed(call(proxy.url, '/healthz'));
        expect(health.value.status).toBe(200);
        slowestHealth = Math.max(slowestHealth, health.ms);
        const ready = await timed(call(proxy.url, '/readyz'));
        slowestReady = Math.max(slowestReady, ready.ms);
        readyStatuses.add(ready.value.status);
        const o = await chat(proxy.url, open.key, hello(M, { max_tokens: 5, stream: served % 2 === 0 }));
        expect(o.status).toBe(200);
        served++;
        closedStatuses.push({ at: Date.now() - lostAt, status: (await chat(proxy.url, closed.key, hello(M, { max_tokens: 5 }))).status });
        await new Promise((r) => setTimeout(r, 100));
      }
      // Before, /readyz waited on the silent connection forever, the fail-closed org was served
      // throughout, and usage writes and config polls hung even after the network came back.
      expect(slowestHealth).toBeLessThan(500);
      expect(slowestReady).toBeLessThan(1_500);
      expect(readyStatuses.has(503)).toBe(true);
      const firstRefusal = closedStatuses.find((s) => s.status === 503);
      expect(firstRefusal?.at).toBeLessThan(3_500);
      expect(closedStatuses.at(-1)?.status).toBe(503);

      hole.heal();
      const healedAt = Date.now();
      let status = 0;
      while (status !== 200 && Date.now() - healedAt < 15_000) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await chat(proxy.url, closed.key, hello(M, { max_tokens: 5 }))).status;
      }
      expect(status).toBe(200);
      // Every request the fail-open org was served has its event, once.
      const events = await waitForEvents(db, open.id, served, 15_000);
      expect(events).toHaveLength(served);
      expect(new Set(events.map((e) => e.requestId)).size).toBe(served);
      // Config changes reach the proxy again (polls no longer hang on lost connections).
      await ok(gw, ['keys', 'revoke', open.id, '--yes']);
      let revoked = false;
      for (const end = Date.now() + 2_000; !revoked && Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
        revoked = (await chat(proxy.url, open.key, hello(M, { max_tokens: 5 }))).status === 401;
      }
      expect(revoked).toBe(true);
    } finally {
      const closing = await timed(proxy.close());
      await hole.close();
      expect(closing.ms).toBeLessThan(5_000);
    }
  }, 90_000);

  it('reads --store-timeout-ms and GATEWAY_STORE_TIMEOUT_MS (default 10000, at least 100)', () => {
    const run = (argv: string[], vars: Record<string, string> = {}) => {
      const p = parseCli(argv, readEnv({ GATEWAY_MASTER_KEY: 'a'.repeat(64), ...vars }));
      if (p.kind !== 'run') throw new Error(p.kind);
      return p;
    };
    expect(run([]).config.storeTimeoutMs).toBe(10_000);
    expect(run(['--store-timeout-ms', '2500']).config.storeTimeoutMs).toBe(2_500);
    expect(run([], { GATEWAY_STORE_TIMEOUT_MS: '30000' }).config.storeTimeoutMs).toBe(30_000);
    expect(run(['--store-timeout-ms', '5']).problems.join()).toContain('--store-timeout-ms');
    // Past what a node timer can wait (2^31 − 1 ms) a timeout would fire at once: refused, for
    // every duration (the store's client timeout runs a second longer, so it stops a second short).
    expect(run(['--store-timeout-ms', '2147482647']).problems).toEqual([]);
    expect(run(['--store-timeout-ms', '2147482648']).problems.join()).toContain('from 100 to 2147482647');
    expect(run(['--upstream-body-timeout-ms', '2147483648']).problems.join()).toContain('--upstream-body-timeout-ms');
    expect(run([], { GATEWAY_SHUTDOWN_TIMEOUT_MS: '9007199254740991' }).problems.join()).toContain('2147483647');
  });
});
