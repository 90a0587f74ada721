import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/shared/db/store.js';
import type { ServiceContext } from '../../src/shared/services/context.js';
import { operatorUser } from '../../src/shared/services/users.js';
import { cliFor } from '../helpers/cli.js';
import { freshStoreUrl } from '../helpers/stores.js';

describe('operatorUser (who `keys mine` means)', () => {
  it('maps os:<name> to the user of that username only, and a signed-in keycloak:<name> to that user', async () => {
    const url = await freshStoreUrl('sqlite');
    const gw = cliFor(url);
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    await gw(['users', 'create', 'alice', '--org', 'acme', '--email', 'alice@example.com']);
    const store = await openStore(url);
    const ctx = (actor: string): ServiceContext => ({ store, actor, now: () => new Date(), masterKey: () => Buffer.alloc(32) });
    try {
      expect((await operatorUser(ctx('os:alice')))?.username).toBe('alice');
      // An OS user name that happens to equal someone's email is not that person.
      expect(await operatorUser(ctx('os:alice@example.com'))).toBeUndefined();
      expect((await operatorUser(ctx('keycloak:alice')))?.username).toBe('alice');
      expect(await operatorUser(ctx('os:bob'))).toBeUndefined();
      expect(await operatorUser(ctx('nobody'))).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
