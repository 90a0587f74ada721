import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/shared/db/migrate.js';
import { openStore, type Store } from '../../src/shared/db/store.js';
import { KeycloakAdmin } from '../../src/shared/identity/keycloak-admin.js';
import { KeycloakDirectory } from '../../src/shared/identity/keycloak-directory.js';
import { currentConfigVersion } from '../../src/shared/services/audit.js';
import type { ServiceContext } from '../../src/shared/services/context.js';
import { createOrg } from '../../src/shared/services/orgs.js';
import { localDirectory } from '../../src/shared/services/users.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';
import { type Realm, startRealm } from './keycloak-env.js';

let realm: Realm;

beforeAll(async () => {
  realm = await startRealm();
});

afterAll(async () => {
  await realm.kc.close();
});

describe.each(DIALECTS)('Keycloak users mirrored into the %s store', (dialect) => {
  let store: Store;
  let ctx: ServiceContext;
  let dir: KeycloakDirectory;

  beforeAll(async () => {
    store = await openStore(await freshStoreUrl(dialect), { create: true });
    await migrate(store);
    ctx = { store, actor: 'keycloak:root', now: () => new Date(), masterKey: () => Buffer.alloc(32) };
    await createOrg(ctx, 'acme', { provider: 'mock' });
    dir = new KeycloakDirectory(ctx, new KeycloakAdmin({ url: realm.kc.url, realm: realm.kc.realm, clientId: realm.kc.clientId, clientSecret: realm.kc.clientSecret }));
  });

  afterAll(async () => {
    await store.close();
  });

  it('sync creates one row per realm user keyed by its sub, adopting a local user of the same name, and is idempotent', async () => {
    const local = await localDirectory(ctx).create('uma', { org: 'acme' });
    const report = await dir.sync();
    expect(report.created.sort()).toEqual(['bert', 'nora', 'olga', 'root']);
    expect(report.updated).toEqual(['uma']);
    const rows = await store.db.select().from(store.t.users);
    const uma = rows.find((r) => r.username === 'uma');
    expect(uma).toMatchObject({ id: local.id, source: 'keycloak', externalId: realm.kc.user('uma')?.id, roles: ['gateway-user'], groups: ['org:acme'] });
    expect(rows.find((r) => r.username === 'olga')?.orgId).toBe(uma?.orgId);
    const version = await currentConfigVersion(store.db, { store });
    expect(await dir.sync()).toMatchObject({ created: [], updated: [], orphaned: [] });
    expect(await currentConfigVersion(store.db, { store })).toBe(version);
  });
});
