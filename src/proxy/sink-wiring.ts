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

export function createUsageSink(config: ProxyConfig, store: Store, log: Logger): WiredSink {
  let failing = false;
  const sink = new StoreUsageSink(store, {
    instance: config.instanceId,
    flushIntervalMs: config.flushIntervalMs,
    maxBuffer: config.usageBufferMax,
    closeTimeoutMs: config.shutdownTimeoutMs,
    writerThread: config.usageWriter === 'thread',
    onEvent(e) {
      switch (e.type) {
        case 'flushed':
          failing = false;
          log.debug({ inserted: e.inserted, duplicates: e.duplicates, ms: e.ms, pending: e.pending }, 'usage flushed');
          return;
        case 'error':
          failing = true;
          log.warn({ err: e.error, pending: e.pending, retryInMs: e.retryInMs }, 'usage events could not be written; kept in memory');
          return;
        case 'full':
          log.error({ pending: e.pending, maxBuffer: e.maxBuffer }, 'usage buffer full: refusing new requests until the store is back');
          return;
        case 'recovered':
          failing = false;
          log.info({ pending: e.pending }, 'usage writes recovered');
          return;
      }
    },
  });
  return { sink, failing: () => failing };
}
