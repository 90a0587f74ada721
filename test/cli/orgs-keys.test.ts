import { describe, expect, it } from 'vitest';
import { cliFor } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';

interface KeyJson {
  id: string;
  key: string;
  org_id: string;
  type: string;
  env: string;
  status: string;
  limits: { scope: string; metric: string; window: string; max: number }[];
}

describe.each(DIALECTS)('gatewayctl orgs and keys on %s', (dialect) => {
  it('init, orgs create and keys create --json print a usable key', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    expect((await gw(['init', '--json'])).code).toBe(0);
    const org = await gw(['orgs', 'create', 'acme', '--provider', 'mock', '--json']);
    expect(org.code).toBe(0);
    expect(org.json()).toMatchObject({ name: 'acme', provider: 'mock', failure_mode: 'closed', upstream_key_hint: null });
    const key = await gw(['keys', 'create', '--org', 'acme', '--json', '--rpm', '10', '--budget', '2.5', '--budget-period', 'day']);
    expect(key.code).toBe(0);
    const k = key.json<KeyJson>();
    expect(k.key).toMatch(new RegExp(`^gw_live_${k.id}_[0-9A-Za-z]{43}$`));
    expect(k.limits).toEqual(
      expect.arrayContaining([
        { scope: `key:${k.id}`, metric: 'requests', window: 'minute', max: 10, model: null },
        { scope: `key:${k.id}`, metric: 'cost', window: 'day', max: 2.5, model: null },
      ]),
    );
    const got = await gw(['keys', 'get', k.id, '--json']);
    expect(got.json()).not.toHaveProperty('key');
  });

  it('exits 3 when the org does not exist and 4 when it already exists', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    await gw(['init']);
    const missing = await gw(['orgs', 'get', 'nope', '--json']);
    expect(missing.code).toBe(3);
    expect(missing.errorJson().error.code).toBe('not_found');
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    const dup = await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    expect(dup.code).toBe(4);
    expect(dup.stderr).toContain("org 'acme' already exists");
  });
});
