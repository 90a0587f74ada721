// One undici Pool per upstream origin, with keep-alive and explicit timeouts (DESIGN §7).
// Created on first use and closed at shutdown; no module singleton, the registry is passed in.
import { Pool } from 'undici';
import type { UpstreamTimeouts } from '../config.js';

export interface PoolRegistry {
  get(origin: string): Pool;
  /** Longest a request may wait for a free connection of a pool (0: as long as it takes). */
  readonly queueMs: number;
  close(): Promise<void>;
  readonly size: number;
}

export function createPoolRegistry(t: UpstreamTimeouts): PoolRegistry {
  const pools = new Map<string, Pool>();
  return {
    queueMs: t.queueMs,
    get(origin) {
      let pool = pools.get(origin);
      if (!pool) {
        pool = new Pool(origin, {
          connections: t.connections,
          pipelining: 1,
          keepAliveTimeout: t.keepAliveMs,
          keepAliveMaxTimeout: Math.max(t.keepAliveMs, 600_000),
          headersTimeout: t.headersMs,
          bodyTimeout: t.bodyMs,
          connect: { timeout: t.connectMs },
        });
        pools.set(origin, pool);
      }
      return pool;
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((p) => p.close().catch(() => p.destroy())));
    },
    get size() {
      return pools.size;
    },
  };
}
