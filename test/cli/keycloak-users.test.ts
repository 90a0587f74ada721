import KcAdminClient from '@keycloak/keycloak-admin-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/shared/db/store.js';
import { currentConfigVersion } from '../../src/shared/services/audit.js';
import { authenticate, loadSnapshot } from '../../src/shared/snapshot/index.js';
import { cliFor } from '../helpers/cli.js';
import { freshStoreUrl } from '../helpers/stores.js';
import { PASSWORDS, type Realm, startRealm } from '../identity/keycloak-env.js';

interface UserJson {
  id: string;
  username: string;
  email: string | null;
  org_id: string | null;
  status: string;
  roles: string[];
  groups: string[];
  source: string;
}

const MASTER = 'a'.repeat(64);
let realm: Realm;
let gw: ReturnType<typeof cliFor>;
let store: Store;
let acmeId: string;
let kcAdmin: KcAdminClient;

async function signIn(user: keyof typeof PASSWORDS): Promise<void> {
  const r = await gw(['login', '--username', user], { stdin: PASSWORDS[user] });
  expect(r.code, r.stderr).toBe(0);
}

const userRow = async (username: string) => (await store.db.select().from(store.t.users)).find((u) => u.username === username);
const auditRows = () => store.db.select().from(store.t.auditLog);

beforeAll(async () => {
  realm = await startRealm();
  realm.kc.addGroup('research');
  const url = await freshStoreUrl('sqlite');
  gw = cliFor(url, realm.env);
  await signIn('root');
  expect((await gw(['init'])).code).toBe(0);
  acmeId = (await gw(['orgs', 'create', 'acme', '--provider', 'mock', '--json'])).json<{ id: string }>().id;
  expect((await gw(['orgs', 'create', 'beta', '--provider', 'mock'])).code).toBe(0);
  store = await openStore(url);
  kcAdmin = new KcAdminClient({ baseUrl: realm.kc.url, realmName: realm.kc.realm });
  await kcAdmin.auth({ grantType: 'client_credentials', clientId: realm.kc.clientId, clientSecret: realm.kc.clientSecret });
});

afterAll(async () => {
  await store?.close();
  await realm?.kc.close();
});

