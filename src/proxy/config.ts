// gateway-proxy's configuration: flags over GATEWAY_* variables over defaults, validated once,
// every problem reported together before the port opens (STYLE §10).
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { dataDir, defaultDbUrl, type GatewayEnv, masterKeyFile } from '../shared/config.js';
import { parseCidr } from '../shared/ip-rules.js';

export interface UpstreamTimeouts {
  connectMs: number;
  /**
   * Until the upstream's status line and headers (time to first byte; for a JSON answer, the
   * whole completion). Equal to bodyMs by default: undici then refreshes one timer per
   * connection, while two values make it build a new timer on every request, which outlives it
   * in a list swept every half second (3% more CPU per stream, measured).
   */
  headersMs: number;
  /** Longest silence between two body chunks (keep-alive comments count as traffic). */
  bodyMs: number;
  keepAliveMs: number;
  /** Sockets per upstream origin. */
  connections: number;
  /** Longest a request waits for a free socket of its origin before a 503 (0: no limit). */
  queueMs: number;
}

export interface ProxyConfig {
  host: string;
  port: number;
  dbUrl: string;
  redisUrl: string | null;
  /** Key prefix in Redis, so several gateways (or tests) can share one server. */
  redisPrefix: string;
  logLevel: string;
  masterKeyEnv: string | undefined;
  masterKeyFile: string;
  trustedProxies: string[];
  maxBodyBytes: number;
  /** Completion cap reserved when neither the request nor the org gives one. */
  defaultMaxTokens: number;
  /** Tokens reserved per image or audio part: not a bound, a configured guess. */
  mediaPartTokens: number;
  upstream: UpstreamTimeouts;
  /** Client side: until the request headers, and until the whole request body. */
  clientHeadersTimeoutMs: number;
  clientRequestTimeoutMs: number;
  /**
   * Longest a client may leave an answer unread (its socket refusing more). Past it the client is
   * dropped, so a reader that stalls cannot hold an upstream connection (and the pool) forever.
   */
  clientWriteTimeoutMs: number;
  /**
   * A client that hangs up after its stream's completion finished (a non-null finish_reason)
   * but before the upstream's usage chunk: the upstream is read this much longer for its usage
   * (nothing more is generated then), so the request is billed what the upstream reports, hidden
   * reasoning included, not the gateway's estimate of the delivered text. 0: abort at once.
   */
  disconnectUsageWaitMs: number;
  keepAliveTimeoutMs: number;
  /**
   * Browser origins answered with CORS headers: ['*'] any (the default: keys
   * are bearer tokens, not cookies, and a key's referrer allow-list still applies), a list of
   * exact origins, or [] for none (preflights then get 403 and no response carries CORS headers).
   */
  corsOrigins: string[];
  instanceId: string;
  flushIntervalMs: number;
  pollIntervalMs: number;
  /** Usage events held while the store is unreachable before new requests are refused. */
  usageBufferMax: number;
  /**
   * Where usage events the store still refuses at the end of a shutdown are saved, to be written
   * at the next start (null: nowhere, and they are lost, with exit code 6). '' (the default):
   * a folder next to a SQLite store's file (`<file>.usage-spill`), `<dataDir>/usage-spill` for
   * Postgres.
   */
  usageSpillDir: string | null;
  /** The data folder (GATEWAY_DATA_DIR, default ./.gateway). */
  dataDir: string;
  /** SQLite usage batches: on a writer thread, or on the event loop. */
  usageWriter: 'thread' | 'inline';
  shutdownTimeoutMs: number;
  /**
   * Postgres: longest a statement may run (or a transaction sit idle) before the server ends it,
   * and, a second later, longest the proxy waits for an answer on a connection that may be lost.
   */
  storeTimeoutMs: number;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function defaultConfig(env: GatewayEnv, cwd = process.cwd()): ProxyConfig {
  return {
    host: '127.0.0.1',
    port: 8080,
    dbUrl: defaultDbUrl(env, cwd),
    redisUrl: null,
    redisPrefix: 'gw:',
    logLevel: 'info',
    masterKeyEnv: env.gateway.master_key,
    masterKeyFile: masterKeyFile(env, cwd),
    trustedProxies: [],
    maxBodyBytes: 4 * 1024 * 1024,
    defaultMaxTokens: 4096,
    mediaPartTokens: 1105,
    upstream: { connectMs: 5_000, headersMs: 120_000, bodyMs: 120_000, keepAliveMs: 30_000, connections: 128, queueMs: 10_000 },
    clientHeadersTimeoutMs: 10_000,
    clientRequestTimeoutMs: 30_000,
    clientWriteTimeoutMs: 30_000,
    disconnectUsageWaitMs: 2_000,
    keepAliveTimeoutMs: 5_000,
    corsOrigins: ['*'],
    instanceId: `${hostname()}-${process.pid}`,
    flushIntervalMs: 1_000,
    pollIntervalMs: 500,
    usageBufferMax: 100_000,
    usageSpillDir: '',
    dataDir: dataDir(env, cwd),
    usageWriter: 'inline',
    shutdownTimeoutMs: 30_000,
    storeTimeoutMs: 10_000,
  };
}

type Setter = (c: ProxyConfig, v: string) => string | undefined;

function str(apply: (c: ProxyConfig, v: string) => void): Setter {
  return (c, v) => {
    apply(c, v);
    return undefined;
  };
}

/**
 * Longest a node timer can wait (2^31 − 1 ms, ~24.8 days): a longer delay fires at once, with a
 * warning, so a timeout set past it would time everything out immediately.
 */
const TIMER_MAX_MS = 2_147_483_647;

/** A duration in milliseconds: at most what a timer can wait, less `slack` for timers set that much later. */
const ms = (apply: (c: ProxyConfig, n: number) => unknown, min: number, slack = 0): Setter => int(apply, min, TIMER_MAX_MS - slack);

/** One row per option: flag name, GATEWAY_ variable (lower-cased, without prefix), setter returning a problem. */
const OPTIONS: Array<[flag: string, envName: string, set: Setter, help: string]> = [
  ['host', 'host', str((c, v) => { c.host = v; }), 'interface to listen on (127.0.0.1)'],
  ['port', 'port', int((c, n) => { c.port = n; }, 0, 65_535), 'port, 0 picks a free one (8080)'],
  ['db', 'db', str((c, v) => { c.dbUrl = v; }), 'store: SQLite path or postgres://…'],
  ['redis', 'redis_url', str((c, v) => { c.redisUrl = v; }), 'Redis URL for counters shared across instances'],
  ['redis-prefix', 'redis_prefix', str((c, v) => { c.redisPrefix = v; }), "key prefix in Redis ('gw:')"],
  ['log-level', 'log_level', oneOf(LOG_LEVELS, (c, v) => { c.logLevel = v; }), 'fatal|error|warn|info|debug|trace|silent'],
  ['trusted-proxies', 'trusted_proxies', cidrs, 'CIDRs whose X-Forwarded-For is believed'],
  ['max-body-bytes', 'max_body_bytes', int((c, n) => { c.maxBodyBytes = n; }, 1), 'largest request body (4 MiB)'],
  ['default-max-tokens', 'default_max_tokens', int((c, n) => { c.defaultMaxTokens = n; }, 1), 'completion cap reserved without max_tokens (4096)'],
  ['upstream-connect-timeout-ms', 'upstream_connect_timeout_ms', ms((c, n) => { c.upstream.connectMs = n; }, 1), 'connect timeout (5000)'],
  ['upstream-headers-timeout-ms', 'upstream_headers_timeout_ms', ms((c, n) => { c.upstream.headersMs = n; }, 1), 'time to first byte; for a JSON answer the whole completion (120000)'],
  ['upstream-body-timeout-ms', 'upstream_body_timeout_ms', ms((c, n) => { c.upstream.bodyMs = n; }, 1), 'longest pause between chunks (120000)'],
  ['upstream-connections', 'upstream_connections', int((c, n) => { c.upstream.connections = n; }, 1), 'sockets per upstream origin (128)'],
  ['upstream-queue-timeout-ms', 'upstream_queue_timeout_ms', ms((c, n) => { c.upstream.queueMs = n; }, 0), 'longest wait for a free upstream socket, 0 = no limit (10000)'],
  ['client-headers-timeout-ms', 'client_headers_timeout_ms', ms((c, n) => { c.clientHeadersTimeoutMs = n; }, 1), 'slow-client header timeout (10000)'],
  ['client-request-timeout-ms', 'client_request_timeout_ms', ms((c, n) => { c.clientRequestTimeoutMs = n; }, 1, 5_000), 'slow-client body timeout (30000)'],
  ['client-write-timeout-ms', 'client_write_timeout_ms', ms((c, n) => { c.clientWriteTimeoutMs = n; }, 1), 'longest a client may leave an answer unread (30000)'],
  ['disconnect-usage-wait-ms', 'disconnect_usage_wait_ms', ms((c, n) => { c.disconnectUsageWaitMs = n; }, 0), 'after a client leaves a finished stream, how long to wait for its usage (2000; 0: abort at once)'],
  ['cors-origins', 'cors_origins', corsOrigins, "browser origins given CORS headers: '*' (default), a comma-separated list such as https://app.example.com, or 'none'"],
  ['instance-id', 'instance_id', str((c, v) => { c.instanceId = v; }), 'name of this instance in usage events'],
  ['flush-interval-ms', 'flush_interval_ms', ms((c, n) => { c.flushIntervalMs = n; }, 10), 'usage batch interval (1000)'],
  ['poll-interval-ms', 'poll_interval_ms', int((c, n) => { c.pollIntervalMs = n; }, 10, 1000), 'config_version poll, ≤1000 (500)'],
  ['usage-buffer-max', 'usage_buffer_max', int((c, n) => { c.usageBufferMax = n; }, 1), 'usage events held while the store is down (100000)'],
  ['usage-spill-dir', 'usage_spill_dir', str((c, v) => { c.usageSpillDir = v === 'none' ? null : v; }), "where usage the store refuses at shutdown is kept for the next start ('none': nowhere) (<SQLite file>.usage-spill, or <data dir>/usage-spill)"],
  ['usage-writer', 'usage_writer', oneOf(['thread', 'inline'] as const, (c, v) => { c.usageWriter = v; }), "SQLite usage writes: 'inline' or 'thread' (inline)"],
  ['store-timeout-ms', 'store_timeout_ms', ms((c, n) => { c.storeTimeoutMs = n; }, 100, 1_000), 'Postgres: longest statement, or wait for an answer (10000)'],
  ['shutdown-timeout-ms', 'shutdown_timeout_ms', ms((c, n) => { c.shutdownTimeoutMs = n; }, 0), 'drain time on SIGTERM (30000)'],
];

function int(apply: (c: ProxyConfig, n: number) => unknown, min: number, max = Number.MAX_SAFE_INTEGER): Setter {
  return (c, v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < min || n > max) return `must be an integer from ${min} to ${max}, got '${v}'`;
    apply(c, n);
    return undefined;
  };
}

