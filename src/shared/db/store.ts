// Opening the store: SQLite (embedded default) or Postgres, behind one `Store` whose `db` is
// typed once (see schema.ts) and whose `transaction` hides the dialects' different rules.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg, type NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { GatewayError } from '../errors.js';
import type { BundledAssets } from './bundled-assets.js';
import { isNoAnswer, PG_CONNECT_TIMEOUT_MS } from './store-errors.js';
import { pgSchema, pgTables, sqliteSchema, sqliteTables, type Tables } from './schema.js';

export type Db = PgDatabase<NodePgQueryResultHKT, Tables>;
export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly dialect: Dialect;
  readonly db: Db;
  readonly t: Tables;
  /** The location with any password masked, safe to print. */
  readonly display: string;
  /**
   * `noWait` (SQLite): a write lock held by another connection fails the transaction at once
   * (SQLITE_BUSY) instead of waiting out the busy timeout. better-sqlite3 waits synchronously,
   * so on the event loop that wait froze every request for up to 5 s; a caller that can retry
   * later (the usage sink) asks for this.
   */
  transaction<T>(fn: (tx: Db) => Promise<T>, opts?: { noWait?: boolean }): Promise<T>;
  /** Runs a trivial query; throws store_unavailable if the store cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The better-sqlite3 handle, for SQLite-only maintenance such as checkpoints. */
  readonly sqlite?: Database.Database;
  /** The pg pool, for LISTEN/NOTIFY. */
  readonly pool?: pg.Pool;
  /** What the executable carries, when the store was opened by one (migrate.ts reads its migrations). */
  readonly bundled?: BundledAssets;
}

export interface StoreLocation {
  dialect: Dialect;
  /** File path for SQLite, connection string for Postgres. */
  target: string;
}

export function parseStoreUrl(url: string, cwd = process.cwd()): StoreLocation {
  if (/^postgres(ql)?:\/\//.test(url)) return { dialect: 'postgres', target: url };
  if (url.startsWith('sqlite://')) return { dialect: 'sqlite', target: resolve(cwd, url.slice('sqlite://'.length)) };
  if (url.startsWith('file:')) return { dialect: 'sqlite', target: resolve(cwd, url.slice('file:'.length)) };
  if (/^[a-z]+:\/\//i.test(url)) {
    throw new GatewayError('usage_error', `unsupported store URL '${maskUrl(url)}': use a SQLite file path or postgres://…`);
  }
  return { dialect: 'sqlite', target: resolve(cwd, url) };
}

export function maskUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:****@');
}

export interface OpenOptions {
  /** Create the SQLite file (and its folder) if missing. Without it a missing file is an error. */
  create?: boolean;
  /** Postgres pool size. */
  poolSize?: number;
  /**
   * Postgres: a statement (lock waits included) or an idle transaction running longer than this
   * is ended by the server, and a query the server has not answered this long (plus a second)
   * fails on the client, so a connection lost without a reset (a partition, a dead host) gives
   * up instead of waiting forever. Unset: no limit. The proxy passes --store-timeout-ms (10 s),
   * gatewayctl its own --store-timeout-ms (60 s: its reports and prunes may run longer).
   */
  timeoutMs?: number;
  /** Set by a standalone executable: the SQLite addon and migrations it carries. */
  bundled?: BundledAssets;
}

export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  const loc = parseStoreUrl(url);
  return loc.dialect === 'sqlite' ? openSqlite(loc.target, opts) : openPostgres(loc.target, opts);
}

