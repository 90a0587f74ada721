// Seeds a counter from what the store already holds, so a restarted proxy (or an emptied
// Redis) does not forget what was spent today, this month or ever. Rolling windows are not
// seeded: they start empty after a restart.
import type { Store } from '../db/store.js';
import type { Snapshot } from '../snapshot/types.js';
import { creditsCharged, usedInWindow } from '../usage/queries.js';
import type { CounterRef, CounterSeeder } from './types.js';
import { isRolling } from './windows.js';

/** The key and every key below it: their usage counts against the key's limits. */
export function descendantsOf(snapshot: Snapshot | undefined, keyId: string): string[] {
  if (!snapshot) return [keyId];
  const out = [keyId];
  for (const k of snapshot.keys.values()) if (k.id !== keyId && k.chain.includes(keyId)) out.push(k.id);
  return out;
}

export function storeSeeder(store: Pick<Store, 'db' | 't'>, currentSnapshot?: () => Snapshot): CounterSeeder {
  return async (c: CounterRef, now: number) => {
    if (c.metric === 'credits') return creditsCharged(store, c.scopeType, c.scopeId);
    if (isRolling(c.window)) return 0;
    return usedInWindow(
      store,
      {
        scopeType: c.scopeType,
        scopeId: c.scopeId,
        metric: c.metric,
        window: c.window,
        model: c.model,
        since: c.since,
        keyIds: c.scopeType === 'key' ? descendantsOf(currentSnapshot?.(), c.scopeId) : undefined,
      },
      now,
    );
  };
}
