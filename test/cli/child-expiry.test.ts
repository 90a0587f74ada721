// A child key never outlives its parent: `keys create --parent` refused a later expiry but took
// no expiry at all (the README says "expiry ≤ parent's"); it now inherits the parent's.
import { beforeAll, describe, expect, it } from 'vitest';
import { freshStore, type Gw } from '../proxy/harness.js';

let gw: Gw;
beforeAll(async () => {
  ({ gw } = await freshStore('sqlite'));
  const org = await gw(['orgs', 'create', 'acme', '--provider', 'mock', '--json']);
  if (org.code !== 0) throw new Error(org.stderr);
}, 60_000);

describe('keys create --parent and expiry', () => {
  it("gives a child without an expiry its parent's, and still refuses a later one", async () => {
    const parent = (await gw(['keys', 'create', '--org', 'acme', '--expires-in', '30d', '--json'])).json<{ id: string; expires_at: string }>();
    const child = await gw(['keys', 'create', '--org', 'acme', '--parent', parent.id, '--json']);
    expect(child.code).toBe(0);
    expect(child.json<{ expires_at: string }>().expires_at).toBe(parent.expires_at);
    const later = await gw(['keys', 'create', '--org', 'acme', '--parent', parent.id, '--expires-in', '60d', '--json']);
    expect(later.code).toBe(2);
    const sooner = await gw(['keys', 'create', '--org', 'acme', '--parent', parent.id, '--expires-in', '1d', '--json']);
    expect(Date.parse(sooner.json<{ expires_at: string }>().expires_at)).toBeLessThan(Date.parse(parent.expires_at));
  });

  it('leaves a child of a parent without expiry without one', async () => {
    const parent = (await gw(['keys', 'create', '--org', 'acme', '--json'])).json<{ id: string }>();
    const child = (await gw(['keys', 'create', '--org', 'acme', '--parent', parent.id, '--json'])).json<{ expires_at: string | null }>();
    expect(child.expires_at).toBeNull();
  });
});
