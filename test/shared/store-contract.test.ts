// One suite, every dialect: the same cases on SQLite and on a real Postgres server.
import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { eq, getTableColumns, getTableName, type Table } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { pgSchema, sqliteSchema } from '../../src/shared/db/schema.js';
import { migrate, migrationStatus } from '../../src/shared/db/migrate.js';
import { openStore, type Store } from '../../src/shared/db/store.js';
import { currentConfigVersion, listAudit } from '../../src/shared/services/audit.js';
import type { ServiceContext } from '../../src/shared/services/context.js';
import { creditBalance } from '../../src/shared/services/credits.js';
import { createKey, getKey, listKeys, revokeKey, rotateKey } from '../../src/shared/services/keys.js';
import { addOrgModels, createOrg, deleteOrg, getOrg, listOrgModels, removeOrgModels, updateOrg } from '../../src/shared/services/orgs.js';
import { hashKey, verifyKeyHash } from '../../src/shared/keys.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';

describe('schema parity', () => {
  it('has the same tables, column names and SQL names in both dialects', () => {
    const names = Object.keys(pgSchema).sort();
    expect(Object.keys(sqliteSchema).sort()).toEqual(names);
    for (const name of names) {
      const p = pgSchema[name as keyof typeof pgSchema] as Table;
      const s = sqliteSchema[name as keyof typeof sqliteSchema] as Table;
      expect(getTableName(s)).toBe(getTableName(p));
      const cols = (t: Table) =>
        Object.entries(getTableColumns(t)).map(([prop, c]) => [prop, c.name, c.notNull, c.primary]);
      expect(cols(s)).toEqual(cols(p));
    }
  });
});