function openSqlite(file: string, opts: OpenOptions): Store {
  if (!existsSync(file)) {
    if (!opts.create) {
      throw new GatewayError('store_unavailable', `no store at ${file}: run 'gatewayctl init' first (or pass --db)`);
    }
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    closeSync(openSync(file, 'a', 0o600));
  }
  // @types/better-sqlite3 knows only the path form of nativeBinding; the library also takes the
  // loaded addon, which is how an executable hands over the one it unpacked (its errors say why).
  const options = opts.bundled ? { nativeBinding: opts.bundled.sqliteAddon() } : {};
  let handle: Database.Database;
  try {
    handle = new Database(file, options as unknown as Database.Options);
    handle.pragma('journal_mode = WAL');
    handle.pragma('foreign_keys = ON');
    handle.pragma('busy_timeout = 5000');
    handle.pragma('synchronous = NORMAL');
  } catch (cause) {
    throw new GatewayError('store_unavailable', `cannot open the SQLite store at ${file}`, { cause });
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  const db = drizzleSqlite(handle, { schema: sqliteSchema }) as unknown as Db;
  const lock = new Mutex();
  return {
    dialect: 'sqlite',
    db,
    t: sqliteTables,
    display: file,
    sqlite: handle,
    bundled: opts.bundled,
    // better-sqlite3 cannot run an async callback inside its own transaction helper, so the
    // transaction is opened by hand and a mutex keeps other callers out until it ends.
    transaction: (fn, opts) =>
      lock.run(async () => {
        if (opts?.noWait) {
          const wait = handle.pragma('busy_timeout', { simple: true });
          handle.pragma('busy_timeout = 0');
          try {
            handle.exec('BEGIN IMMEDIATE');
          } finally {
            handle.pragma(`busy_timeout = ${Number(wait)}`);
          }
        } else handle.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(db);
          handle.exec('COMMIT');
          return result;
        } catch (err) {
          if (handle.inTransaction) handle.exec('ROLLBACK');
          throw err;
        }
      }),
    ping: async () => {
      try {
        handle.prepare('select 1').get();
      } catch (cause) {
        throw new GatewayError('store_unavailable', 'the SQLite store does not answer', { cause });
      }
    },
    close: async () => {
      if (handle.open) handle.close();
    },
  };
}

/** How long ping() waits for Postgres to answer (readiness probes ask often and want it fast). */
const PING_TIMEOUT_MS = 2_000;
// pg honours a query's own query_timeout; @types/pg does not declare it.
const PING = { text: 'select 1', query_timeout: PING_TIMEOUT_MS } as pg.QueryConfig;

function openPostgres(connectionString: string, opts: OpenOptions): Store {
  const t = opts.timeoutMs;
  const pool = new pg.Pool({
    connectionString,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    ...(t ? { statement_timeout: t, idle_in_transaction_session_timeout: t, query_timeout: t + 1000 } : {}),
  });
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  // A checked-out client whose server goes away (restart, pg_terminate_backend) emits 'error'
  // between queries; unhandled, that event would crash the process. Its queries still reject.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = drizzlePg(pool, { schema: pgSchema }) as unknown as Db;
  const display = maskUrl(connectionString);
  return {
    dialect: 'postgres',
    db,
    t: pgTables,
    display,
    pool,
    bundled: opts.bundled,
    transaction: (fn) => pgTransaction(pool, fn),
    ping: async () => {
      try {
        await pool.query(PING);
      } catch (cause) {
        throw new GatewayError('store_unavailable', `the Postgres store at ${display} does not answer`, { cause });
      }
    },
    close: () => pool.end(),
  };
}

/**
 * A transaction on its own pooled client. Drizzle's pool transaction leaks the client when
 * BEGIN fails (a connection killed between checkout and BEGIN), which exhausts the pool after
 * a Postgres restart; here the client is always released, and destroyed if it may be broken.
 */
function pgTransaction<T>(pool: pg.Pool, fn: (tx: Db) => Promise<T>): Promise<T> {
  return pgClientTransaction(pool, (client) => fn(drizzlePg(client, { schema: pgSchema }) as unknown as Db));
}

/** pgTransaction on the pooled client itself, for statements written by hand (the usage batch, see pg-batch.ts). */
export async function pgClientTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
  } catch (err) {
    client.release(true);
    throw err;
  }
  let result: T;
  try {
    result = await fn(client);
  } catch (err) {
    if (isNoAnswer(err)) {
      // The connection still waits for the lost answer: a rollback would queue behind it for
      // another timeout. Dropping the connection ends the transaction as surely (Postgres rolls
      // back a session that ends, and ends one left idle in a transaction after the timeout).
      client.release(true);
      throw err;
    }
    let broken = false;
    await client.query('rollback').catch(() => {
      broken = true;
    });
    client.release(broken);
    throw err;
  }
  try {
    await client.query('commit');
  } catch (err) {
    client.release(true);
    throw err;
  }
  client.release();
  return result;
}

class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}
