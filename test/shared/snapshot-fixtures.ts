// A migrated store with an org, a user and a parent/child key pair, built through the real
// services, for the snapshot, limit and usage tests.
import { eq } from 'drizzle-orm';
import { migrate } from '../../src/shared/db/migrate.js';
import { openStore, type Store } from '../../src/shared/db/store.js';
import { newId } from '../../src/shared/ids.js';
import type { ServiceContext } from '../../src/shared/services/context.js';
import { type CreatedKey, createKey, type KeyInput } from '../../src/shared/services/keys.js';
import { createOrg, type OrgInput } from '../../src/shared/services/orgs.js';
import { type DialectName, freshStoreUrl } from '../helpers/stores.js';

export const MASTER_KEY = Buffer.alloc(32, 7);

export async function migratedStore(dialect: DialectName): Promise<Store> {
  const store = await openStore(await freshStoreUrl(dialect), { create: true });
  await migrate(store);
  return store;
}

export function contextFor(store: Store, now: () => Date = () => new Date()): ServiceContext {
  return { store, actor: 'test', now, masterKey: () => MASTER_KEY };
}

export async function addUser(store: Store, orgId: string, username: string, status = 'active'): Promise<string> {
  const id = newId('usr');
  const now = new Date();
  await store.db.insert(store.t.users).values({
    id,
    orgId,
    username,
    email: null,
    status,
    roles: ['gateway-user'],
    groups: [],
    source: 'local',
    externalId: null,
    createdAt: now,
    updatedAt: now,
  });
  return id;
}

export async function setUserStatus(store: Store, id: string, status: string): Promise<void> {
  await store.db.update(store.t.users).set({ status }).where(eq(store.t.users.id, id));
}

export interface World {
  store: Store;
  ctx: ServiceContext;
  orgId: string;
  userId: string;
  parent: CreatedKey;
  child: CreatedKey;
}

export async function world(dialect: DialectName, opts: { org?: OrgInput; parent?: KeyInput; child?: KeyInput } = {}): Promise<World> {
  const store = await migratedStore(dialect);
  const ctx = contextFor(store);
  const org = await createOrg(ctx, 'acme', { provider: 'mock', ...opts.org });
  const userId = await addUser(store, org.id, 'alice');
  const parent = await createKey(ctx, org.id, { type: 'admin', name: 'parent', ...opts.parent });
  const child = await createKey(ctx, org.id, { type: 'user', user: userId, parent: parent.key.id, name: 'child', ...opts.child });
  return { store, ctx, orgId: org.id, userId, parent, child };
}
