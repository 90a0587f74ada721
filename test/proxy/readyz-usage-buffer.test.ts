// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// /readyz must not report "ready" while the proxy refuses every chat request because
// its usage buffer is full (usage writes fail, reads still work: a held SQLite write lock here;
// a read-only or full Postgres alike).
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, chat, createKey, createOrg, type Harness, hello, startHarness } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness({ proxy: { pollIntervalMs: 100, usageBufferMax: 3 } });
  await createOrg(h.gw, 'open-org', ['--provider', 'mock', '--failure-mode', 'open']);
}, 60_000);
afterAll(() => h?.close());

describe('usage buffer full', () => {
  it('is not ready while it refuses every request', async () => {
    const k = await createKey(h.gw, 'open-org');
    await new Promise((r) => setTimeout(r, 300));
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);

    const locker = new Database(h.db);
    locker.exec('BEGIN IMMEDIATE'); // another process holding the write lock (a backup, a shell)
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status);
      expect(statuses.slice(-2)).toEqual([503, 503]); // the buffer is full: every request is refused
      const r = await chat(h.url, k.key, hello(M, { max_tokens: 5 }));
      expect(r.status).toBe(503);

      const ready = await call(h.url, '/readyz');
      // The instance refuses all traffic, yet tells the load balancer to keep sending it.
      expect({ status: ready.status, ready: ready.json<{ ready: boolean }>().ready }).toEqual({ status: 503, ready: false });
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
  }, 30_000);
});
