// Applies the drizzle-kit migrations of the store's dialect and reports which are applied.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { MigrationConfig, MigrationMeta } from 'drizzle-orm/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { GatewayError } from '../errors.js';
import type { MigrationSet } from './bundled-assets.js';
import type { Store } from './store.js';

/** migrations/ at the package root, whether running from src/ (tests) or dist/ (built). */
export function migrationsRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = resolve(dir, 'migrations');
    if (existsSync(resolve(candidate, 'sqlite'))) return candidate;
    dir = dirname(dir);
  }
  throw new GatewayError('internal_error', 'cannot find the migrations folder');
}

export const migrationsFolder = (store: Store) =>
  resolve(migrationsRoot(), store.dialect === 'sqlite' ? 'sqlite' : 'postgres');

/** The folder's migrations as data: what an executable embeds, and what migrate() applies. */
export function readMigrationSet(folder: string): MigrationSet {
  return { tags: journalTags(folder), files: readMigrationFiles({ migrationsFolder: folder }) };
}

/** The store's migrations: embedded in the executable that opened it, else from migrations/. */
export function migrationSet(store: Store): MigrationSet {
  return store.bundled?.migrations(store.dialect) ?? readMigrationSet(migrationsFolder(store));
}

/**
 * The step drizzle's migrate(db, {migrationsFolder}) runs after reading the folder
 * (drizzle-orm/<driver>/migrator.js), taken directly so migrations can come as data.
 */
interface DrizzleMigrationTarget {
  dialect: { migrate(files: MigrationMeta[], session: unknown, config: MigrationConfig): unknown };
  session: unknown;
}

export async function migrate(store: Store): Promise<MigrationStatus> {
  try {
    const { files } = migrationSet(store);
    const target = store.db as unknown as DrizzleMigrationTarget;
    await target.dialect.migrate(files, target.session, { migrationsFolder: '' });
  } catch (cause) {
    if (cause instanceof GatewayError) throw cause;
    throw new GatewayError('store_unavailable', `migrating the store at ${store.display} failed`, { cause });
  }
  return migrationStatus(store);
}

export interface MigrationStatus {
  applied: { tag: string; created_at: string | null }[];
  pending: { tag: string }[];
}

export async function migrationStatus(store: Store): Promise<MigrationStatus> {
  const { tags, files } = migrationSet(store);
  const applied = await appliedHashes(store);
  const out: MigrationStatus = { applied: [], pending: [] };
  files.forEach((m, i) => {
    const tag = tags[i] ?? `migration_${i}`;
    const row = applied.get(m.hash);
    if (row !== undefined) out.applied.push({ tag, created_at: row });
    else out.pending.push({ tag });
  });
  return out;
}

function journalTags(folder: string): string[] {
  const journal = JSON.parse(readFileSync(resolve(folder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { tag: string }[];
  };
  return journal.entries.map((e) => e.tag);
}

async function appliedHashes(store: Store): Promise<Map<string, string | null>> {
  const table = store.dialect === 'sqlite' ? '__drizzle_migrations' : 'drizzle.__drizzle_migrations';
  const out = new Map<string, string | null>();
  try {
    const query = `select hash, created_at from ${table}`;
    const rows: unknown = store.sqlite ? store.sqlite.prepare(query).all() : await store.db.execute(sql.raw(query));
    for (const r of rowsOf(rows)) {
      out.set(String(r.hash), r.created_at == null ? null : new Date(Number(r.created_at)).toISOString());
    }
  } catch {
    // No migrations table yet: nothing applied.
  }
  return out;
}

function rowsOf(result: unknown): { hash: unknown; created_at: unknown }[] {
  if (Array.isArray(result)) return result as { hash: unknown; created_at: unknown }[];
  const rows = (result as { rows?: unknown }).rows;
  return Array.isArray(rows) ? (rows as { hash: unknown; created_at: unknown }[]) : [];
}
