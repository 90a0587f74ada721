// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// a reload that fails because of the configuration (a corrupt row), not because the
// store is down, must keep serving from the last good snapshot, fail-closed orgs included.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness({ proxy: { pollIntervalMs: 100 } });
  await createOrg(h.gw, 'closed-org', ['--provider', 'mock', '--failure-mode', 'closed']);
}, 60_000);
afterAll(() => h?.close());

async function until(check: () => Promise<boolean>, limitMs: number): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a reload that fails on a corrupt row (store reachable)', () => {
  it('keeps serving fail-closed orgs from the last good snapshot', async () => {
    const k = await createKey(h.gw, 'closed-org');
    const other = await createKey(h.gw, 'closed-org', ['--name', 'other']);
    await until(async () => (await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status === 200, 3_000);

    // One corrupt row (invalid JSON in another key's metadata), then a config_version bump, as
    // any gatewayctl change would do: every reload now fails while the store answers fine.
    const db = new Database(h.db);
    db.prepare("update api_keys set metadata = '{oops' where id = ?").run(other.id);
    db.close();
    await ok(h.gw, ['orgs', 'models', 'add', 'closed-org', 'mock/*']);
    await until(async () => (await call(h.url, '/readyz')).json<{ snapshot: { last_error: string | null } }>().snapshot.last_error !== null, 3_000);

    const ready = (await call(h.url, '/readyz')).json<{ store: string }>();
    expect(ready.store).toBe('ok'); // the store is reachable...
    const r = await chat(h.url, k.key, hello(M, { max_tokens: 5 }));
    // ...yet the fail-closed org is refused as if the store were down.
    expect(r.text).not.toContain('cannot reach its store');
    expect(r.status).toBe(200);
  });
});