describe('users against Keycloak (signed in as gateway-admin root)', () => {
  it('users create makes the realm user with its roles and org group, and a store row keyed by its sub', async () => {
    await signIn('root');
    const r = await gw(['users', 'create', 'carol', '--org', 'acme', '--email', 'Carol@Example.com', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const carol = r.json<UserJson>();
    expect(carol).toMatchObject({ username: 'carol', email: 'carol@example.com', org_id: acmeId, status: 'active', roles: ['gateway-user'], groups: ['org:acme'], source: 'keycloak' });
    const kcCarol = realm.kc.user('carol');
    expect(kcCarol).toMatchObject({ enabled: true, email: 'carol@example.com', groups: ['org:acme'] });
    expect(kcCarol?.realmRoles).toContain('gateway-user');
    expect((await userRow('carol'))?.externalId).toBe(kcCarol?.id);
    const audit = (await auditRows()).find((a) => a.action === 'users.create' && a.targetId === carol.id);
    expect(audit?.actor).toBe('keycloak:root');
    expect((await gw(['users', 'create', 'carol', '--org', 'acme'])).code).toBe(4);
  });

  it('users get finds a realm user by username, email, store id or Keycloak id; unknown users exit 3', async () => {
    const id = realm.kc.user('carol')!.id;
    for (const ref of ['carol', 'carol@example.com', id, (await userRow('carol'))!.id]) {
      const r = await gw(['users', 'get', ref, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json<UserJson>().username).toBe('carol');
    }
    expect((await gw(['users', 'get', 'nobody'])).code).toBe(3);
  });

  it('users update changes email, roles and org in Keycloak; usernames are read-only there', async () => {
    const r = await gw(['users', 'update', 'carol', '--email', 'c@example.org', '--role', 'org-admin', '--org', 'beta', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json<UserJson>()).toMatchObject({ email: 'c@example.org', roles: ['org-admin'], groups: ['org:beta'] });
    expect(realm.kc.user('carol')).toMatchObject({ email: 'c@example.org', groups: ['org:beta'] });
    expect(realm.kc.user('carol')?.realmRoles).not.toContain('gateway-user');
    const rename = await gw(['users', 'update', 'carol', '--username', 'caroline']);
    expect(rename.code).toBe(2);
    expect(rename.stderr).toContain('read-only');
  });

  it('users roles add|remove and groups add|remove change the realm mappings', async () => {
    expect((await gw(['users', 'roles', 'add', 'carol', 'gateway-user', '--json'])).json<UserJson>().roles).toEqual(['gateway-user', 'org-admin']);
    expect(realm.kc.user('carol')?.realmRoles).toContain('gateway-user');
    expect((await gw(['users', 'roles', 'add', 'carol', 'gateway-user'])).code).toBe(4);
    expect((await gw(['users', 'roles', 'remove', 'carol', 'org-admin', '--json'])).json<UserJson>().roles).toEqual(['gateway-user']);
    expect((await gw(['users', 'roles', 'add', 'carol', 'no-such-role'])).code).toBe(3);
    expect((await gw(['users', 'groups', 'add', 'carol', 'research', '--json'])).json<UserJson>().groups).toEqual(['org:beta', 'research']);
    expect(realm.kc.user('carol')?.groups).toEqual(['org:beta', 'research']);
    expect((await gw(['users', 'groups', 'remove', 'carol', 'research', '--json'])).json<UserJson>().groups).toEqual(['org:beta']);
    expect((await gw(['users', 'groups', 'add', 'carol', 'no-such-group'])).code).toBe(3);
    // An org group moves the user into that org (and is created in the realm on first use).
    const moved = (await gw(['users', 'groups', 'add', 'carol', 'org:acme', '--json'])).json<UserJson>();
    expect(moved.groups).toEqual(['org:acme', 'org:beta']);
  });

  it("users disable disables the realm user and the store row, and the proxy's snapshot refuses the user's keys", async () => {
    const key = (await gw(['keys', 'create', '--org', 'acme', '--user', 'carol', '--json'])).json<{ key: string }>().key;
    const before = await currentConfigVersion(store.db, { store });
    const r = await gw(['users', 'disable', 'carol', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json<UserJson>().status).toBe('disabled');
    expect(realm.kc.user('carol')?.enabled).toBe(false);
    expect(await currentConfigVersion(store.db, { store })).toBeGreaterThan(before);
    const snap = await loadSnapshot(store, Buffer.from(MASTER, 'hex'));
    expect(authenticate(snap, key, Date.now())).toMatchObject({ ok: false, code: 'key_disabled' });
    expect((await gw(['users', 'disable', 'carol'])).code).toBe(4);
    expect((await gw(['users', 'enable', 'carol', '--json'])).json<UserJson>().status).toBe('active');
    expect(realm.kc.user('carol')?.enabled).toBe(true);
    expect(authenticate(await loadSnapshot(store, Buffer.from(MASTER, 'hex')), key, Date.now()).ok).toBe(true);
  });

  it('users sync mirrors users made in the Keycloak console, and disables rows of users disabled or deleted there', async () => {
    realm.kc.addUser({ username: 'dan', password: 'dan-pw', realmRoles: ['gateway-user'], groups: ['org:acme'] });
    realm.kc.addUser({ username: 'erin', password: 'erin-pw', realmRoles: ['gateway-user'], attributes: { gateway_org: ['acme'] } });
    const first = await gw(['users', 'sync', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json<{ created: string[] }>().created).toEqual(expect.arrayContaining(['dan', 'erin', 'olga', 'uma']));
    expect(await userRow('erin')).toMatchObject({ orgId: acmeId, source: 'keycloak' });
    const dan = (await gw(['keys', 'create', '--org', 'acme', '--user', 'dan', '--json'])).json<{ key: string }>().key;
    await kcAdmin.users.update({ id: realm.kc.user('dan')!.id }, { enabled: false });
    await kcAdmin.users.del({ id: realm.kc.user('erin')!.id });
    const second = await gw(['users', 'sync', '--json']);
    expect(second.json()).toMatchObject({ created: [], updated: ['dan'], orphaned: ['erin'] });
    expect((await userRow('dan'))?.status).toBe('disabled');
    expect((await userRow('erin'))?.status).toBe('disabled');
    expect(authenticate(await loadSnapshot(store, Buffer.from(MASTER, 'hex')), dan, Date.now())).toMatchObject({ ok: false, code: 'key_disabled' });
    const third = await gw(['users', 'sync', '--json']);
    expect(third.json()).toMatchObject({ created: [], updated: [], orphaned: [] });
  });

  it('users list shows the realm users from the mirror, filtered by org, status and role', async () => {
    const all = (await gw(['users', 'list', '--json'])).json<UserJson[]>().map((u) => u.username);
    expect(all).toEqual(expect.arrayContaining(['bert', 'carol', 'dan', 'nora', 'olga', 'root', 'uma']));
    const acme = (await gw(['users', 'list', '--org', 'acme', '--status', 'active', '--json'])).json<UserJson[]>().map((u) => u.username);
    expect(acme).toEqual(['carol', 'olga', 'uma']);
    expect((await gw(['users', 'list', '--role', 'org-admin', '--json'])).json<UserJson[]>().map((u) => u.username)).toEqual(['bert', 'olga']);
  });

  it('users delete removes the realm user and the row, revoking its keys when told to', async () => {
    expect((await gw(['users', 'delete', 'carol', '--yes'])).code).toBe(2);
    expect(realm.kc.user('carol')).toBeDefined();
    const r = await gw(['users', 'delete', 'carol', '--keys', 'revoke', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json<{ keys_revoked: string[] }>().keys_revoked).toHaveLength(1);
    expect(realm.kc.user('carol')).toBeUndefined();
    expect(await userRow('carol')).toBeUndefined();
  });
});

describe('who may do what', () => {
  let umaKey: string;
  let otherKey: string;

  beforeAll(async () => {
    await signIn('root');
    await gw(['users', 'sync']);
    umaKey = (await gw(['keys', 'create', '--org', 'acme', '--user', 'uma', '--json'])).json<{ id: string }>().id;
    otherKey = (await gw(['keys', 'create', '--org', 'beta', '--json'])).json<{ id: string }>().id;
  });

  it('org-admin works inside its own org only; elsewhere exits 5 naming gateway-admin', async () => {
    await signIn('olga');
    const users = await gw(['users', 'list', '--json']);
    expect(users.code, users.stderr).toBe(0);
    expect(users.json<UserJson[]>().every((u) => u.org_id === acmeId)).toBe(true);
    const keys = await gw(['keys', 'list', '--json']);
    expect(keys.code, keys.stderr).toBe(0);
    expect(keys.json<{ id: string }[]>().map((k) => k.id)).toContain(umaKey);
    expect(keys.json<{ org_id: string }[]>().every((k) => k.org_id === acmeId)).toBe(true);
    expect((await gw(['keys', 'get', umaKey])).code).toBe(0);
    const created = await gw(['users', 'create', 'fred', '--json']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.json<UserJson>()).toMatchObject({ org_id: acmeId, groups: ['org:acme'] });
    const audit = (await auditRows()).find((a) => a.action === 'users.create' && a.targetId === created.json<UserJson>().id);
    expect(audit?.actor).toBe('keycloak:olga');

    for (const argv of [['keys', 'get', otherKey], ['keys', 'list', '--org', 'beta'], ['users', 'create', 'gil', '--org', 'beta'], ['users', 'disable', 'bert']]) {
      const r = await gw([...argv, '--json']);
      expect(r.code, argv.join(' ')).toBe(5);
      expect(r.errorJson().error.code).toBe('forbidden');
      expect(r.errorJson().error.message).toMatch(/outside olga's org \(acme\).*requires the gateway-admin role/);
    }
    const credits = await gw(['keys', 'create', '--org', 'acme', '--credits', '5', '--json']);
    expect(credits.code).toBe(5);
    expect(credits.errorJson().error.message).toBe('`keys create` requires the gateway-admin role (olga has org-admin)');
    const orgs = await gw(['orgs', 'create', 'gamma', '--json']);
    expect(orgs.code).toBe(5);
    expect(orgs.errorJson().error.message).toBe('`orgs create` requires the gateway-admin role (olga has org-admin)');
    const escalate = await gw(['users', 'roles', 'add', 'fred', 'gateway-admin', '--json']);
    expect(escalate.code).toBe(5);
    expect(escalate.errorJson().error.message).toContain('changing role gateway-admin requires the gateway-admin role');
    expect(realm.kc.user('fred')?.realmRoles).not.toContain('gateway-admin');
  });

  it('gateway-user sees only its own keys and usage', async () => {
    await signIn('uma');
    const mine = await gw(['keys', 'mine', '--json']);
    expect(mine.code, mine.stderr).toBe(0);
    expect(mine.json<{ id: string }[]>().map((k) => k.id)).toEqual([umaKey]);
    expect((await gw(['keys', 'get', umaKey])).code).toBe(0);
    const usage = await gw(['usage', 'summary', '--json']);
    expect(usage.code, usage.stderr).toBe(0);
    for (const argv of [['keys', 'list'], ['keys', 'get', otherKey], ['users', 'list'], ['usage', 'summary', '--org', 'acme'], ['keys', 'revoke', umaKey, '--yes']]) {
      const r = await gw([...argv, '--json']);
      expect(r.code, argv.join(' ')).toBe(5);
      expect(r.errorJson().error.message).toMatch(/requires the (org-admin or gateway-admin|gateway-admin or org-admin) role/);
    }
  });

  it('a user with no gateway role is refused with the role it lacks; nobody signed in is told to sign in', async () => {
    await signIn('nora');
    const r = await gw(['orgs', 'list', '--json']);
    expect(r.code).toBe(5);
    expect(r.errorJson().error.message).toBe('`orgs list` requires the gateway-admin role (nora has no gateway role)');
    expect((await gw(['logout'])).code).toBe(0);
    const out = await gw(['keys', 'list', '--json']);
    expect(out.code).toBe(5);
    expect(out.errorJson().error).toMatchObject({ code: 'unauthenticated' });
    expect(out.errorJson().error.message).toContain('gatewayctl login');
  });
});

describe('Keycloak unreachable or misconfigured during users commands', () => {
  it('exits 6 naming what failed, and writes nothing to the store', async () => {
    await signIn('root');
    const usersBefore = (await store.db.select().from(store.t.users)).length;
    const auditBefore = (await auditRows()).length;
    realm.kc.setDown(true);
    try {
      for (const argv of [['users', 'create', 'hank', '--org', 'acme'], ['users', 'disable', 'uma'], ['users', 'sync'], ['users', 'list']]) {
        const r = await gw([...argv, '--json']);
        expect(r.code, argv.join(' ')).toBe(6);
        expect(r.errorJson().error.code).toBe('identity_unavailable');
        expect(r.errorJson().error.message).toContain(`Keycloak at ${realm.kc.url} is unreachable`);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      realm.kc.setDown(false);
    }
    expect((await store.db.select().from(store.t.users)).length).toBe(usersBefore);
    expect((await auditRows()).length).toBe(auditBefore);
    expect((await userRow('uma'))?.status).toBe('active');
  });

  it('exits 6 naming the client variables when the client secret is wrong', async () => {
    const r = await gw(['users', 'list', '--json'], { env: { KEYCLOAK_CLIENT_SECRET: 'wrong' } });
    expect(r.code).toBe(6);
    expect(r.errorJson().error.message).toContain('check KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET');
  });
});
