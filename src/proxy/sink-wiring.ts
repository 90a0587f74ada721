// The usage sink for this process (batched writes off the request path), and what it tells us
// about the store: a failed write means the store is unreachable until a write succeeds again.
import type { Logger } from 'pino';
import type { Store } from '../shared/db/store.js';
import { StoreUsageSink } from '../shared/usage/store-sink.js';
import type { ProxyConfig } from './config.js';

export interface WiredSink {
  sink: StoreUsageSink;
  /** The last write failed and none has succeeded since. */
  failing(): boolean;
}

/**
 * How long the store may stay busy (another connection holding SQLite's write lock) before the
 * proxy treats it as unreachable (fail-closed orgs get 503): the busy timeout a write used to
 * wait out on the event loop. Writes are retried meanwhile, with backoff.
 */
export const BUSY_GRACE_MS = 5_000;

/** While usage writes keep failing, how often that is logged as a warning (the rest at debug). */
const WARN_EVERY_MS = 10_000;

const isBusy = (err: unknown) => (err as { code?: unknown } | null)?.code === 'SQLITE_BUSY';

export function createUsageSink(config: ProxyConfig, store: Store, log: Logger): WiredSink {
  let failing = false;
  let busySince: number | null = null;
  let warnedAt = 0;
  let quiet = 0;
  const sink = new StoreUsageSink(store, {
    instance: config.instanceId,
    flushIntervalMs: config.flushIntervalMs,
    maxBuffer: config.usageBufferMax,
    closeTimeoutMs: config.shutdownTimeoutMs,
    writerThread: config.usageWriter === 'thread',
    busy: isBusy,
    onEvent(e) {
      switch (e.type) {
        case 'flushed':
          failing = false;
          busySince = null;
          log.debug({ inserted: e.inserted, duplicates: e.duplicates, ms: e.ms, pending: e.pending }, 'usage flushed');
          return;
        case 'error': {
          if (isBusy(e.error)) {
            const now = Date.now();
            busySince ??= now;
            if (now - busySince < BUSY_GRACE_MS) {
              log.debug({ pending: e.pending, retryInMs: e.retryInMs }, 'the store is busy (another connection is writing); usage events kept in memory');
              return;
            }
          } else busySince = null;
          // One warning per WARN_EVERY_MS while the failure lasts: a seed waiting for a busy store
          // retries every 50 ms, which would otherwise be twenty warnings a second.
          const now = Date.now();
          if (!failing || now - warnedAt >= WARN_EVERY_MS) {
            log.warn({ err: e.error, pending: e.pending, retryInMs: e.retryInMs, failuresSinceLastWarning: quiet }, 'usage events could not be written; kept in memory');
            warnedAt = now;
            quiet = 0;
          } else {
            quiet++;
            log.debug({ err: e.error, pending: e.pending, retryInMs: e.retryInMs }, 'usage events could not be written; kept in memory');
          }
          failing = true;
          return;
        }
        case 'full':
          log.error({ pending: e.pending, maxBuffer: e.maxBuffer }, 'usage buffer full: refusing new requests until the store is back');
          return;
        case 'recovered':
          failing = false;
          busySince = null;
          log.info({ pending: e.pending }, 'usage writes recovered');
          return;
      }
    },
  });
  return { sink, failing: () => failing };
}
