// "Usage since" with a model pattern counts exactly what the proxy's live counters count: a
// case-sensitive prefix, on both dialects (SQLite's LIKE would ignore case), with SQL wildcards
// taken literally; the proxy's seeding and the services read through this one definition.
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/shared/db/store.js';
import { modelMatches } from '../../src/shared/model-patterns.js';
import { usageSince as totalsSince } from '../../src/shared/services/usage-totals.js';
import { usageSince } from '../../src/shared/usage/queries.js';
import { DIALECTS } from '../helpers/stores.js';
import { world } from './snapshot-fixtures.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

const MODELS = ['openai/gpt-4o', 'OpenAI/GPT-4o', 'openai/o1', 'openaiX', 'open_i/x', 'open%i/y', 'anthropic/claude'];

describe.each(DIALECTS)('usage since a model pattern on %s', (dialect) => {
  it('matches models as the proxy does: exact ids, case-sensitive prefixes, wildcards taken literally', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    await w.store.db.insert(w.store.t.usageDaily).values(
      MODELS.map((model, i) => ({
        day: '2030-01-15', orgId: w.orgId, keyId: w.parent.key.id, userId: '', model, requests: 1, errors: 0, promptTokens: 0, completionTokens: 0, totalTokens: 10 ** i, costMicros: 0,
      })),
    );
    const since = Date.UTC(2030, 0, 1);
    for (const pattern of ['openai/*', 'OpenAI/*', 'openai/gpt-4o', 'open_i/*', 'open%*', '*', 'nothing/*']) {
      const expected = MODELS.reduce((sum, m, i) => sum + (modelMatches(pattern, m) ? 10 ** i : 0), 0);
      const seeded = await usageSince(w.store, { keyIds: [w.parent.key.id], model: pattern }, since);
      expect(seeded.tokens, pattern).toBe(expected);
      const services = await totalsSince(w.store.db, { store: w.store }, { keyIds: [w.parent.key.id], model: pattern }, new Date(since));
      expect(services.totalTokens, pattern).toBe(expected);
    }
  });
});
