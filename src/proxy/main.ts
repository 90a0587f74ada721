// gateway-proxy: startProxy() wires the pieces and listens; runCli() is the program (flags,
// signals, the one "listening on" line). Only bin/gateway-proxy exits the process.
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { readEnv } from '../shared/config.js';
import type { BundledAssets } from '../shared/db/bundled-assets.js';
import { openStore, type Store } from '../shared/db/store.js';
import { storeFailure } from '../shared/db/store-errors.js';
import { GatewayError, isGatewayError } from '../shared/errors.js';
import type { LimitBackend } from '../shared/limits/types.js';
import { loadMasterKey } from '../shared/master-key.js';
import { SnapshotHolder } from '../shared/snapshot/holder.js';
import { writeSpill } from '../shared/usage/spill.js';
import type { UsageSink } from '../shared/usage/types.js';
import { createAuthStep } from './auth-step.js';
import { checkConfig, defaultConfig, type ProxyConfig, type UpstreamTimeouts } from './config.js';
import type { HealthReport, ProxyDeps } from './context.js';
import { createLimitBackend, warmCounters } from './limits-wiring.js';
import { createMetrics } from './metrics.js';
import { createProxyServer } from './server.js';
import { createUsageSink } from './sink-wiring.js';
import { replaySpilled, spillDirOf, spillDirProblem, storeIdentity } from './spill-wiring.js';
import { createUpstreams } from './upstream/index.js';
import { createPoolRegistry } from './upstream/pools.js';
import { RecentCharges } from './usage-view.js';

export interface ProxyOptions extends Partial<Omit<ProxyConfig, 'upstream'>> {
  upstream?: Partial<UpstreamTimeouts>;
  /** The master key itself (tests); otherwise GATEWAY_MASTER_KEY or the key file. */
  masterKey?: Buffer;
  logger?: Logger;
  now?: () => number;
  /** Set by the standalone executable: the SQLite addon it carries. */
  bundled?: BundledAssets;
}

export interface RunningProxy {
  url: string;
  host: string;
  port: number;
  config: ProxyConfig;
  /**
   * Drains in-flight requests, flushes usage, closes everything. Idempotent. Resolves to the
   * number of usage events lost: the store refused them to the end and they could not be saved
   * to the spill folder either (those saved there are written at the next start; see spilled()).
   */
  close(): Promise<number>;
  /** After close(): the spill file the store's refused usage events were saved to, if any. */
  spilled(): { path: string; events: number } | null;
}

/**
 * How long /readyz waits for the store to answer. A store lost without a reset (a partition)
 * does not refuse, it stays silent; probes want an answer well inside their own timeout.
 */
const HEALTH_PING_MS = 1_000;

function answersWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}

/**
 * Whether a failed reload means the store is out (fail-closed orgs then get 503), rather than a
 * configuration it cannot use: a row that does not parse, a key sealed elsewhere. Only errors
 * that say the store did not answer or could not be reached count (Postgres's, recognised as
 * gatewayctl recognises them, and SQLite's busy, I/O, open and corruption codes); a corrupt row
 * used to count as an outage, and one such row turned every fail-closed org away with 503.
 */
export function isStoreOutage(err: unknown, timeoutMs: number): boolean {
  if (isGatewayError(err)) return err.code === 'store_unavailable';
  if (storeFailure(err, { display: 'store', timeoutMs }) !== undefined) return true;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY|CORRUPT|NOTADB|PROTOCOL)/.test(code)) return true;
    // Postgres: connection exceptions (08…), operator intervention (57P…), insufficient resources (53…).
    if (typeof code === 'string' && /^(08|57P|53)/.test(code)) return true;
  }
  return false;
}

export function resolveConfig(options: ProxyOptions, cwd = process.cwd()): ProxyConfig {
  const base = defaultConfig(readEnv({}), cwd);
  const { upstream, masterKey: _k, logger: _l, now: _n, bundled: _b, ...rest } = options;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return { ...base, ...defined, upstream: { ...base.upstream, ...upstream } };
}

export async function startProxy(options: ProxyOptions = {}): Promise<RunningProxy> {
  const config = resolveConfig(options);
  const problems = checkConfig(config);
  if (problems.length) throw new GatewayError('usage_error', problems.join('; '));
  // In-process callers (tests) get a silent logger unless they pass one or a level.
  const log = options.logger ?? pino({ level: options.logLevel ?? 'silent' });
  const now = options.now ?? Date.now;
  const masterKey = options.masterKey ?? loadMasterKey({ envValue: config.masterKeyEnv, file: config.masterKeyFile });
  const store = await openStore(config.dbUrl, { bundled: options.bundled, timeoutMs: config.storeTimeoutMs });
  const closers: Array<() => Promise<unknown>> = [() => store.close()];
  try {
    return await assemble(config, store, masterKey, log, now, closers);
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw err;
  }
}

