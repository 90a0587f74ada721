// The store's bundled-assets option and the addon unpacking, in-process: what the executables rely
// on, checked without building them (standalone.test.ts runs the real binaries).
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BundledAssets, MigrationSet } from '../../src/shared/db/bundled-assets.js';
import { migrate, migrationStatus, readMigrationSet } from '../../src/shared/db/migrate.js';
import { openStore, type Store } from '../../src/shared/db/store.js';
import { GatewayError } from '../../src/shared/errors.js';
import { loadAddon } from '../../src/shared/sea-assets.js';
import { tempDir } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';

const require = createRequire(import.meta.url);
const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const ADDON = readFileSync(join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node'));

/** The repository's migrations under other tags, so a status can only come from the embedded set. */
function embedded(dialect: 'sqlite' | 'postgres'): MigrationSet {
  const set = readMigrationSet(join(ROOT, 'migrations', dialect));
  return { ...set, tags: set.tags.map((t) => `embedded_${t}`) };
}

const opened: Store[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

describe.each(DIALECTS)('a store opened with bundled assets on %s', (dialect) => {
  it('migrates from the embedded migrations and reports their tags', async () => {
    let addonLoads = 0;
    const bundled: BundledAssets = {
      sqliteAddon: () => {
        addonLoads++;
        return loadAddon(ADDON, [tempDir('gw-addon-')]);
      },
      migrations: (d) => embedded(d),
    };
    const store = await openStore(await freshStoreUrl(dialect), { create: true, bundled });
    opened.push(store);
    const status = await migrate(store);
    expect(status.pending).toEqual([]);
    expect(status.applied.map((m) => m.tag)).toEqual(embedded(dialect).tags);
    expect((await migrationStatus(store)).applied).toHaveLength(status.applied.length);
    await store.ping();
    expect(addonLoads).toBe(dialect === 'sqlite' ? 1 : 0);
  });
});

describe('loadAddon', () => {
  // Loading the real addon twice in one process crashes it, so these record the file instead.
  const loaded: string[] = [];
  const record = (file: string) => {
    loaded.push(file);
    return { file };
  };
  afterEach(() => {
    loaded.length = 0;
  });

  it('writes the addon once with mode 0600, reuses an identical copy and replaces one that differs', () => {
    const dir = tempDir('gw-addon-');
    loadAddon(ADDON, [dir], record);
    const file = loaded[0] as string;
    expect(file).toMatch(/better_sqlite3-[0-9a-f]{16}\.node$/);
    expect(readFileSync(file).equals(ADDON)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { ino } = statSync(file);
    loadAddon(ADDON, [dir], record);
    expect(statSync(file).ino).toBe(ino);
    writeFileSync(file, 'truncated');
    loadAddon(ADDON, [dir], record);
    expect(readFileSync(file).equals(ADDON)).toBe(true);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('skips a folder that others can write into and uses the next one', () => {
    const shared = join(tempDir('gw-addon-'), 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const fallback = tempDir('gw-addon-');
    loadAddon(ADDON, [shared, fallback], record);
    expect(readdirSync(shared)).toEqual([]);
    expect(dirname(loaded[0] as string)).toBe(fallback);
  });

  it('moves on to the next folder when loading fails (a noexec mount)', () => {
    const [first, second] = [tempDir('gw-addon-'), tempDir('gw-addon-')];
    const addon = loadAddon(ADDON, [first, second], (file) => {
      if (file.startsWith(first)) throw new Error('failed to map segment from shared object');
      return record(file);
    });
    expect(addon).toEqual({ file: join(second, readdirSync(second)[0] as string) });
  });

  it('throws store_unavailable naming every folder it tried when none is usable', () => {
    const file = join(tempDir('gw-addon-'), 'a-file');
    writeFileSync(file, '');
    let caught: unknown;
    try {
      loadAddon(ADDON, [file, join(file, 'below')], record);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GatewayError);
    expect((caught as GatewayError).code).toBe('store_unavailable');
    expect((caught as GatewayError).message).toContain(`${file}: EEXIST`);
    expect((caught as GatewayError).message).toContain(join(file, 'below'));
    expect((caught as GatewayError).message).toContain('GATEWAY_CACHE_DIR');
    expect(loaded).toEqual([]);
  });
});
