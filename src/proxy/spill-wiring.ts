// Usage events the store refused to the end of a shutdown: saved to a spill file then, written
// to the store at the next start, before any limit counter is seeded from it and before the port
// opens (see shared/usage/spill.ts for the file).
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parseStoreUrl, type Store } from '../shared/db/store.js';
import { GatewayError } from '../shared/errors.js';
import { BadSpillFile, readSpill, removeSpill, setAsideSpill, spillFiles } from '../shared/usage/spill.js';
import { batchWriter } from '../shared/usage/write-batch.js';

const BATCH = 500;

/**
 * Which store a spill file belongs to: a SQLite file's absolute path, or a Postgres server and
 * database (never its credentials). A file is replayed only into the store it came from.
 */
export function storeIdentity(dbUrl: string): string {
  const loc = parseStoreUrl(dbUrl);
  if (loc.dialect === 'sqlite') return `sqlite:${loc.target}`;
  const u = new URL(loc.target);
  return `postgres://${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

/** The spill folder for this configuration, or null for none (see ProxyConfig.usageSpillDir). */
export function spillDirOf(config: { usageSpillDir: string | null; dbUrl: string; dataDir: string }): string | null {
  if (config.usageSpillDir === null) return null;
  if (config.usageSpillDir !== '') return resolve(config.usageSpillDir);
  const loc = parseStoreUrl(config.dbUrl);
  if (loc.dialect === 'postgres') return resolve(config.dataDir, 'usage-spill');
  // An in-memory database ends with the process: there is no next start to write them to.
  if (loc.target.endsWith(':memory:')) return null;
  return `${loc.target}.usage-spill`;
}
const isBusy = (err: unknown) => (err as { code?: unknown } | null)?.code === 'SQLITE_BUSY';

/**
 * Whether the spill folder can be used: it exists and is a writable folder, or it does not exist
 * yet and its nearest existing ancestor is one (it is made at the first spill). Checked at start,
 * so a bad --usage-spill-dir is found then, not at the shutdown that needs it. Returns the problem.
 */
export function spillDirProblem(dir: string): string | null {
  let at = dir;
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `${at}: ${(err as Error).message}`;
      const up = dirname(at);
      if (up === at) return `${dir}: no part of it exists`;
      at = up;
      continue;
    }
    if (!isDir) return `${at} is not a folder`;
    try {
      accessSync(at, constants.W_OK);
    } catch {
      return `${at} is not writable`;
    }
    return null;
  }
}

/**
 * Writes every spill file in `dir` to the store and removes it. A file that cannot be read is
 * renamed *.unreadable and reported (it is never replayed half). A store that refuses the
 * writes fails the start (exit 6): the file stays for the next attempt; a busy one (another
 * connection holds SQLite's write lock) is waited for up to busyPatienceMs first. Returns the number of
 * events replayed.
 */
export async function replaySpilled(store: Store, dir: string, identity: string, log: Logger, busyPatienceMs: number): Promise<number> {
  const files = spillFiles(dir);
  if (!files.length) return 0;
  const write = batchWriter(store);
  let total = 0;
  for (const path of files) {
    let file: ReturnType<typeof readSpill>;
    try {
      file = readSpill(path);
    } catch (err) {
      if (!(err instanceof BadSpillFile)) throw err;
      const aside = setAsideSpill(path);
      log.error({ file: aside, reason: err.message }, 'a usage spill file cannot be read; set aside, not replayed');
      continue;
    }
    if (file.store !== identity) {
      log.warn({ file: path, fileStore: file.store, store: identity }, 'a usage spill file of another store: left where it is, not replayed here');
      continue;
    }
    let inserted = 0;
    let duplicates = 0;
    for (let i = 0; i < file.records.length; i += BATCH) {
      const chunk = file.records.slice(i, i + BATCH);
      const started = Date.now();
      for (;;) {
        try {
          const r = await write(chunk, file.instance, new Date());
          inserted += r.inserted;
          duplicates += r.duplicates;
          break;
        } catch (err) {
          if (isBusy(err) && Date.now() - started < busyPatienceMs) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          throw new GatewayError(
            'store_unavailable',
            `the ${file.records.length} usage events saved at an earlier shutdown in ${path} could not be written to the store (${err instanceof Error ? err.message : String(err)}); the file is kept, start again once the store accepts writes`,
            { cause: err },
          );
        }
      }
    }
    removeSpill(path, dir);
    total += file.records.length;
    log.warn({ file: path, events: file.records.length, inserted, duplicates, instance: file.instance }, 'usage events saved at an earlier shutdown written to the store');
  }
  return total;
}
