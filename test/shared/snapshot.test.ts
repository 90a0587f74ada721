import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/shared/db/store.js';
import { addCredits } from '../../src/shared/services/credits.js';
import { revokeKey, rotateKey, updateKey } from '../../src/shared/services/keys.js';
import { applyLimits } from '../../src/shared/services/limits.js';
import { addOrgModels } from '../../src/shared/services/orgs.js';
import {
  authenticate,
  costMicros,
  countersFor,
  ipAllowed,
  loadSnapshot,
  modelAllowed,
  priceFor,
  referrerAllowed,
  type AuthOk,
} from '../../src/shared/snapshot/index.js';
import { DIALECTS } from '../helpers/stores.js';
import { MASTER_KEY, setUserStatus, world } from './snapshot-fixtures.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function ok(r: ReturnType<typeof authenticate>): AuthOk {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
  return r;
}

describe.each(DIALECTS)('snapshot on %s', (dialect) => {
  it('loads orgs with decrypted upstream keys, key chains, limits, prices, credits and resets', async () => {
    const w = await world(dialect, { org: { upstreamKey: 'sk-upstream-secret-123456' } });
    stores.push(w.store);
    await w.store.transaction(async (tx) => {
      await applyLimits(tx, w.ctx, { type: 'org', id: w.orgId }, [{ metric: 'tokens', window: 'day', max: 5000 }]);
      await addCredits(tx, w.ctx, { type: 'org', id: w.orgId }, 3_000_000, 'topup');
      await addCredits(tx, w.ctx, { type: 'org', id: w.orgId }, -500_000, 'usage', 'charge');
      await tx.insert(w.store.t.limitResets).values({ scopeType: 'key', scopeId: w.child.key.id, window: 'day', resetAt: new Date(1_000), actor: 't' });
      await tx.insert(w.store.t.limitResets).values({ scopeType: 'key', scopeId: w.child.key.id, window: 'day', resetAt: new Date(5_000), actor: 't' });
    });
    await w.store.db.insert(w.store.t.models).values({
      id: 'openai/gpt-4o-mini',
      name: 'GPT-4o mini',
      contextLength: 128000,
      promptPrice: 150_000,
      completionPrice: 600_000,
      requestPrice: 0,
      priceOverridden: false,
      source: 'test',
      updatedAt: new Date(),
    });
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    expect(snap.version).toBeGreaterThan(0);
    expect(snap.orgs.get(w.orgId)?.upstreamKey).toBe('sk-upstream-secret-123456');
    expect(snap.keys.get(w.child.key.id)?.chain).toEqual([w.child.key.id, w.parent.key.id]);
    expect(snap.limits.get(`org:${w.orgId}`)?.[0]).toMatchObject({ metric: 'tokens', window: 'day', max: 5000 });
    expect(snap.prices.get('openai/gpt-4o-mini')).toEqual({ prompt: 150_000, completion: 600_000, request: 0 });
    expect(snap.creditBalances.get(`org:${w.orgId}`)).toBe(2_500_000);
    expect(snap.creditGranted.get(`org:${w.orgId}`)).toBe(3_000_000);
    expect(snap.resets.get(`key:${w.child.key.id}:day`)).toBe(5_000);
  });

  it('authenticates a valid key and refuses wrong, revoked, disabled and expired keys and disabled users', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const now = Date.now();
    let snap = await loadSnapshot(w.store, MASTER_KEY);
    const a = ok(authenticate(snap, w.child.plaintext, now));
    expect(a.key.id).toBe(w.child.key.id);
    expect(a.chainKeys.map((k) => k.id)).toEqual([w.parent.key.id]);
    expect(a.user?.username).toBe('alice');
    const wrongSecret = `${w.child.plaintext.slice(0, -1)}${w.child.plaintext.endsWith('A') ? 'B' : 'A'}`;
    expect(authenticate(snap, wrongSecret, now)).toMatchObject({ ok: false, code: 'invalid_api_key' });
    // Once proven, the secret is compared character by character: any one differing refuses.
    const secretAt = w.child.plaintext.length - 43;
    for (const i of [secretAt, secretAt + 21, w.child.plaintext.length - 1]) {
      const c = w.child.plaintext[i] === 'x' ? 'y' : 'x';
      expect(authenticate(snap, `${w.child.plaintext.slice(0, i)}${c}${w.child.plaintext.slice(i + 1)}`, now)).toMatchObject({ ok: false });
    }
    expect(authenticate(snap, `Bearer ${w.child.plaintext}`.slice(7), now)).toMatchObject({ ok: true });
    expect(authenticate(snap, 'sk-not-a-gateway-key', now)).toMatchObject({ ok: false, code: 'invalid_api_key' });
    expect(authenticate(snap, w.child.plaintext.replace('gw_live_', 'gw_test_'), now)).toMatchObject({ ok: false, code: 'invalid_api_key' });
    expect(authenticate(snap, w.child.plaintext, w.child.key.createdAt.getTime() + 365 * 86_400_000)).toMatchObject({ ok: true });

    await updateKey(w.ctx, w.parent.key.id, { expiresAt: new Date(now + 60_000) });
    snap = await loadSnapshot(w.store, MASTER_KEY);
    expect(authenticate(snap, w.child.plaintext, now + 61_000)).toMatchObject({ ok: false, code: 'key_expired' });

    await setUserStatus(w.store, w.userId, 'disabled');
    snap = await loadSnapshot(w.store, MASTER_KEY);
    expect(authenticate(snap, w.child.plaintext, now)).toMatchObject({ ok: false, code: 'key_disabled' });
    await setUserStatus(w.store, w.userId, 'active');

    await updateKey(w.ctx, w.parent.key.id, { status: 'disabled' });
    snap = await loadSnapshot(w.store, MASTER_KEY);
    expect(authenticate(snap, w.child.plaintext, now)).toMatchObject({ ok: false, code: 'key_disabled' });
    expect(authenticate(snap, w.parent.plaintext, now)).toMatchObject({ ok: false, code: 'key_disabled' });

    await revokeKey(w.ctx, w.parent.key.id);
    snap = await loadSnapshot(w.store, MASTER_KEY);
    const denied = authenticate(snap, w.child.plaintext, now);
    expect(denied).toMatchObject({ ok: false, code: 'key_revoked' });
    expect(JSON.stringify(denied)).not.toContain(w.child.plaintext.slice(-43));
  });

  it('accepts the previous secret only during the rotation grace period', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const rotated = await rotateKey(w.ctx, w.child.key.id, 60_000);
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    const now = Date.now();
    expect(authenticate(snap, rotated.plaintext, now)).toMatchObject({ ok: true });
    expect(authenticate(snap, w.child.plaintext, now)).toMatchObject({ ok: true });
    expect(authenticate(snap, w.child.plaintext, now + 120_000)).toMatchObject({ ok: false, code: 'invalid_api_key' });
  });

  it('allows a model only inside org rules ∩ key rules ∩ every ancestor rules, and checks IPs and referrers up the chain', async () => {
    const w = await world(dialect, {
      parent: { models: ['openai/*', 'anthropic/claude-3-haiku'], ip: ['10.0.0.0/8'], referrers: ['*.example.com'] },
      child: { models: ['openai/*'] },
    });
    stores.push(w.store);
    let snap = await loadSnapshot(w.store, MASTER_KEY);
    let a = ok(authenticate(snap, w.child.plaintext, Date.now()));
    expect(modelAllowed(snap, a, 'openai/gpt-4o')).toBe(true);
    expect(modelAllowed(snap, a, 'anthropic/claude-3-haiku')).toBe(false);
    await addOrgModels(w.ctx, w.orgId, ['openai/gpt-4o-mini']);
    snap = await loadSnapshot(w.store, MASTER_KEY);
    a = ok(authenticate(snap, w.child.plaintext, Date.now()));
    expect(modelAllowed(snap, a, 'openai/gpt-4o')).toBe(false);
    expect(modelAllowed(snap, a, 'openai/gpt-4o-mini')).toBe(true);
    expect(ipAllowed(a, '10.1.2.3')).toBe(true);
    expect(ipAllowed(a, '::ffff:10.1.2.3')).toBe(true);
    expect(ipAllowed(a, '192.168.1.1')).toBe(false);
    expect(referrerAllowed(a, 'https://app.example.com/page')).toBe(true);
    expect(referrerAllowed(a, 'https://evil.test/')).toBe(false);
    expect(referrerAllowed(a, undefined)).toBe(false);
  });

  it('lists counters for the key, its ancestors, its user and its org, model-specific ones only for that model, plus credits', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const resetAt = Date.UTC(2030, 0, 15, 12);
    await w.store.transaction(async (tx) => {
      await applyLimits(tx, w.ctx, { type: 'key', id: w.child.key.id }, [{ metric: 'requests', window: 'minute', max: 10 }]);
      await applyLimits(tx, w.ctx, { type: 'key', id: w.parent.key.id }, [{ metric: 'tokens', window: 'day', max: 1000 }]);
      await applyLimits(tx, w.ctx, { type: 'user', id: w.userId }, [{ metric: 'cost', window: 'month', max: 5_000_000 }]);
      await applyLimits(tx, w.ctx, { type: 'org', id: w.orgId }, [
        { metric: 'tokens', window: 'total', max: 1e9 },
        { metric: 'tokens', window: 'day', max: 50, model: 'openai/gpt-4o' },
      ]);
      await addCredits(tx, w.ctx, { type: 'user', id: w.userId }, 1_000_000, null);
      await tx.insert(w.store.t.limitResets).values({ scopeType: 'key', scopeId: w.parent.key.id, window: 'day', resetAt: new Date(resetAt), actor: 't' });
    });
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    const now = Date.UTC(2030, 0, 15, 18);
    const a = ok(authenticate(snap, w.child.plaintext, now));
    // Without the limit row's id that ends a limit's counter id.
    const ids = (model: string) => countersFor(snap, a, model, now).map((c) => (c.metric === 'credits' ? c.id : c.id.slice(0, c.id.lastIndexOf(':'))));
    expect(ids('x/y')).toEqual([
      `key:${w.child.key.id}::requests:minute`,
      `key:${w.parent.key.id}::tokens:day`,
      `user:${w.userId}::cost:month`,
      `org:${w.orgId}::tokens:total`,
      `credits:user:${w.userId}`,
    ]);
    expect(ids('openai/gpt-4o')).toContain(`org:${w.orgId}:openai/gpt-4o:tokens:day`);
    const counters = countersFor(snap, a, 'x/y', now);
    expect(counters.find((c) => c.window === 'day')?.since).toBe(resetAt);
    expect(counters.find((c) => c.window === 'month')?.since).toBe(Date.UTC(2030, 0, 1));
    expect(counters.find((c) => c.metric === 'credits')).toMatchObject({ max: 1_000_000, window: 'total' });
    expect(countersFor(snap, a, 'x/y', Date.UTC(2030, 0, 16, 1)).find((c) => c.window === 'day')?.since).toBe(Date.UTC(2030, 0, 16));
  });

  it('keeps counters per snapshot only while they hold: a reset of a rolling window matters for one hour', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    const resetAt = Date.UTC(2030, 0, 15, 18);
    await w.store.transaction(async (tx) => {
      await applyLimits(tx, w.ctx, { type: 'key', id: w.child.key.id }, [{ metric: 'requests', window: 'minute', max: 10 }]);
      await tx.insert(w.store.t.limitResets).values({ scopeType: 'key', scopeId: w.child.key.id, window: 'minute', resetAt: new Date(resetAt), actor: 't' });
    });
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    const a = ok(authenticate(snap, w.child.plaintext, resetAt));
    const since = (at: number) => countersFor(snap, a, 'x/y', at).find((c) => c.window === 'minute')?.since;
    expect(since(resetAt + 10 * 60_000)).toBe(resetAt);
    expect(countersFor(snap, a, 'x/y', resetAt + 20 * 60_000)).toBe(countersFor(snap, a, 'x/y', resetAt + 10 * 60_000)); // kept
    expect(since(resetAt + 3_600_000 + 1)).toBe(0);
    // A new snapshot (any change in gatewayctl) starts afresh.
    await w.store.transaction((tx) => applyLimits(tx, w.ctx, { type: 'key', id: w.child.key.id }, [{ metric: 'requests', window: 'minute', max: 20 }]));
    const next = await loadSnapshot(w.store, MASTER_KEY);
    const b = ok(authenticate(next, w.child.plaintext, resetAt));
    expect(countersFor(next, b, 'x/y', resetAt + 10 * 60_000).find((c) => c.window === 'minute')?.max).toBe(20);
  });

  it('prices known models exactly, refuses unknown ones unless the org treats them as free', async () => {
    const w = await world(dialect);
    stores.push(w.store);
    await w.store.db.insert(w.store.t.models).values({
      id: 'm/priced',
      name: 'priced',
      contextLength: null,
      promptPrice: 2_500_000,
      completionPrice: 10_000_000,
      requestPrice: 5,
      priceOverridden: false,
      source: 'test',
      updatedAt: new Date(),
    });
    const snap = await loadSnapshot(w.store, MASTER_KEY);
    const org = snap.orgs.get(w.orgId)!;
    const price = priceFor(snap, org, 'm/priced')!;
    expect(costMicros(price, 1000, 500)).toBe(2500 + 5000 + 5);
    expect(costMicros(price, 1, 1)).toBe(3 + 10 + 5);
    expect(priceFor(snap, org, 'm/unknown')).toBeNull();
    expect(priceFor(snap, { ...org, unknownModelPolicy: 'free' }, 'm/unknown')).toEqual({ prompt: 0, completion: 0, request: 0 });
  });
});
