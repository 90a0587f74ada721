// Regression test from the review of 2026-12-07 (r5): what the comment below describes was a bug, fixed then:
// a second rotation with grace during an open grace is now refused (exit 4), since one previous
// secret is kept; a rotation without grace still ends every old secret at once.
// Review r5: a grace period promised at one rotation is cut short by the next one. `keys rotate
// --grace 1h` answers "the old secret works until T1" (rotation_grace_until). A second rotation
// within that hour (with its own grace) overwrites prev_key_hash with the second secret, so the
// first secret - which deployments are still being moved off - stops at once, an hour early,
// although neither rotation asked for that (a rotation without --grace is the way to cut it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

const status = async (key: string) => (await chat(h.url, key, hello(M, { max_tokens: 5 }))).status;

describe('rotation grace periods', () => {
  it('a second rotation with grace does not end the grace the first one granted', async () => {
    const k = await createKey(h.gw, 'acme');
    const first = (await ok(h.gw, ['keys', 'rotate', k.id, '--grace', '1h'])) as { key: string; rotation_grace_until: string };
    await synced();
    expect(Date.parse(first.rotation_grace_until)).toBeGreaterThan(Date.now() + 3_500_000);
    expect(await status(k.key)).toBe(200); // the original secret, inside its promised hour
    expect(await status(first.key)).toBe(200);

    const again = await h.gw(['keys', 'rotate', k.id, '--grace', '1h', '--json']);
    expect(again.code).toBe(4);
    expect(again.stderr).toContain(`previous secret is still in its grace period until ${first.rotation_grace_until}`);
    await synced();
    // Nothing changed: both secrets keep working, the original until its promised time.
    expect(await status(first.key)).toBe(200);
    expect(await status(k.key)).toBe(200);

    // A rotation without grace ends every old secret at once, as documented.
    const cut = (await ok(h.gw, ['keys', 'rotate', k.id, '--yes'])) as { key: string };
    await synced();
    expect(await status(cut.key)).toBe(200);
    expect(await status(first.key)).toBe(401);
    expect(await status(k.key)).toBe(401);
  });
});
