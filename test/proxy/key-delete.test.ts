// Deleting keys without losing usage: a child key's requests count against its parent's limits
// through the key tree, so a child with recorded usage is revoked, not deleted (deleting it took
// its usage out of the parent's quota at once, and out of a restarted proxy's counters).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced, waitForEvents } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(async () => {
  await h?.close();
});

const dailyUsed = async (keyId: string) => ((await ok(h.gw, ['quotas', 'get', keyId])) as { daily: { used: number } }).daily.used;

describe('keys delete', () => {
  it('refuses a child key with recorded usage (it counts against its parent), and says to revoke it', async () => {
    const parent = await createKey(h.gw, 'acme', ['--daily-tokens', '100000']);
    const child = await createKey(h.gw, 'acme', ['--parent', parent.id]);
    await synced();
    expect((await chat(h.url, child.key, hello('mock/echo', { max_tokens: 20 }))).status).toBe(200);
    await waitForEvents(h.db, child.id, 1);
    const used = await dailyUsed(parent.id);
    expect(used).toBeGreaterThan(0);

    const r = await h.gw(['keys', 'delete', child.id, '--yes', '--json']);
    expect(r.code).toBe(4); // conflict (CLI.md)
    expect(JSON.parse(r.stderr)).toMatchObject({ error: { code: 'conflict' } });
    expect(r.stderr).toContain(`keys revoke ${child.id}`);
    expect(await dailyUsed(parent.id)).toBe(used);

    await ok(h.gw, ['keys', 'revoke', child.id, '--yes']);
    expect(await dailyUsed(parent.id)).toBe(used);
  });

  it('deletes a child key that never served a request, and a root key with usage (its usage stays with its org)', async () => {
    const parent = await createKey(h.gw, 'acme', ['--daily-tokens', '100000']);
    const unused = await createKey(h.gw, 'acme', ['--parent', parent.id]);
    expect((await h.gw(['keys', 'delete', unused.id, '--yes', '--json'])).code).toBe(0);

    await synced();
    expect((await chat(h.url, parent.key, hello('mock/echo', { max_tokens: 20 }))).status).toBe(200);
    await waitForEvents(h.db, parent.id, 1);
    expect((await h.gw(['keys', 'delete', parent.id, '--yes', '--json'])).code).toBe(0);
  });
});
