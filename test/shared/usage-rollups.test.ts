import { describe, expect, it } from 'vitest';
import { utcDay } from '../../src/shared/limits/windows.js';
import type { UsageRecord } from '../../src/shared/usage/types.js';
import { rollupGroups } from '../../src/shared/usage/write-batch.js';
import { rng } from '../cli/usage-fixtures.js';

/** The grouping as first written: a composite id per record, looked up every time. */
function reference(records: readonly UsageRecord[]) {
  const groups = new Map<string, ReturnType<typeof rollupGroups>[number]>();
  for (const r of records) {
    const day = utcDay(r.ts);
    const id = `${day}\u0000${r.orgId}\u0000${r.keyId}\u0000${r.userId ?? ''}\u0000${r.model}`;
    const g = groups.get(id) ?? { day, orgId: r.orgId, keyId: r.keyId, userId: r.userId ?? '', model: r.model, requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, costMicros: 0 };
    g.requests += 1;
    g.errors += r.status >= 400 ? 1 : 0;
    g.promptTokens += r.promptTokens;
    g.completionTokens += r.completionTokens;
    g.totalTokens += r.totalTokens;
    g.costMicros += r.costMicros;
    groups.set(id, g);
  }
  return [...groups.values()];
}

describe('rollupGroups', () => {
  it('groups by day, org, key, user and model whatever the order of the records (runs, returns to an earlier group, null and empty user)', () => {
    const rand = rng(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const midnight = Date.UTC(2030, 0, 2);
    for (let round = 0; round < 200; round++) {
      const records: UsageRecord[] = [];
      let prev: UsageRecord | null = null;
      const n = 1 + Math.floor(rand() * 60);
      for (let i = 0; i < n; i++) {
        // Mostly runs of the previous record's group, as a busy key makes them.
        const base: UsageRecord | null = prev !== null && rand() < 0.6 ? prev : null;
        const p = Math.floor(rand() * 100);
        const c = Math.floor(rand() * 100);
        const r: UsageRecord = {
          requestId: `r${round}-${i}`,
          ts: base && rand() < 0.8 ? base.ts : midnight + Math.floor((rand() - 0.5) * 4 * 3_600_000),
          orgId: base ? base.orgId : pick(['org_a', 'org_b']),
          userId: base ? base.userId : pick([null, '', 'user_a']),
          keyId: base ? base.keyId : pick(['key_a', 'key_b', 'key_c']),
          ancestorKeyIds: [],
          // A model equal to the previous one's but another string object, now and then.
          model: base ? (rand() < 0.5 ? base.model : `${base.model} `.trimEnd()) : pick(['m/one', 'm/two', 'm\u0000x']),
          provider: 'openai-compatible',
          promptTokens: p,
          completionTokens: c,
          totalTokens: p + c,
          costMicros: Math.floor(rand() * 1000),
          status: pick([200, 200, 429, 502]),
          errorCode: null,
          latencyMs: 1,
          ttfbMs: null,
          stream: false,
          usageSource: 'upstream',
          creditScopes: [],
        };
        records.push(r);
        prev = r;
      }
      expect(rollupGroups(records)).toEqual(reference(records));
    }
  });
});
