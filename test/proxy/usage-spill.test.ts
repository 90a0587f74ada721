// Usage events the store still refuses at the end of a SIGTERM drain are saved to a spill file
// and written to the store at the next start, before any counter is seeded from it: the
// gateway exits 0 with nothing lost. Without a spill folder (or one it cannot write) they are
// lost, said on stderr, and the exit code is 6.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/proxy/cli.js';
import { type RunningProxy, startProxy } from '../../src/proxy/main.js';
import { openStore } from '../../src/shared/db/store.js';
import { storeIdentity } from '../../src/proxy/spill-wiring.js';
import { writeSpill } from '../../src/shared/usage/spill.js';
import { call, chat, createKey, createOrg, freshStore, hello, MASTER_KEY, MASTER_KEY_HEX, ok, storedEvents, synced } from './harness.js';

const M = 'mock/gpt-4o-mini';

/** gateway-proxy as its CLI runs it, with a SIGTERM to send and its stderr. */
async function runProxy(args: string[]) {
  let trigger: (s: string) => void = () => {};
  let url = '';
  let ready: () => void = () => {};
  const listening = new Promise<void>((r) => {
    ready = r;
  });
  const stderr: string[] = [];
  const io = {
    stdout: {
      write: (s: string) => {
        const m = /listening on (\S+)/.exec(s);
        if (m) {
          url = m[1]!;
          ready();
        }
        return true;
      },
    },
    stderr: new Writable({
      write(c, _e, d) {
        stderr.push(String(c));
        d();
      },
    }),
    env: { GATEWAY_MASTER_KEY: MASTER_KEY_HEX },
    cwd: process.cwd(),
    onShutdown: (fn: (s: string) => void) => {
      trigger = fn;
    },
  };
  const exit = runCli(['--port', '0', '--log-level', 'warn', '--shutdown-timeout-ms', '800', '--usage-writer', 'inline', ...args], io as never);
  await Promise.race([listening, exit.then((code) => Promise.reject(new Error(`exited ${code}: ${stderr.join('')}`)))]);
  return { url: () => url, exit, stderr: () => stderr.join(''), sigterm: () => trigger('SIGTERM') };
}

const fileOf = (db: string) => (db.startsWith('sqlite://') ? db.slice('sqlite://'.length) : db);

/** Another connection holding SQLite's write lock: every usage write is refused until release(). */
function lockWrites(db: string) {
  const lock = new Database(fileOf(db));
  lock.exec('BEGIN IMMEDIATE');
  return {
    release() {
      if (lock.inTransaction) lock.exec('ROLLBACK');
      lock.close();
    },
  };
}

const running: RunningProxy[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) await p.close();
});

/** Serves `n` requests on a proxy whose store refuses writes, then SIGTERM: returns its exit code and stderr. */
async function spillSome(db: string, key: string, n: number, args: string[] = []) {
  const p = await runProxy(['--db', db, ...args]);
  await synced();
  const lock = lockWrites(db);
  try {
    for (let i = 0; i < n; i++) {
      const r = await chat(p.url(), key, hello(M, { max_tokens: 7 }));
      expect(r.status).toBe(200);
    }
    p.sigterm();
    return { code: await p.exit, stderr: p.stderr() };
  } finally {
    lock.release();
  }
}

