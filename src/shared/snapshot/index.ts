// The proxy's view of the configuration: load, hold and watch it, and check requests against it.
export { type AuthDenial, type AuthDenialCode, type AuthOk, type AuthResult, authenticate, ipAllowed, modelAllowed, referrerAllowed } from './auth.js';
export { counterId, countersFor, creditCounterId, creditScopesOf, scopesOf, sinceFor } from './counters.js';
export { SnapshotHolder, type SnapshotHealth, type SnapshotHolderOptions } from './holder.js';
export { loadSnapshot } from './load.js';
export { costMicros, FREE, priceFor } from './pricing.js';
export type * from './types.js';
