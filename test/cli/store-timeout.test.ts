// gatewayctl on a Postgres that stops answering without closing its connections (a partition, a
// dead host, lost firewall state): a command gives up after --store-timeout-ms with exit 6 and a
// message naming the store, and a write it was making is not kept. bin/gatewayctl is spawned, so
// the process itself has to end, not only run() return. A held lock parks the command inside the
// statement we want, so the black hole swallows it mid-query, not before or after.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/cli/app.js';
import { type Blackhole, blackhole } from '../helpers/blackhole.js';
import { cli, cliFor, tempDir } from '../helpers/cli.js';
import { freshPgUrl, freshSqlitePath } from '../helpers/stores.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/gatewayctl');
const MASTER_KEY = 'a'.repeat(64);
const PASSWORD = 's3cret-pw';
/** The timeout the commands run with, and what they may take past it: pg's extra second, and process exit. */
const TIMEOUT_MS = 1_000;
const GIVES_UP_MS = TIMEOUT_MS + 1_000 + 1_500;

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** bin/gatewayctl runs dist/: build it when the sources are newer (CI builds before testing). */
beforeAll(async () => {
  const built = join(ROOT, 'dist/cli/main.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newest(join(ROOT, 'src'))) {
    const { execFileSync } = await import('node:child_process');
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  }
}, 240_000);

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
  /** When the process exited (performance.now()). */
  at: number;
}

