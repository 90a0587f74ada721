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

describe('non-interactive rules', () => {
  async function ready() {
    const gw = cliFor(await freshStoreUrl('sqlite'));
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    const key = (await gw(['keys', 'create', '--org', 'acme', '--json'])).json<KeyJson>();
    return { gw, key };
  }

  it('exits 2 naming the missing argument instead of prompting when stdin is not a terminal', async () => {
    const { gw } = await ready();
    const r = await gw(['orgs', 'create']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing org name: pass <name>/);
    const k = await gw(['keys', 'create', '--json']);
    expect(k.code).toBe(2);
    expect(k.errorJson().error).toMatchObject({ code: 'usage_error' });
  });

  it.each([
    ['no terminal', [], {}],
    ['--json on a terminal', ['--json'], { interactive: true }],
    ['CI=true on a terminal', [], { interactive: true, env: { CI: 'true' } }],
  ] as const)('refuses a destructive action without --yes (%s) and changes nothing', async (_label, extra, opts) => {
    const { gw, key } = await ready();
    const r = await gw(['keys', 'revoke', key.id, ...extra], { ...opts, env: { ...('env' in opts ? opts.env : {}) } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('without --yes');
    expect((await gw(['keys', 'get', key.id, '--json'])).json<KeyJson>().status).toBe('active');
    const ok = await gw(['keys', 'revoke', key.id, '--yes', '--json']);
    expect(ok.code).toBe(0);
    expect(ok.json<KeyJson>().status).toBe('revoked');
  });

  it('exits 2 on malformed options and unknown commands', async () => {
    const { gw, key } = await ready();
    expect((await gw(['keys', 'create', '--org', 'acme', '--expires-in', 'soon'])).code).toBe(2);
    expect((await gw(['keys', 'create', '--org', 'acme', '--ip', '10.0.0.0/33'])).code).toBe(2);
    expect((await gw(['keys', 'create', '--org', 'acme', '--env', 'prod'])).code).toBe(2);
    expect((await gw(['keys', 'update', key.id, '--metadata', '[1]'])).code).toBe(2);
    expect((await gw(['keys', 'frobnicate'])).code).toBe(2);
    expect((await gw(['keys', 'get', 'nosuchkey123'])).code).toBe(3);
  });

  it('prints the key once with a warning for people, and a table for keys list', async () => {
    const { gw } = await ready();
    const r = await gw(['keys', 'create', '--org', 'acme', '--daily-tokens', '1000', '--name', 'ci']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/gw_live_[0-9a-z]{12}_[0-9A-Za-z]{43}/);
    expect(r.stdout).toContain('shown only once');
    expect(r.stdout).toContain('tokens/day≤1000');
    const list = await gw(['keys', 'list']);
    expect(list.stdout).toContain('ci');
    expect(list.stdout).not.toMatch(/gw_live_[0-9a-z]{12}_/);
  });

  it('reads the upstream key from an environment variable and shows only its last 4 characters', async () => {
    const { gw } = await ready();
    const r = await gw(['orgs', 'create', 'beta', '--upstream-key-env', 'OR_KEY', '--json'], { env: { OR_KEY: 'sk-or-v1-abcdef987654' } });
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ provider: 'openrouter', upstream_key_hint: '7654' });
    expect(r.stdout).not.toContain('abcdef');
    const stdin = await gw(['orgs', 'update', 'beta', '--upstream-key-stdin', '--json'], { stdin: 'sk-new-key-00001111\n' });
    expect(stdin.json()).toMatchObject({ upstream_key_hint: '1111' });
  });
});

describe('commander errors with --json', () => {
  it('reports a bad option value, an unknown command and a missing verb as one JSON error with exit 2', async () => {
    const gw = cliFor(await freshStoreUrl('sqlite'));
    for (const argv of [['keys', 'create', '--rpm', 'abc', '--json'], ['frobnicate', '--json'], ['keys', '--json']]) {
      const r = await gw(argv);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.errorJson().error.code).toBe('usage_error');
    }
    const human = await gw(['keys', 'create', '--rpm', 'abc']);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain("option '--rpm <n>' argument 'abc' is invalid");
  });
});
