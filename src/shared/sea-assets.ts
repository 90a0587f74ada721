// Unpacks what a standalone executable carries (built by test/scripts/build-exe.ts): the
// better_sqlite3 addon, written once to a cache folder because dlopen needs a file, and the
// migrations, parsed on first use. Only the executables' entry files import this module.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { getAsset, getRawAsset } from 'node:sea';
import type { GatewayEnv } from './config.js';
import type { BundledAssets, MigrationSet } from './db/bundled-assets.js';
import type { Dialect } from './db/store.js';
import { GatewayError } from './errors.js';

/** The SEA asset names; the build script writes them under the same keys. */
export const SEA_ASSET = { sqliteAddon: 'better_sqlite3.node', migrations: 'migrations.json' } as const;

export type EmbeddedMigrations = Record<Dialect, MigrationSet>;

/**
 * Where the addon may be unpacked, best first: GATEWAY_CACHE_DIR alone when set, else the user's
 * cache folder, else a per-user folder in the temp dir (an account without a writable home).
 */
export function seaCacheDirs(env: GatewayEnv, cwd = process.cwd()): string[] {
  if (env.gateway.cache_dir) return [resolve(cwd, env.gateway.cache_dir)];
  const uid = process.getuid?.() ?? 0;
  return [join(homedir(), '.cache', 'ai-gateway'), join(tmpdir(), `ai-gateway-${uid}`)];
}

export function seaAssets(cacheDirs: string[]): BundledAssets {
  let addon: object | undefined;
  let migrations: EmbeddedMigrations | undefined;
  return {
    // A non-N-API addon cannot be dlopen'ed twice in one process, so the first load is kept.
    sqliteAddon: () => {
      addon ??= loadAddon(Buffer.from(getRawAsset(SEA_ASSET.sqliteAddon) as ArrayBuffer), cacheDirs);
      return addon;
    },
    migrations: (dialect) => {
      migrations ??= JSON.parse(getAsset(SEA_ASSET.migrations, 'utf8')) as EmbeddedMigrations;
      return migrations[dialect];
    },
  };
}

/** process.dlopen as a function: a V8-API addon crashes the process when loaded twice. */
export function dlopenFile(file: string): object {
  const mod = { exports: {} };
  process.dlopen(mod, file);
  return mod.exports;
}

/**
 * Writes the addon (unless an identical copy is there) into the first usable folder and loads
 * it; a folder on a noexec mount fails the load and the next one is tried.
 */
export function loadAddon(bytes: Buffer, cacheDirs: string[], dlopen: (file: string) => object = dlopenFile): object {
  const name = `better_sqlite3-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.node`;
  const problems: string[] = [];
  for (const dir of cacheDirs) {
    const problem = privateDir(dir);
    if (problem) {
      problems.push(problem);
      continue;
    }
    const file = join(dir, name);
    try {
      if (!sameContent(file, bytes)) writeAtomically(file, bytes);
      return dlopen(file);
    } catch (err) {
      problems.push(`${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new GatewayError(
    'store_unavailable',
    `cannot unpack the SQLite addon (set GATEWAY_CACHE_DIR to a private folder on an exec-mounted disk): ${problems.join('; ')}`,
  );
}

/** Creates the folder (0700) and refuses one that another user could write into. */
function privateDir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) return `${dir} is not a directory`;
    if (process.getuid && st.uid !== process.getuid()) return `${dir} belongs to another user`;
    if (st.mode & 0o022) return `${dir} is writable by others`;
    return undefined;
  } catch (err) {
    return `${dir}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function sameContent(file: string, bytes: Buffer): boolean {
  try {
    return lstatSync(file).isFile() && readFileSync(file).equals(bytes);
  } catch {
    return false;
  }
}

/** Another process may be loading the same file: it only ever sees a complete one. */
function writeAtomically(file: string, bytes: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytes, { mode: 0o600 });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}
