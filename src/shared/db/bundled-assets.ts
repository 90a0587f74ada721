// What a standalone executable carries inside instead of reading node_modules and migrations/
// from disk (test/scripts/build-exe.ts builds them, src/shared/sea-assets.ts unpacks them).
// From a checkout nothing is passed and the store finds both the usual way.
import type { MigrationMeta } from 'drizzle-orm/migrator';
import type { Dialect } from './store.js';

/** One dialect's migrations as data: readMigrationFiles() output plus the journal's tags. */
export interface MigrationSet {
  tags: string[];
  files: MigrationMeta[];
}

export interface BundledAssets {
  /** The loaded better_sqlite3 addon; called only when a SQLite store is opened. */
  sqliteAddon(): object;
  migrations(dialect: Dialect): MigrationSet;
}
