// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// keys create refuses a user of another org (--user), keys update --user does not: a key of org A
// can then be moved onto a user of org B, whose user-scoped limits it consumes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced } from './harness.js';

describe('keys update --user across orgs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  it('refuses to bind a key to a user of another org, as keys create does', async () => {
    await createOrg(h.gw, 'orga');
    await createOrg(h.gw, 'orgb');
    const bob = (await ok(h.gw, ['users', 'create', 'bob', '--org', 'orgb'])) as { id: string };
    await ok(h.gw, ['limits', 'set', `user:${bob.id}`, '--rpd', '1']);
    const bobKey = await createKey(h.gw, 'orgb', ['--user', 'bob']);
    // create: refused (user belongs to another org)
    const created = await h.gw(['keys', 'create', '--org', 'orga', '--type', 'org', '--user', 'bob', '--json']);
    expect(created.code).not.toBe(0);
    // update: the same binding must be refused too
    const aKey = await createKey(h.gw, 'orga');
    const updated = await h.gw(['keys', 'update', aKey.id, '--user', 'bob', '--json']);
    await synced();
    // Consequence when accepted: org A's key spends org B user's daily request limit.
    const r1 = await chat(h.url, aKey.key, hello('mock/gpt-4o-mini', { max_tokens: 5 }));
    const r2 = await chat(h.url, bobKey.key, hello('mock/gpt-4o-mini', { max_tokens: 5 }));
    expect({ updateExit: updated.code === 0 ? 0 : 'refused', bobStatus: r2.status, aStatus: r1.status }).toEqual({ updateExit: 'refused', bobStatus: 200, aStatus: 200 });
  });
});