function oneOf<T extends string>(allowed: readonly T[], apply: (c: ProxyConfig, v: T) => unknown): Setter {
  return (c, v) => {
    if (!(allowed as readonly string[]).includes(v)) return `must be one of ${allowed.join(', ')}, got '${v}'`;
    apply(c, v as T);
    return undefined;
  };
}

function corsOrigins(c: ProxyConfig, v: string): string | undefined {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 1 && list[0] === 'none') {
    c.corsOrigins = [];
    return undefined;
  }
  if (list.length === 1 && list[0] === '*') {
    c.corsOrigins = ['*'];
    return undefined;
  }
  const bad = list.filter((o) => {
    try {
      const u = new URL(o);
      return (u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== o.replace(/\/$/, '');
    } catch {
      return true;
    }
  });
  if (bad.length || list.length === 0) return `must be '*', 'none' or a comma-separated list of origins such as https://app.example.com, got ${bad.map((b) => `'${b}'`).join(', ') || "''"}`;
  c.corsOrigins = list.map((o) => o.replace(/\/$/, ''));
  return undefined;
}

function cidrs(c: ProxyConfig, v: string): string | undefined {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad: string[] = [];
  for (const item of list) {
    try {
      parseCidr(item);
    } catch {
      bad.push(item);
    }
  }
  if (bad.length) return `invalid CIDR ${bad.map((b) => `'${b}'`).join(', ')}`;
  c.trustedProxies = list;
  return undefined;
}

