// Usage: the batched sink the proxy writes to, and the queries over what it wrote.
export { creditsCharged, metricOf, type UsageFilter, type UsageTotals, usageSince, usedInWindow, type WindowQuery } from './queries.js';
export { type SinkEvent, StoreUsageSink, type StoreUsageSinkOptions } from './store-sink.js';
export type * from './types.js';
export { type BatchResult, batchWriter } from './write-batch.js';