async function assemble(
  config: ProxyConfig,
  store: Store,
  masterKey: Buffer,
  log: Logger,
  now: () => number,
  closers: Array<() => Promise<unknown>>,
): Promise<RunningProxy> {
  // Usage events an earlier shutdown could not write: into the store before anything reads it.
  let spillDir = spillDirOf(config);
  const identity = storeIdentity(config.dbUrl);
  const spillProblem = spillDir ? spillDirProblem(spillDir) : null;
  if (spillProblem) {
    // Asked for and unusable: a configuration error. The default folder unusable (a read-only
    // data folder, say, on Postgres where nothing else is written there): run without one, as
    // before there was any, and say so.
    if (config.usageSpillDir !== '') throw new GatewayError('usage_error', `the usage spill folder (--usage-spill-dir) cannot be used: ${spillProblem}`);
    log.warn({ problem: spillProblem }, 'the default usage spill folder cannot be used: usage the store still refuses at shutdown will be lost (set --usage-spill-dir to keep it)');
    spillDir = null;
  }
  if (spillDir) await replaySpilled(store, spillDir, identity, log, config.storeTimeoutMs);
  let limits: LimitBackend | null = null;
  // A reload can fail because the store is down (fail-closed orgs then get 503) or because the
  // configuration cannot be used (e.g. a key sealed elsewhere): only the first is an outage.
  let outage = false;
  let reloadWarnedAt = 0;
  let reloadQuiet = 0;
  const holder = await SnapshotHolder.start({
    store,
    masterKey,
    pollMs: config.pollIntervalMs,
    onReload: (s) => {
      log.info({ version: s.version }, 'configuration reloaded');
      if (limits) warmCounters(limits, s, now(), log);
    },
    onError: (err, stage) => {
      // The version read failing is an outage whatever the error (a database refusing
      // connections, a dead host); a failed load only when the error says the store went away.
      outage = stage === 'version' || isStoreOutage(err, config.storeTimeoutMs);
      // Polls fail every --poll-interval-ms while the store is out: a warning per 10 s says so.
      const t = Date.now();
      if (t - reloadWarnedAt >= 10_000) {
        log.warn({ err, failuresSinceLastWarning: reloadQuiet }, 'configuration reload failed; keeping the last good snapshot');
        reloadWarnedAt = t;
        reloadQuiet = 0;
      } else {
        reloadQuiet++;
        log.debug({ err }, 'configuration reload failed; keeping the last good snapshot');
      }
    },
  });
  closers.push(() => holder.close());
  let wired: ReturnType<typeof createUsageSink> | null = null;
  const wiredLimits = await createLimitBackend(config, store, () => holder.current(), log, () => wired?.sink ?? null, now);
  limits = wiredLimits.limits;
  closers.push(() => limits!.close());
  closers.push(async () => wiredLimits.close());
  await warmCounters(limits, holder.current(), now(), log);
  wired = createUsageSink(config, store, log);
  let lostUsage = 0;
  let spilled: { path: string; events: number } | null = null;
  const sink: UsageSink = wired.sink;
  closers.push(() =>
    sink.close().catch((err: unknown) => {
      // The store refused them to the end: saved for the next start if there is a spill folder.
      const left = wired!.sink.unwritten();
      if (left.length > 0 && spillDir) {
        try {
          const path = writeSpill(spillDir, identity, config.instanceId, left);
          spilled = { path, events: left.length };
          log.warn({ err, file: path, events: left.length }, 'the store refused the last usage events: saved to a spill file, written to the store at the next start');
          return;
        } catch (spillErr) {
          log.error({ err: spillErr, dir: spillDir }, 'the usage events the store refused could not be saved to the spill folder either');
        }
      }
      lostUsage = left.length;
      throw err;
    }),
  );
  const pools = createPoolRegistry(config.upstream);
  closers.push(() => pools.close());
  let proxy: ReturnType<typeof createProxyServer> | null = null;
  let draining = false;
  const metrics = createMetrics({
    inFlight: () => proxy?.inFlight() ?? 0,
    usagePending: () => sink.pending(),
    snapshotVersion: () => holder.current().version,
    snapshotAgeSeconds: () => holder.health().ageMs / 1000,
    countersFallback: () => (config.redisUrl && wiredLimits.problem() ? 1 : 0),
    clockSkewSeconds: () => wiredLimits.clockSkewMs() / 1000,
  });
  const health = async (): Promise<HealthReport> => {
    const h = holder.health();
    const storeOk = await answersWithin(store.ping(), HEALTH_PING_MS);
    const fresh = h.ageMs < Math.max(5_000, config.pollIntervalMs * 5);
    const countersProblem = wiredLimits.problem();
    // Not ready while requests are refused because unwritten usage fills the buffer: a load
    // balancer would keep sending every request to an instance that answers each with 503.
    const accepting = wired.sink.accepting();
    return {
      ready: !draining && fresh && storeOk && accepting,
      snapshot: { version: h.version, age_seconds: h.ageMs / 1000, last_error: h.lastError },
      store: storeOk ? 'ok' : 'unreachable',
      counters: config.redisUrl ? (countersProblem ? `fallback: ${countersProblem}` : 'redis') : 'memory',
      usage_pending: sink.pending(),
      usage_accepting: accepting,
      draining,
    };
  };
  const deps: ProxyDeps = {
    config,
    snapshot: () => holder.current(),
    auth: createAuthStep(config.trustedProxies),
    limits: wiredLimits.limits,
    sink,
    upstreams: createUpstreams(pools),
    metrics,
    recent: new RecentCharges(),
    log,
    now,
    health,
    storeHealthy: () => !(outage && holder.health().lastError !== null) && !wired.failing(),
    accepting: () => wired.sink.accepting(),
  };
  proxy = createProxyServer(deps);
  const server = proxy.server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: config.host, port: config.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.info({ url, version: holder.current().version }, 'gateway-proxy listening');
  let closing: Promise<number> | null = null;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      const p = proxy!;
      p.startDraining();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const left = await p.drained(config.shutdownTimeoutMs);
      if (left > 0) log.warn({ left }, 'shutdown timeout: closing connections with requests in flight');
      server.closeAllConnections();
      await stopped;
      for (const c of closers.reverse()) await c().catch((err: unknown) => log.error({ err }, 'error while closing'));
      log.info({ pending: sink.pending() }, 'gateway-proxy stopped');
      return lostUsage;
    })();
    return closing;
  };
  return { url, host: addr.address, port: addr.port, config, close, spilled: () => spilled };
}