/** The config is always filled (defaults stand in for bad values) so later checks can add their problems. */
export type ParsedCli =
  | { kind: 'run'; config: ProxyConfig; problems: string[] }
  | { kind: 'help'; text: string }
  | { kind: 'version' };

export function helpText(): string {
  const rows = OPTIONS.map(([flag, envName, , help]) => `  --${flag.padEnd(30)} ${help} [GATEWAY_${envName.toUpperCase()}]`);
  return [
    'Usage: gateway-proxy [options]',
    '',
    'The OpenAI-compatible data plane of the AI gateway.',
    '',
    'Options:',
    ...rows,
    '  --help                           show this help',
    '  -V, --version                    print the version and commit',
    '',
    'Master key: GATEWAY_MASTER_KEY or the key file made by `gatewayctl init` (GATEWAY_MASTER_KEY_FILE).',
    'Example: gateway-proxy --port 0 --db ./gateway.db',
    '',
  ].join('\n');
}

/** Flags win over GATEWAY_* variables, which win over defaults. Never throws. */
export function parseCli(argv: readonly string[], env: GatewayEnv, cwd = process.cwd()): ParsedCli {
  const options = Object.fromEntries([...OPTIONS.map(([flag]) => [flag, { type: 'string' as const }]), ['help', { type: 'boolean' as const }], ['version', { type: 'boolean' as const, short: 'V' }]]);
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return { kind: 'run', config: defaultConfig(env, cwd), problems: [err instanceof Error ? err.message : String(err)] };
  }
  if (values.help) return { kind: 'help', text: helpText() };
  if (values.version) return { kind: 'version' };
  const config = defaultConfig(env, cwd);
  const problems: string[] = [];
  for (const [flag, envName, set] of OPTIONS) {
    const fromFlag = values[flag];
    const value = typeof fromFlag === 'string' ? fromFlag : env.gateway[envName];
    if (value === undefined) continue;
    const problem = set(config, value);
    if (problem) problems.push(`${typeof fromFlag === 'string' ? `--${flag}` : `GATEWAY_${envName.toUpperCase()}`} ${problem}`);
  }
  problems.push(...checkConfig(config));
  return { kind: 'run', config, problems };
}

/** Cross-field checks that apply however the config was built (flags or startProxy options). */
export function checkConfig(c: ProxyConfig): string[] {
  const problems: string[] = [];
  if (c.redisUrl !== null && !/^rediss?:\/\//.test(c.redisUrl)) problems.push(`--redis must be a redis:// or rediss:// URL, got '${c.redisUrl}'`);
  if (!c.host.trim()) problems.push('--host must not be empty');
  if (!c.instanceId.trim()) problems.push('--instance-id must not be empty');
  return problems;
}