/** Spawns bin/gatewayctl; a run still going after `limitMs` is killed and fails the test. */
function gatewayctl(argv: string[], env: Record<string, string> = {}, limitMs = 20_000): Promise<Exited> {
  const child = spawn(process.execPath, [BIN, ...argv], {
    cwd: tempDir(),
    env: { PATH: process.env.PATH ?? '', HOME: tempDir(), USER: 'tester', GATEWAY_MASTER_KEY: MASTER_KEY, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gatewayctl ${argv.join(' ')} was still running after ${limitMs} ms; stderr: ${stderr}`));
    }, limitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, at: performance.now() });
    });
  });
}

let db: string;
let dbName: string;
let admin: pg.Client;
const holes: Blackhole[] = [];

/** The store's URL through a fresh black hole, with a password to see masked. */
async function throughHole(): Promise<{ hole: Blackhole; url: string; masked: string }> {
  const target = new URL(db);
  const hole = await blackhole({ host: target.hostname, port: Number(target.port || 5432) });
  holes.push(hole);
  const url = new URL(hole.via(db));
  url.password = PASSWORD;
  return { hole, url: url.toString(), masked: url.toString().replace(PASSWORD, '****') };
}

/** A second session that holds a lock until released, so a command's statement waits on it. */
async function holdLock(sql: string): Promise<{ release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  await c.query('begin');
  await c.query(sql);
  return {
    release: async () => {
      await c.query('rollback');
      await c.end();
    },
  };
}

/** The statement of the first session of the store that waits for a lock. */
async function lockWaiter(): Promise<string> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    const r = await admin.query<{ query: string }>(
      "select query from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
      [dbName],
    );
    if (r.rows[0]) return r.rows[0].query;
  }
  throw new Error('no session of the command came to wait for the lock');
}

/** Tables the session waiting for a lock has written to in its open transaction. */
async function writtenByWaiter(): Promise<string[]> {
  const r = await admin.query<{ rel: string }>(
    `select l.relation::regclass::text as rel from pg_locks l join pg_stat_activity a on a.pid = l.pid
     where a.datname = $1 and a.wait_event_type = 'Lock' and l.mode = 'RowExclusiveLock' and l.locktype = 'relation'`,
    [dbName],
  );
  return r.rows.map((row) => row.rel);
}

/** Sessions of the store, other than the admin's, inside a transaction or a statement. */
async function busySessions(): Promise<Array<{ state: string | null }>> {
  const r = await admin.query<{ state: string | null }>(
    "select state from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and state is distinct from 'idle'",
    [dbName],
  );
  return r.rows;
}

beforeAll(async () => {
  db = await freshPgUrl();
  dbName = new URL(db).pathname.slice(1);
  const gw = cliFor(db);
  for (const argv of [['init'], ['orgs', 'create', 'acme', '--provider', 'mock']]) {
    const r = await gw(argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  }
  admin = new pg.Client({ connectionString: db });
  await admin.connect();
}, 60_000);

afterAll(async () => {
  for (const h of holes) await h.close();
  await admin?.end();
});

describe('gatewayctl on a Postgres that stops answering', () => {
  it('exits 6 with a JSON error naming the masked store within the timeout when a read gets no answer', async () => {
    const { hole, url, masked } = await throughHole();
    const lock = await holdLock('lock table orgs in access exclusive mode');
    try {
      const run = gatewayctl(['--db', url, '--store-timeout-ms', String(TIMEOUT_MS), '--json', 'orgs', 'list']);
      expect(await lockWaiter()).toMatch(/from "orgs"/);
      hole.swallow();
      const lostAt = performance.now();
      const r = await run;
      expect(r.code).toBe(6);
      expect(r.stdout).toBe('');
      const { error } = JSON.parse(r.stderr) as { error: { code: string; message: string } };
      expect(error.code).toBe('store_unavailable');
      expect(error.message).toBe(`the Postgres store at ${masked} did not answer in time: no reply within 1 s (--store-timeout-ms)`);
      expect(r.stderr).not.toContain(PASSWORD);
      expect(r.at - lostAt).toBeLessThan(GIVES_UP_MS);
    } finally {
      await lock.release();
    }
  });

  it('exits 6 on a usage export whose page read gets no answer, not as a failed write of stdout', async () => {
    const { hole, url, masked } = await throughHole();
    const lock = await holdLock('lock table usage_events in access exclusive mode');
    try {
      const run = gatewayctl(['--db', url, '--store-timeout-ms', String(TIMEOUT_MS), 'usage', 'export']);
      expect(await lockWaiter()).toMatch(/from "usage_events"/);
      hole.swallow();
      const lostAt = performance.now();
      const r = await run;
      expect(r.code).toBe(6);
      expect(r.stderr).toBe(`error: the Postgres store at ${masked} did not answer in time: no reply within 1 s (--store-timeout-ms)\n`);
      expect(r.at - lostAt).toBeLessThan(GIVES_UP_MS);
    } finally {
      await lock.release();
    }
  });

  it('exits 6 within the timeout when a write gets no answer mid-transaction, and keeps none of it', async () => {
    const { hole, url, masked } = await throughHole();
    const [before] = (await admin.query<{ version: string }>('select version from config_version')).rows;
    // orgs create inserts the org and its audit row, then bumps config_version: it waits there.
    const lock = await holdLock('select * from config_version for update');
    let r: Exited;
    let lostAt: number;
    try {
      const run = gatewayctl(['--db', url, '--store-timeout-ms', String(TIMEOUT_MS), 'orgs', 'create', 'beta', '--provider', 'mock']);
      expect(await lockWaiter()).toMatch(/config_version/);
      // Half-written when the store goes silent: its transaction has inserted into both tables.
      expect(await writtenByWaiter()).toEqual(expect.arrayContaining(['audit_log', 'orgs']));
      hole.swallow();
      lostAt = performance.now();
      r = await run;
    } finally {
      await lock.release();
    }
    expect(r.code).toBe(6);
    expect(r.stderr).toBe(`error: the Postgres store at ${masked} did not answer in time: no reply within 1 s (--store-timeout-ms)\n`);
    expect(r.at - lostAt).toBeLessThan(GIVES_UP_MS);

    // Postgres ends the command's session itself (statement, then idle-in-transaction timeout):
    // its transaction is rolled back, no COMMIT having reached it.
    for (const end = Date.now() + 10_000; (await busySessions()).length > 0 && Date.now() < end; ) await new Promise((res) => setTimeout(res, 50));
    expect(await busySessions()).toEqual([]);
    expect((await admin.query("select 1 from orgs where name = 'beta'")).rowCount).toBe(0);
    expect((await admin.query("select 1 from audit_log where action = 'orgs.create' and details->>'name' = 'beta'")).rowCount).toBe(0);
    expect((await admin.query('select version from config_version')).rows).toEqual([before]);
    // Nothing holds a lock either: the same write goes through once the store answers again.
    expect((await cliFor(db)(['orgs', 'create', 'beta', '--provider', 'mock'])).code).toBe(0);
  });

  it('exits 6 after the connection timeout when the store stops answering before the command connects', async () => {
    const { hole, url, masked } = await throughHole();
    hole.swallow();
    const started = performance.now();
    const r = await gatewayctl(['--db', url, '--store-timeout-ms', String(TIMEOUT_MS), 'keys', 'list']);
    expect(r.code).toBe(6);
    expect(r.stderr).toBe(`error: the Postgres store at ${masked} did not answer in time: no connection within 5 s\n`);
    expect(r.at - started).toBeLessThan(5_000 + 2_500);
  });

  it('exits 6 when a statement runs past the timeout (a lock wait), and rolls its write back', async () => {
    const gw = cliFor(db, { GATEWAY_STORE_TIMEOUT_MS: String(TIMEOUT_MS) });
    const lock = await holdLock('select * from config_version for update');
    try {
      const r = await gw(['orgs', 'update', 'acme', '--name', 'acme-renamed']);
      expect(r.code).toBe(6);
      expect(r.stderr).toContain('did not answer in time: a statement ran longer than 1 s and was cancelled (raise --store-timeout-ms for long work)');
    } finally {
      await lock.release();
    }
    expect((await admin.query<{ name: string }>("select name from orgs where name like 'acme%'")).rows).toEqual([{ name: 'acme' }]);
  });
});

describe('--store-timeout-ms and GATEWAY_STORE_TIMEOUT_MS', () => {
  const timeout = (argv: string[], env: Record<string, string> = {}) => {
    const app = new App({ stdout: { write: () => true }, stderr: { write: () => true }, stdin: Readable.from([]), env, cwd: process.cwd(), interactive: false, stdoutIsTTY: false });
    const cmd = new Command().option('--store-timeout-ms <ms>').parse(argv, { from: 'user' });
    return app.storeTimeoutMs(cmd);
  };

  it('defaults to 60 s; the flag wins over the variable', () => {
    expect(timeout([])).toBe(60_000);
    expect(timeout([], { GATEWAY_STORE_TIMEOUT_MS: '30000' })).toBe(30_000);
    expect(timeout(['--store-timeout-ms', '2500'], { GATEWAY_STORE_TIMEOUT_MS: '30000' })).toBe(2_500);
  });

  it('exits 2 naming the flag or the variable when the value is not a number of milliseconds from 100', async () => {
    const db = freshSqlitePath();
    const env = { GATEWAY_MASTER_KEY: MASTER_KEY };
    expect((await cli(['--db', db, 'init'], { env })).code).toBe(0);
    const flag = await cli(['--db', db, '--store-timeout-ms', '50', 'orgs', 'list', '--json'], { env });
    expect(flag.code).toBe(2);
    expect(flag.errorJson().error.message).toContain("--store-timeout-ms must be a number of milliseconds from 100 to 2147482647, got '50'");
    const variable = await cli(['--db', db, 'orgs', 'list'], { env: { ...env, GATEWAY_STORE_TIMEOUT_MS: '10s' } });
    expect(variable.code).toBe(2);
    expect(variable.stderr).toContain("GATEWAY_STORE_TIMEOUT_MS must be a number of milliseconds from 100 to 2147482647, got '10s'");
    expect((await cli(['--db', db, 'orgs', 'list', '--store-timeout-ms', '5000'], { env: { ...env, GATEWAY_STORE_TIMEOUT_MS: '10s' } })).code).toBe(0);
  });
});

describe('a database error on Postgres', () => {
  it('names the cause, not the statement or its parameters (key hashes among them)', async () => {
    const url = await freshPgUrl();
    const gw = cliFor(url, { GATEWAY_MASTER_KEY: MASTER_KEY });
    expect((await gw(['init'])).code).toBe(0);
    expect((await gw(['orgs', 'create', 'acme', '--provider', 'mock'])).code).toBe(0);
    // A schema the code does not expect (a half-applied manual change): the insert of a key fails.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('alter table api_keys rename column key_hash to kh');
    await c.end();
    for (const json of [false, true]) {
      const r = await gw(['keys', 'create', '--org', 'acme', '--type', 'org', ...(json ? ['--json'] : [])]);
      expect(r.code).toBe(1);
      const message = json ? r.errorJson().error.message : r.stderr;
      expect(message).toContain('unexpected store error');
      expect(message).toContain('"key_hash"');
      expect(message).not.toMatch(/params:|insert into|org_[0-9a-z]{12}|[0-9a-f]{64}/);
    }
  });
});
