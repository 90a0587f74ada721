// The one limit engine: reserve the worst case on every counter, settle with the real usage.
export { denialCode } from './accounting.js';
export { FailoverLimitBackend, type FailoverOptions, type LimitHealth, type LimitState } from './failover-backend.js';
export { MemoryLimitBackend, type MemoryLimitOptions } from './memory-backend.js';
export { RedisLimitBackend, type RedisLimitOptions } from './redis-backend.js';
export { descendantsOf, storeSeeder } from './store-seeder.js';
export type * from './types.js';
export { calendarEnd, calendarStart, effectiveSince, isRolling, utcDay } from './windows.js';
