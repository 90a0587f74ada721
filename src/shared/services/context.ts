import type { Store } from '../db/store.js';

/** What every service call needs: the store, who is acting (for the audit log) and a clock. */
export interface ServiceContext {
  store: Store;
  actor: string;
  now: () => Date;
  /** The master key, loaded only by the services that seal or open upstream keys. */
  masterKey: () => Buffer;
}
