import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/shared/db/store.js';
import { currentConfigVersion } from '../../src/shared/services/audit.js';
import { cliFor } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';

interface UserJson {
  id: string;
  username: string;
  email: string | null;
  org_id: string | null;
  status: string;
  roles: string[];
  groups: string[];
}

async function setup(dialect: (typeof DIALECTS)[number]) {
  const gw = cliFor(await freshStoreUrl(dialect));
  expect((await gw(['init'])).code).toBe(0);
  expect((await gw(['orgs', 'create', 'acme', '--provider', 'mock'])).code).toBe(0);
  return gw;
}

describe.each(DIALECTS)('gatewayctl users on %s', (dialect) => {
  it('creates, lists, gets, updates, disables, enables users and edits roles and groups (JSON and human)', async () => {
    const gw = await setup(dialect);
    const created = await gw(['users', 'create', 'alice', '--org', 'acme', '--email', 'Alice@Example.com', '--json']);
    expect(created.code).toBe(0);
    const alice = created.json<UserJson>();
    expect(alice).toMatchObject({ username: 'alice', email: 'alice@example.com', status: 'active', roles: ['gateway-user'], groups: [] });
    expect(alice.id).toMatch(/^usr_/);

    const human = await gw(['users', 'create', 'bob', '--org', 'acme', '--role', 'org-admin,gateway-user']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('user bob created');

    const list = await gw(['users', 'list', '--json']);
    expect(list.json<UserJson[]>().map((u) => u.username)).toEqual(['alice', 'bob']);
    const table = await gw(['users', 'list', '--role', 'org-admin']);
    expect(table.stdout).toContain('bob');
    expect(table.stdout).not.toContain('alice');

    const byEmail = await gw(['users', 'get', 'alice@example.com', '--json']);
    expect(byEmail.json<UserJson>().id).toBe(alice.id);
    expect((await gw(['users', 'get', 'alice'])).stdout).toMatch(/username\s+alice/);

    const updated = await gw(['users', 'update', 'alice', '--email', 'a@example.org', '--json']);
    expect(updated.json<UserJson>().email).toBe('a@example.org');

    const disabled = await gw(['users', 'disable', 'alice', '--json']);
    expect(disabled.json<UserJson>().status).toBe('disabled');
    expect((await gw(['users', 'disable', 'alice'])).code).toBe(4);
    expect((await gw(['users', 'enable', 'alice'])).stdout).toContain('user alice enabled');

    expect((await gw(['users', 'roles', 'add', 'alice', 'org-admin', '--json'])).json<UserJson>().roles).toEqual(['gateway-user', 'org-admin']);
    expect((await gw(['users', 'roles', 'remove', 'alice', 'gateway-user', '--json'])).json<UserJson>().roles).toEqual(['org-admin']);
    expect((await gw(['users', 'groups', 'add', 'alice', 'research', '--json'])).json<UserJson>().groups).toEqual(['research']);
    expect((await gw(['users', 'groups', 'remove', 'alice', 'research'])).stdout).toContain('removed from group research');

    const audit = await gw(['audit', 'list', '--target', `user:${alice.id}`, '--json']);
    const actions = audit.json<{ action: string; actor: string }[]>().map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['users.create', 'users.update', 'users.disable', 'users.enable', 'users.roles.add']));
    expect(audit.json<{ actor: string }[]>()[0]!.actor).toBe('os:tester');
  });

  it('exits 2 on an unknown role, a bad username or a missing org; 3 on an unknown user; 4 on a duplicate', async () => {
    const gw = await setup(dialect);
    const badRole = await gw(['users', 'create', 'carol', '--org', 'acme', '--role', 'superuser', '--json']);
    expect(badRole.code).toBe(2);
    expect(badRole.errorJson().error.message).toContain('gateway-admin, org-admin, gateway-user');
    expect((await gw(['users', 'create', 'bad name!', '--org', 'acme'])).code).toBe(2);
    expect((await gw(['users', 'create', 'dave', '--email', 'not-an-email', '--org', 'acme'])).code).toBe(2);
    const noOrg = await gw(['users', 'create', 'erin']);
    expect(noOrg.code).toBe(2);
    expect(noOrg.stderr).toContain('--org');
    expect((await gw(['users', 'create', 'root', '--role', 'gateway-admin'])).code).toBe(0);
    expect((await gw(['users', 'create', 'carol', '--org', 'nope'])).code).toBe(3);
    expect((await gw(['users', 'get', 'nobody', '--json'])).code).toBe(3);
    expect((await gw(['users', 'disable', 'nobody'])).code).toBe(3);
    expect((await gw(['users', 'roles', 'add', 'root', 'wizard'])).code).toBe(2);
    expect((await gw(['users', 'create', 'carol', '--org', 'acme'])).code).toBe(0);
    const dup = await gw(['users', 'create', 'carol', '--org', 'acme']);
    expect(dup.code).toBe(4);
    expect(dup.stderr).toContain("user 'carol' already exists");
    expect((await gw(['users', 'update', 'carol'])).code).toBe(2);
  });

  it('disabling a user bumps config_version so the proxy sees it on its next refresh', async () => {
    const url = await freshStoreUrl(dialect);
    const gw = cliFor(url);
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    await gw(['users', 'create', 'alice', '--org', 'acme']);
    const version = async () => {
      const store = await openStore(url);
      try {
        return await currentConfigVersion(store.db, { store });
      } finally {
        await store.close();
      }
    };
    const before = await version();
    expect((await gw(['users', 'disable', 'alice'])).code).toBe(0);
    expect(await version()).toBe(before + 1);
  });

  it('deleting a user with keys: exit 2 without --keys in a script, revoke or reassign with flags', async () => {
    const gw = await setup(dialect);
    await gw(['users', 'create', 'alice', '--org', 'acme']);
    await gw(['users', 'create', 'bob', '--org', 'acme']);
    const k1 = (await gw(['keys', 'create', '--org', 'acme', '--user', 'alice', '--json'])).json<{ id: string }>().id;
    const k2 = (await gw(['keys', 'create', '--org', 'acme', '--user', 'alice', '--json'])).json<{ id: string }>().id;

    const refused = await gw(['users', 'delete', 'alice', '--yes', '--json']);
    expect(refused.code).toBe(2);
    expect(refused.errorJson().error.message).toContain('--keys revoke');
    const noYes = await gw(['users', 'delete', 'alice', '--keys', 'revoke']);
    expect(noYes.code).toBe(2);
    expect((await gw(['users', 'delete', 'alice', '--keys', 'reassign', '--yes'])).code).toBe(2);
    expect((await gw(['users', 'delete', 'alice', '--keys', 'reassign', '--to', 'nobody', '--yes'])).code).toBe(3);
    expect((await gw(['users', 'get', 'alice'])).code).toBe(0);

    const moved = await gw(['users', 'delete', 'alice', '--keys', 'reassign', '--to', 'bob', '--yes', '--json']);
    expect(moved.code).toBe(0);
    expect(moved.json()).toMatchObject({ username: 'alice', deleted: true, keys_reassigned: [k1, k2] });
    expect((await gw(['keys', 'list', '--user', 'bob', '--json'])).json<{ id: string }[]>().map((k) => k.id)).toEqual([k1, k2]);

    const gone = await gw(['users', 'delete', 'bob', '--keys', 'revoke', '--yes']);
    expect(gone.code).toBe(0);
    expect(gone.stdout).toContain('revoked keys');
    const keys = (await gw(['keys', 'list', '--json'])).json<{ id: string; status: string; user_id: string | null }[]>();
    expect(keys.map((k) => [k.status, k.user_id])).toEqual([
      ['revoked', null],
      ['revoked', null],
    ]);
    expect((await gw(['users', 'get', 'bob'])).code).toBe(3);
  });

  it('keys mine lists the keys of the local user named like the OS user, and exits 3 with a hint when there is none', async () => {
    const gw = await setup(dialect);
    const none = await gw(['keys', 'mine']);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain("gatewayctl users create tester");
    await gw(['users', 'create', 'tester', '--org', 'acme']);
    const k = (await gw(['keys', 'create', '--org', 'acme', '--user', 'tester', '--name', 'mine', '--json'])).json<{ id: string }>().id;
    await gw(['keys', 'create', '--org', 'acme', '--name', 'other']);
    const mine = await gw(['keys', 'mine', '--json']);
    expect(mine.code).toBe(0);
    expect(mine.json<{ id: string }[]>().map((x) => x.id)).toEqual([k]);
    const human = await gw(['keys', 'mine']);
    expect(human.stdout).toContain('keys of tester');
    expect(human.stdout).toContain(k);
    expect((await gw(['keys', 'mine'], { env: { USER: 'someone-else' } })).code).toBe(3);
  });
});