describe.each(DIALECTS)('store contract on %s', (dialect) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  async function setup(): Promise<ServiceContext> {
    store = await openStore(await freshStoreUrl(dialect), { create: true });
    await migrate(store);
    const master = randomBytes(32);
    return { store, actor: 'test:alice', now: () => new Date(), masterKey: () => master };
  }

  it('applies every migration once and reports none pending', async () => {
    const ctx = await setup();
    const status = await migrationStatus(ctx.store);
    expect(status.pending).toEqual([]);
    expect(status.applied.length).toBeGreaterThan(0);
    await migrate(ctx.store);
    expect((await migrationStatus(ctx.store)).applied.length).toBe(status.applied.length);
  });

  it('creates the SQLite file with mode 0600', async () => {
    const ctx = await setup();
    if (ctx.store.dialect === 'sqlite') expect(statSync(ctx.store.display).mode & 0o777).toBe(0o600);
    else expect(ctx.store.display).toMatch(/^postgres/);
  });

  it('rolls a failing transaction back completely', async () => {
    const ctx = await setup();
    await createOrg(ctx, 'acme', { provider: 'mock' });
    await expect(
      ctx.store.transaction(async (tx) => {
        await tx.update(ctx.store.t.orgs).set({ name: 'renamed' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await getOrg(ctx, 'acme')).name).toBe('acme');
  });

  it('bumps config_version and writes an audit row with the actor for every change', async () => {
    const ctx = await setup();
    const v0 = await currentConfigVersion(ctx.store.db, ctx);
    const org = await createOrg(ctx, 'acme', { provider: 'mock' });
    await updateOrg(ctx, 'acme', { failureMode: 'open' });
    await addOrgModels(ctx, org.id, ['openai/*']);
    expect(await currentConfigVersion(ctx.store.db, ctx)).toBe(v0 + 3);
    const audit = await listAudit(ctx, { target: `org:${org.id}` });
    expect(audit.map((a) => a.action)).toEqual(['orgs.models.add', 'orgs.update', 'orgs.create']);
    expect(audit.every((a) => a.actor === 'test:alice')).toBe(true);
  });

  it('seals the upstream key at rest and keeps only its last 4 characters in clear', async () => {
    const ctx = await setup();
    const org = await createOrg(ctx, 'acme', { provider: 'openrouter', upstreamKey: 'sk-or-v1-verysecretvalue9876' });
    const [row] = await ctx.store.db.select().from(ctx.store.t.orgs).where(eq(ctx.store.t.orgs.id, org.id));
    expect(row!.upstreamKeyEnc).not.toContain('verysecret');
    expect(row!.upstreamKeyHint).toBe('9876');
    expect(row!.baseUrl).toBe('https://openrouter.ai/api/v1');
  });

  it('keeps model rules as a set and refuses to remove a rule that is not there, changing nothing', async () => {
    const ctx = await setup();
    await createOrg(ctx, 'acme', { provider: 'mock' });
    await addOrgModels(ctx, 'acme', ['openai/*', 'mock/echo', 'openai/*']);
    await expect(removeOrgModels(ctx, 'acme', ['mock/echo', 'nope/x'])).rejects.toThrow(/no model rule 'nope\/x'/);
    expect(await listOrgModels(ctx, 'acme')).toEqual(['mock/echo', 'openai/*']);
  });

  it('creates, rotates (with grace) and revokes keys, storing only hashes', async () => {
    const ctx = await setup();
    await createOrg(ctx, 'acme', { provider: 'mock' });
    const created = await createKey(ctx, 'acme', { type: 'org', limits: [{ metric: 'tokens', window: 'day', max: 1000 }], creditsMicros: 5_000_000 });
    expect(created.key.keyHash).toBe(hashKey(created.plaintext));
    expect(JSON.stringify(await getKey(ctx, created.key.id))).not.toContain(created.plaintext.split('_')[3]);
    expect((await creditBalance(ctx.store.db, ctx, { type: 'key', id: created.key.id })).balance).toBe(5_000_000);
    const rotated = await rotateKey(ctx, created.key.id, 3_600_000);
    expect(rotated.key.id).toBe(created.key.id);
    expect(verifyKeyHash(rotated.plaintext, rotated.key.keyHash)).toBe(true);
    expect(rotated.key.prevKeyHash).toBe(created.key.keyHash);
    expect(rotated.limits).toHaveLength(1);
    await revokeKey(ctx, created.key.id);
    await expect(revokeKey(ctx, created.key.id)).rejects.toMatchObject({ code: 'conflict' });
    expect((await listKeys(ctx, { status: 'revoked' })).map((k) => k.key.id)).toEqual([created.key.id]);
  });

  it('never lets a child key exceed its parent', async () => {
    const ctx = await setup();
    await createOrg(ctx, 'acme', { provider: 'mock' });
    const parent = await createKey(ctx, 'acme', { type: 'admin', models: ['openai/*'], limits: [{ metric: 'tokens', window: 'day', max: 1000 }] });
    await expect(createKey(ctx, 'acme', { type: 'admin', parent: parent.key.id, models: ['anthropic/claude'] })).rejects.toThrow(/not allowed by parent/);
    await expect(
      createKey(ctx, 'acme', { type: 'admin', parent: parent.key.id, models: ['openai/gpt-4o'], limits: [{ metric: 'tokens', window: 'day', max: 5000 }] }),
    ).rejects.toThrow(/exceeds the parent/);
    const child = await createKey(ctx, 'acme', { type: 'admin', parent: parent.key.id, models: ['openai/gpt-4o'], limits: [{ metric: 'tokens', window: 'day', max: 500 }] });
    expect(child.key.parentId).toBe(parent.key.id);
  });

  it('deletes an org with its keys and model rules', async () => {
    const ctx = await setup();
    await createOrg(ctx, 'acme', { provider: 'mock' });
    await addOrgModels(ctx, 'acme', ['mock/*']);
    await createKey(ctx, 'acme', { type: 'org' });
    await deleteOrg(ctx, 'acme');
    expect(await listKeys(ctx)).toEqual([]);
    await expect(getOrg(ctx, 'acme')).rejects.toMatchObject({ code: 'not_found' });
  });
});
