// `npm run build:exe`: standalone Linux executables of gatewayctl and gateway-proxy that need no
// Node and no node_modules. Node's single executable applications: each program is bundled to one
// CommonJS file (esbuild), turned into a SEA blob that also carries the better_sqlite3 addon and
// the migrations (src/shared/sea-assets.ts unpacks them), and injected into a stripped copy of the
// node binary running this script (so the addon's ABI and the blob's code cache match it).
// pkg is no option here: it downloads Node base binaries, and this machine is offline.
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { readMigrationSet } from '../../src/shared/db/migrate.js';
import { type EmbeddedMigrations, SEA_ASSET } from '../../src/shared/sea-assets.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The programs to build: one line per executable. */
export const PROGRAMS = [
  { name: 'gatewayctl', entry: 'src/cli/sea-entry.ts' },
  { name: 'gateway-proxy', entry: 'src/proxy/sea-entry.ts' },
] as const;

export interface BuildOptions {
  /** Where the executables go (intermediate files in <outDir>/.work). */
  outDir: string;
  /** Skip `strip` (faster, ≈10 MiB larger). */
  noStrip?: boolean;
  log?: (line: string) => void;
}

export interface BuiltProgram {
  name: string;
  path: string;
  bytes: number;
  /** The bundled script alone. */
  bundleBytes: number;
}

export interface BuildResult {
  outDir: string;
  programs: BuiltProgram[];
  version: string;
  commit: string;
  seconds: number;
}

export async function buildExecutables(opts: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const outDir = resolve(opts.outDir);
  const work = join(outDir, '.work');
  await mkdir(work, { recursive: true });
  const { version, commit } = await versionInfo();
  const assets = await writeAssets(work);
  const base = await strippedNode(work, !opts.noStrip);
  const programs = await Promise.all(
    PROGRAMS.map(async (p) => {
      const program = await buildProgram(p, { outDir, work, base, assets, version, commit });
      log(`${p.name}: ${mib(program.bytes)} (bundle ${mib(program.bundleBytes)})`);
      return program;
    }),
  );
  return { outDir, programs, version, commit, seconds: (performance.now() - started) / 1000 };
}

interface Shared {
  outDir: string;
  work: string;
  base: string;
  assets: Record<string, string>;
  version: string;
  commit: string;
}

async function buildProgram(p: { name: string; entry: string }, s: Shared): Promise<BuiltProgram> {
  const script = join(s.work, `${p.name}.cjs`);
  await bundle(resolve(ROOT, p.entry), script, s.version, s.commit);
  const blob = join(s.work, `${p.name}.blob`);
  const config = join(s.work, `${p.name}.sea.json`);
  await writeFile(
    config,
    JSON.stringify({
      main: script,
      output: blob,
      disableExperimentalSEAWarning: true,
      // V8's compile cache for the script: a fast start without parsing a megabyte of JS.
      useCodeCache: true,
      assets: s.assets,
    }),
  );
  await run(process.execPath, ['--experimental-sea-config', config], { cwd: s.work });
  const target = join(s.outDir, p.name);
  await rm(target, { force: true });
  await copyFile(s.base, target);
  const postject = require.resolve('postject/dist/cli.js');
  await run(process.execPath, [postject, target, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], {
    maxBuffer: 16 * 1024 * 1024,
  });
  await chmod(target, 0o755);
  await selfCheck(target, s.version, s.commit);
  return { name: p.name, path: target, bytes: (await stat(target)).size, bundleBytes: (await stat(script)).size };
}

async function bundle(entry: string, outfile: string, version: string, commit: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Whitespace and syntax only: class and function names stay as in bin/ (error names, stacks).
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'error',
    define: {
      __GATEWAY_VERSION__: JSON.stringify(version),
      __GATEWAY_COMMIT__: JSON.stringify(commit),
      // CommonJS has no import.meta: point it at the executable, as a checkout points it at a file.
      'import.meta.url': '__gatewayImportMetaUrl',
    },
    banner: { js: 'var __gatewayImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [pgWithoutCloudflareProbe, lazyPackages(LAZY_PACKAGES), absentOptionalPackages],
  });
}

/**
 * Packages that only some commands use, loaded on first use instead of at start-up: in a bundle
 * every import runs when the program starts (undici alone was ≈100 ms of `gatewayctl --help`,
 * pg with drizzle's Postgres driver ≈40 ms).
 */
const LAZY_PACKAGES = ['undici', 'jose', '@inquirer/prompts', 'pg', 'drizzle-orm/node-postgres'];

/**
 * Replaces each listed package with a stand-in whose exports are getters that require the real
 * package on first access; importers are unchanged, as esbuild reads an imported binding through
 * the module object each time. The export names are read from the real package at build time.
 * Only packages whose exports are a plain set of names qualify: a default export or a callable
 * module would be handed over as the stand-in itself, so those fail the build.
 */