describe('usage the store refuses at shutdown', () => {
  it('is saved to a spill file (exit 0), and the next start writes it before it counts anything', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o', ['--daily-tokens', '100000']);
    const { code, stderr } = await spillSome(db, k.key, 3, ['--instance-id', 'first']);
    expect(code).toBe(0);
    const dir = `${fileOf(db)}.usage-spill`;
    const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    expect(files).toHaveLength(1);
    expect(stderr).toContain(`the store refused the last 3 usage events; they are saved in ${join(dir, files[0]!)}`);
    expect(await storedEvents(db, k.id)).toHaveLength(0);
    const lines = readFileSync(join(dir, files[0]!), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'gateway-usage-spill', version: 1, instance: 'first', store: `sqlite:${fileOf(db)}`, count: 3 });

    // The next start: the events are in the store (as written by the instance that served them),
    // the file is gone, and the key's daily quota counts them.
    const proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50, instanceId: 'second' });
    running.push(proxy);
    const events = await storedEvents(db, k.id);
    expect(events).toHaveLength(3);
    expect(events.every((e) => e.status === 200 && e.completionTokens > 0)).toBe(true);
    const spent = events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl'))).toHaveLength(0);
    const store = await openStore(db);
    try {
      const raw = store.sqlite!.prepare('select instance, count(*) as n from usage_events group by instance').all();
      expect(raw).toEqual([{ instance: 'first', n: 3 }]);
      const rollup = store.sqlite!.prepare('select sum(requests) as requests, sum(total_tokens) as tokens from usage_daily where key_id = ?').get(k.id);
      expect(rollup).toEqual({ requests: 3, tokens: spent });
    } finally {
      await store.close();
    }
    const usage = (await call(proxy.url, '/v1/usage', { key: k.key })).json<{ limits: { scope: string; metric: string; used: number }[] }>();
    expect(usage.limits.find((l) => l.scope === `key:${k.id}` && l.metric === 'tokens')?.used).toBe(spent);
  });

  it('is replayed once however often the same file is replayed', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o');
    expect((await spillSome(db, k.key, 2)).code).toBe(0);
    const dir = `${fileOf(db)}.usage-spill`;
    const [name] = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    // A crash between the write and the unlink, or two instances starting together: the same file twice.
    copyFileSync(join(dir, name!), join(dir, name!.replace('usage-', 'usage-0-')));
    const proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100 });
    running.push(proxy);
    expect(await storedEvents(db, k.id)).toHaveLength(2);
    const store = await openStore(db);
    try {
      expect(store.sqlite!.prepare('select sum(requests) as n from usage_daily where key_id = ?').get(k.id)).toEqual({ n: 2 });
    } finally {
      await store.close();
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl'))).toHaveLength(0);
  });

  it('is lost, said and exit 6 with --usage-spill-dir none', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o');
    const { code, stderr } = await spillSome(db, k.key, 1, ['--usage-spill-dir', 'none']);
    expect(code).toBe(6);
    expect(stderr).toContain('1 usage events could not be written to the store before shutdown');
    expect(existsSync(`${fileOf(db)}.usage-spill`)).toBe(false);
  });

  it('is lost, said and exit 6 when the spill folder cannot be written at shutdown', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o');
    const dir = join(mkdtempSync(join(tmpdir(), 'gw-spill-')), 'spill');
    const p = await runProxy(['--db', db, '--usage-spill-dir', dir]);
    await synced();
    // After the start: a regular file where the folder would be made (mkdir fails, even for root).
    writeFileSync(dir, 'not a folder');
    const lock = lockWrites(db);
    try {
      expect((await chat(p.url(), k.key, hello(M, { max_tokens: 7 }))).status).toBe(200);
      expect((await chat(p.url(), k.key, hello(M, { max_tokens: 7 }))).status).toBe(200);
      p.sigterm();
      expect(await p.exit).toBe(6);
    } finally {
      lock.release();
    }
    expect(p.stderr()).toContain('2 usage events could not be written to the store before shutdown');
  });

  it('refuses to start (exit 2) with a spill folder it could not write', async () => {
    const { db } = await freshStore('sqlite');
    let stderr = '';
    const io = {
      stdout: { write: () => true },
      stderr: new Writable({
        write(c, _e, d) {
          stderr += String(c);
          d();
        },
      }),
      env: { GATEWAY_MASTER_KEY: MASTER_KEY_HEX },
      cwd: process.cwd(),
      onShutdown: () => {},
    };
    const code = await runCli(['--port', '0', '--db', db, '--log-level', 'silent', '--usage-spill-dir', join(fileOf(db), 'spill')], io as never);
    expect(code).toBe(2);
    expect(stderr).toContain(`the usage spill folder (--usage-spill-dir) cannot be used: ${fileOf(db)} is not a folder`);
  });

  it('stays on disk, and the start fails with exit 6, while the store refuses to take it', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o');
    expect((await spillSome(db, k.key, 1)).code).toBe(0);
    const dir = `${fileOf(db)}.usage-spill`;
    const lock = lockWrites(db);
    let stderr = '';
    let code: number;
    try {
      const io = {
        stdout: { write: () => true },
        stderr: new Writable({
          write(c, _e, d) {
            stderr += String(c);
            d();
          },
        }),
        env: { GATEWAY_MASTER_KEY: MASTER_KEY_HEX },
        cwd: process.cwd(),
        onShutdown: () => {},
      };
      code = await runCli(['--port', '0', '--db', db, '--log-level', 'silent', '--store-timeout-ms', '300'], io as never);
    } finally {
      lock.release();
    }
    expect(code).toBe(6);
    expect(stderr).toMatch(/the 1 usage events saved at an earlier shutdown in .* could not be written to the store/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl'))).toHaveLength(1);
    // Once the store takes writes again, the next start writes it.
    const proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100 });
    running.push(proxy);
    expect(await storedEvents(db, k.id)).toHaveLength(1);
  });

  it('is never replayed into another store, and a damaged file is set aside, not half replayed', async () => {
    const a = await freshStore('sqlite');
    await createOrg(a.gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(a.gw, 'o');
    const shared = mkdtempSync(join(tmpdir(), 'gw-spill-'));
    expect((await spillSome(a.db, k.key, 2, ['--usage-spill-dir', shared])).code).toBe(0);
    const [name] = readdirSync(shared).filter((f) => f.endsWith('.jsonl'));
    const text = readFileSync(join(shared, name!), 'utf8');
    // A truncated copy (the header counts 2 events, one is there).
    writeFileSync(join(shared, 'usage-0-truncated.jsonl'), text.split('\n').slice(0, 2).join('\n'));

    const b = await freshStore('sqlite');
    const other = await startProxy({ dbUrl: b.db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, usageSpillDir: shared });
    running.push(other);
    expect(await storedEvents(b.db)).toHaveLength(0);
    expect(existsSync(join(shared, name!))).toBe(true); // left for its own store
    expect(existsSync(join(shared, 'usage-0-truncated.jsonl.unreadable'))).toBe(true);
    expect(existsSync(join(shared, 'usage-0-truncated.jsonl'))).toBe(false);

    const own = await startProxy({ dbUrl: a.db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, usageSpillDir: shared });
    running.push(own);
    expect(await storedEvents(a.db, k.id)).toHaveLength(2);
    expect(existsSync(join(shared, name!))).toBe(false);
  });

  it('is replayed into a Postgres store as into SQLite (rollups, credit charges and all)', async () => {
    const { db, gw } = await freshStore('postgres');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o');
    await ok(gw, ['credits', 'add', `key:${k.id}`, '5']);
    // What a Postgres instance would have spilled: two requests of this key, one charged to its credit.
    const base = { orgId: k.org_id, userId: null, keyId: k.id, ancestorKeyIds: [], model: M, provider: 'mock', status: 200, errorCode: null, latencyMs: 12.5, ttfbMs: null, stream: false, usageSource: 'upstream' as const };
    const records = [
      { ...base, requestId: 'req_spill_pg_1', ts: Date.now() - 1000, promptTokens: 10, completionTokens: 5, totalTokens: 15, costMicros: 40, creditScopes: [`key:${k.id}`] },
      { ...base, requestId: 'req_spill_pg_2', ts: Date.now(), promptTokens: 20, completionTokens: 7, totalTokens: 27, costMicros: 60, creditScopes: [`key:${k.id}`] },
    ];
    const dir = mkdtempSync(join(tmpdir(), 'gw-spill-'));
    writeSpill(dir, storeIdentity(db), 'pg-1', records);
    const proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, usageSpillDir: dir });
    running.push(proxy);
    const events = await storedEvents(db, k.id);
    expect(events.map((e) => e.requestId).sort()).toEqual(['req_spill_pg_1', 'req_spill_pg_2']);
    expect(readdirSync(dir)).toEqual([]);
    const usage = (await call(proxy.url, '/v1/usage', { key: k.key })).json<{ credits: { scope: string; balance_usd: number }[] }>();
    expect(JSON.stringify(usage)).toContain('4.9999');
    const report = (await ok(gw, ['usage', 'summary', '--org', 'o'])) as unknown;
    expect(JSON.stringify(report)).toMatch(/"requests":2/);
  });
});

