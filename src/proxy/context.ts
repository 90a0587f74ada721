// What every route receives: the request's id and clock, the shared dependencies, and the
// snapshot in force when the request arrived (one snapshot for the whole request).
import type { Logger } from 'pino';
import type { LimitBackend } from '../shared/limits/types.js';
import type { Snapshot } from '../shared/snapshot/types.js';
import type { UsageSink } from '../shared/usage/types.js';
import type { AuthStep } from './auth-step.js';
import type { ProxyConfig } from './config.js';
import type { ProxyMetrics } from './metrics.js';
import type { Upstreams } from './upstream/index.js';
import type { RecentCharges } from './usage-view.js';

export interface ProxyDeps {
  config: ProxyConfig;
  snapshot: () => Snapshot;
  auth: AuthStep;
  limits: LimitBackend;
  sink: UsageSink;
  upstreams: Upstreams;
  metrics: ProxyMetrics;
  recent: RecentCharges;
  log: Logger;
  now: () => number;
  /**
   * Whether the store answered the last config poll and the usage buffer has room. When not,
   * fail-closed orgs are refused (503) and fail-open orgs keep being served from the snapshot.
   */
  storeHealthy: () => boolean;
  /** False while the usage buffer is past its bound: every request is refused (503) so no event is lost. */
  accepting: () => boolean;
  /** Readiness details: store reachable, snapshot fresh. */
  health: () => Promise<HealthReport>;
}

export interface HealthReport {
  ready: boolean;
  snapshot: { version: number; age_seconds: number; last_error: string | null };
  store: 'ok' | 'unreachable';
  counters: string;
  usage_pending: number;
  /** false while the usage buffer is full and chat requests are refused (503). */
  usage_accepting: boolean;
  draining: boolean;
}

export interface RequestContext {
  id: string;
  /** performance.now() at arrival. */
  startedAt: number;
  log: Logger;
  /** Called once when the response closes (sent, or the client went away); set by the handler. */
  onClose: (() => void) | null;
  /** The response has closed already (a handler setting onClose late checks this). */
  closed: boolean;
}