function lazyPackages(specifiers: string[]): Plugin {
  const REAL = Symbol('real package');
  const keys = new Map<string, string[]>();
  for (const spec of specifiers) {
    const mod: unknown = require(spec);
    if (typeof mod !== 'object' || mod === null || 'default' in mod) {
      throw new Error(`${spec} cannot be loaded lazily: it has a default export or is not a plain module object`);
    }
    keys.set(spec, Object.keys(mod));
  }
  return {
    name: 'lazy-packages',
    setup(b) {
      b.onResolve({ filter: /^[@a-z]/ }, async (args) => {
        if (!keys.has(args.path) || args.pluginData === REAL) return undefined;
        if (args.namespace !== 'lazy') return { path: args.path, namespace: 'lazy' };
        // The real package, resolved as the static imports resolve it (ESM entry of a dual
        // package), so the bundle holds one copy of it.
        const real = await b.resolve(args.path, { kind: 'import-statement', resolveDir: ROOT, pluginData: REAL });
        return real.errors.length ? { errors: real.errors } : { path: real.path };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => {
        const names = keys.get(args.path) ?? [];
        const props = names.map((k) => `${JSON.stringify(k)}: { enumerable: true, get: () => load()[${JSON.stringify(k)}] }`);
        const contents = [
          'let real;',
          `const load = () => (real ??= require(${JSON.stringify(args.path)}));`,
          `Object.defineProperties(module.exports, {${props.join(', ')}});`,
        ].join('\n');
        return { contents, loader: 'js', resolveDir: ROOT };
      });
    },
  };
}

/**
 * pg decides at import whether it runs in a Cloudflare Worker by constructing a `Response`, which
 * on Node 20 loads Node's whole fetch implementation: ≈70 ms of every start-up. The executables
 * only ever run on Node, so the probe is answered at build time. Fails loudly if pg changes.
 */
const pgWithoutCloudflareProbe: Plugin = {
  name: 'pg-without-cloudflare-probe',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const probe = 'if (isCloudflareRuntime())';
      if (!text.includes(probe)) throw new Error(`${args.path} no longer contains '${probe}': update build-exe.ts`);
      return { contents: text.replace(probe, 'if (false)'), loader: 'js' };
    });
  },
};

/**
 * Optional packages that are not installed (pg-native, supports-color) stay `require` calls in a
 * bundle; in an executable that require can load built-ins only, so it prints a warning and fails
 * with an unusual error. A stand-in fails the way Node does for a missing package, which the
 * libraries' try/catch expects, and prints nothing.
 */
const absentOptionalPackages: Plugin = {
  name: 'absent-optional-packages',
  setup(b) {
    const PROBE = Symbol('probe');
    b.onResolve({ filter: /^[@a-z]/ }, async (args) => {
      // A static import of a missing package stays a build error; only require() calls can be optional.
      if (args.kind !== 'require-call' || args.pluginData === PROBE || args.namespace !== 'file' || isBuiltin(args.path)) {
        return undefined;
      }
      const found = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: PROBE });
      return found.errors.length ? { path: args.path, namespace: 'absent' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}'`)}), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
  },
};

/** The SEA assets both programs carry, keyed as src/shared/sea-assets.ts reads them. */
async function writeAssets(work: string): Promise<Record<string, string>> {
  const migrations: EmbeddedMigrations = {
    sqlite: readMigrationSet(join(ROOT, 'migrations', 'sqlite')),
    postgres: readMigrationSet(join(ROOT, 'migrations', 'postgres')),
  };
  const migrationsFile = join(work, SEA_ASSET.migrations);
  await writeFile(migrationsFile, JSON.stringify(migrations));
  const addon = join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node');
  await stat(addon).catch(() => {
    throw new Error(`${addon} is missing: run npm ci (better-sqlite3 compiles its addon on install)`);
  });
  return { [SEA_ASSET.sqliteAddon]: addon, [SEA_ASSET.migrations]: migrationsFile };
}

/** A copy of this node without debug symbols (≈100 MiB → ≈85 MiB), made once per build. */
async function strippedNode(work: string, strip: boolean): Promise<string> {
  const base = join(work, 'node-base');
  await copyFile(process.execPath, base);
  if (strip) {
    try {
      await run('strip', [base]);
    } catch (err) {
      throw new Error(`strip failed (install binutils, or pass --no-strip): ${String(err)}`);
    }
  }
  return base;
}

async function versionInfo(): Promise<{ version: string; commit: string }> {
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  let commit = 'unknown';
  try {
    commit = (await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
    const tracked = ['src', 'migrations', 'package.json', 'package-lock.json'];
    const status = await run('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no', '--', ...tracked]);
    if (status.stdout.trim()) commit += '-dirty';
  } catch {
    // Not a git checkout (a source tarball): the version alone identifies the build.
  }
  return { version, commit };
}

/** The injected binary starts and knows its version, with nothing from this machine's environment. */
async function selfCheck(exe: string, version: string, commit: string): Promise<void> {
  const { stdout } = await run(exe, ['--version'], { env: {}, cwd: dirname(exe), timeout: 30_000 });
  if (!stdout.includes(version) || !stdout.includes(commit)) {
    throw new Error(`${exe} --version printed '${stdout.trim()}', expected ${version} and ${commit}`);
  }
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function main(argv: string[]): Promise<number> {
  let outDir = join(ROOT, 'build', 'exe');
  let noStrip = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out' && argv[i + 1]) outDir = resolve(argv[++i] as string);
    else if (arg === '--no-strip') noStrip = true;
    else {
      process.stderr.write(`usage: build-exe [--out DIR] [--no-strip]\nunknown argument '${arg}'\n`);
      return 2;
    }
  }
  const result = await buildExecutables({ outDir, noStrip, log: (line) => process.stdout.write(`${line}\n`) });
  const where = relative(process.cwd(), outDir) || '.';
  process.stdout.write(`built ${result.version} (${result.commit}) into ${where} in ${result.seconds.toFixed(1)} s\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`build-exe: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
