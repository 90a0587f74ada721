import { describe, expect, it } from 'vitest';
import { cliFor } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';

interface BalanceJson {
  scope: string;
  balance_usd: number;
  balance_micros: number;
}

describe.each(DIALECTS)('gatewayctl credits on %s', (dialect) => {
  it('adds credits and keeps an exact balance per org, user and key; balance without scope lists every ledger', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    await gw(['init']);
    const org = (await gw(['orgs', 'create', 'acme', '--provider', 'mock', '--json'])).json<{ id: string }>().id;
    const user = (await gw(['users', 'create', 'alice', '--org', 'acme', '--json'])).json<{ id: string }>().id;
    const key = (await gw(['keys', 'create', '--org', 'acme', '--json'])).json<{ id: string }>().id;

    for (const amount of ['0.1', '0.2', '0.000001']) expect((await gw(['credits', 'add', 'org:acme', amount, '--reason', 'top-up'])).code).toBe(0);
    const bal = await gw(['credits', 'balance', `org:${org}`, '--json']);
    expect(bal.json<BalanceJson>()).toMatchObject({ scope: `org:${org}`, balance_usd: 0.300001, balance_micros: 300_001 });
    expect((await gw(['credits', 'balance', 'org:acme'])).stdout).toContain('$0.300001');

    const added = await gw(['credits', 'add', 'user:alice', '25', '--json']);
    expect(added.json()).toMatchObject({ scope: `user:${user}`, balance_usd: 25, added_usd: 25 });
    const human = await gw(['credits', 'add', `key:${key}`, '3.5']);
    expect(human.stdout).toContain(`added $3.5 to key:${key}`);

    const all = await gw(['credits', 'balance', '--json']);
    expect(all.json<BalanceJson[]>().map((b) => [b.scope, b.balance_usd])).toEqual([
      [`key:${key}`, 3.5],
      [`org:${org}`, 0.300001],
      [`user:${user}`, 25],
    ]);
    expect((await gw(['credits', 'balance'])).stdout).toContain(`user:${user}`);
  });

  it('a negative amount needs --reason and --yes (exit 2 otherwise) and is audited', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    await gw(['credits', 'add', 'org:acme', '10']);
    const noReason = await gw(['credits', 'add', 'org:acme', '-2', '--yes', '--json']);
    expect(noReason.code).toBe(2);
    expect(noReason.errorJson().error.message).toContain('--reason');
    const noYes = await gw(['credits', 'add', 'org:acme', '-2', '--reason', 'refund']);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toContain('--yes');
    const ok = await gw(['credits', 'add', 'org:acme', '-2.25', '--reason', 'refund', '--yes', '--json']);
    expect(ok.code).toBe(0);
    expect(ok.json<BalanceJson>().balance_usd).toBe(7.75);
    const audit = await gw(['audit', 'list', '--action', 'credits.add', '--json']);
    expect(audit.json<{ details: { amount_micros: number; reason: string | null } }[]>()[0]!.details).toEqual({ amount_micros: -2_250_000, reason: 'refund' });
  });

  it('exits 2 on a malformed amount, zero or an unknown scope type, 3 on a scope that does not exist', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    expect((await gw(['credits', 'add', 'org:acme', 'ten'])).code).toBe(2);
    expect((await gw(['credits', 'add', 'org:acme', '0'])).code).toBe(2);
    expect((await gw(['credits', 'add', 'org:acme', '1e3'])).code).toBe(2);
    expect((await gw(['credits', 'add', 'team:acme', '5'])).code).toBe(2);
    expect((await gw(['credits', 'balance', 'wallet'])).code).toBe(2);
    expect((await gw(['credits', 'add', 'org:nope', '5', '--json'])).code).toBe(3);
    expect((await gw(['credits', 'balance', 'key:k000000000000'])).code).toBe(3);
  });
});
