// Seeds usage straight into a store the way the proxy's usage sink does: raw events plus the
// matching usage_daily rollups (UTC day, org, key, user or '', model).
import { sql } from 'drizzle-orm';
import { openStore } from '../../src/shared/db/store.js';

export interface SeedEvent {
  ts: Date;
  orgId: string;
  keyId: string;
  userId?: string | null;
  model: string;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
  status?: number;
}

let seq = 0;

export async function seedUsage(url: string, events: SeedEvent[]): Promise<void> {
  const store = await openStore(url);
  try {
    const { t } = store;
    const rollups = new Map<string, { day: string; orgId: string; keyId: string; userId: string; model: string; requests: number; errors: number; promptTokens: number; completionTokens: number; totalTokens: number; costMicros: number }>();
    const rows = events.map((e) => {
      const day = e.ts.toISOString().slice(0, 10);
      const id = JSON.stringify([day, e.orgId, e.keyId, e.userId ?? '', e.model]);
      const r = rollups.get(id) ?? { day, orgId: e.orgId, keyId: e.keyId, userId: e.userId ?? '', model: e.model, requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, costMicros: 0 };
      r.requests += 1;
      r.errors += (e.status ?? 200) >= 400 ? 1 : 0;
      r.promptTokens += e.promptTokens;
      r.completionTokens += e.completionTokens;
      r.totalTokens += e.promptTokens + e.completionTokens;
      r.costMicros += e.costMicros;
      rollups.set(id, r);
      return {
        requestId: `req_${process.pid}_${++seq}`,
        ts: e.ts,
        orgId: e.orgId,
        userId: e.userId ?? null,
        keyId: e.keyId,
        model: e.model,
        provider: 'mock',
        promptTokens: e.promptTokens,
        completionTokens: e.completionTokens,
        totalTokens: e.promptTokens + e.completionTokens,
        costMicros: e.costMicros,
        status: e.status ?? 200,
        errorCode: null,
        latencyMs: 12,
        ttfbMs: 5,
        stream: false,
        usageSource: 'upstream',
        instance: 'test',
      };
    });
    await store.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += 500) await tx.insert(t.usageEvents).values(rows.slice(i, i + 500));
      const d = t.usageDaily;
      // Qualified: Postgres finds a bare column name ambiguous next to `excluded`.
      const add = (col: string) => sql`${sql.identifier('usage_daily')}.${sql.identifier(col)} + excluded.${sql.identifier(col)}`;
      const all = [...rollups.values()];
      for (let i = 0; i < all.length; i += 500) {
        await tx
          .insert(d)
          .values(all.slice(i, i + 500))
          .onConflictDoUpdate({
            target: [d.day, d.orgId, d.keyId, d.userId, d.model],
            set: { requests: add('requests'), errors: add('errors'), promptTokens: add('prompt_tokens'), completionTokens: add('completion_tokens'), totalTokens: add('total_tokens'), costMicros: add('cost_micros') },
          });
      }
    });
  } finally {
    await store.close();
  }
}

/** A deterministic pseudo-random sequence (mulberry32), so "many events" tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
