// A limit added while the key is in use counts every request the store counts against it: the
// requests still in flight when it arrived (admitted without it) and the ones whose usage events
// were still waiting in the sink's buffer. The live counter (GET /v1/usage), the store
// (`gatewayctl limits get`, what a restarted proxy seeds from) and the usage events all agree.
// Before, the new counter started from the store alone: it missed both, so the new cap could be
// overrun by up to a second of traffic plus everything in flight, until a restart.
import Database from 'better-sqlite3';
import { heldSeeder, unwrittenAmount } from '../../src/proxy/limits-wiring.js';
import type { CounterRef } from '../../src/shared/limits/types.js';
import type { Snapshot } from '../../src/shared/snapshot/types.js';
import { randomString } from '../../src/shared/ids.js';
import { MemoryLimitBackend } from '../../src/shared/limits/memory-backend.js';
import { storeSeeder } from '../../src/shared/limits/store-seeder.js';
import { StoreUsageSink } from '../../src/shared/usage/index.js';
import type { UsageRecord } from '../../src/shared/usage/types.js';
import { world } from '../shared/snapshot-fixtures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultReply, type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, type Reply, startHarness, storedEvents } from './harness.js';

let fake: FakeUpstream;
/** Requests whose message says 'hold' wait here until the test lets them go. */
let release: () => void = () => {};
let held = 0;

beforeAll(async () => {
  fake = await startFakeUpstream();
  let open: () => void = () => {};
  let gate = new Promise<void>((r) => {
    open = r;
  });
  release = () => {
    open();
    gate = new Promise<void>((r) => {
      open = r;
    });
  };
  fake.script(async (req) => {
    if (!req.rawBody.includes('hold')) return undefined;
    held++;
    await gate;
    return defaultReply(req.body);
  });
});
afterAll(() => fake?.close());

const setups = [
  { name: 'SQLite store, memory counters', dialect: 'sqlite' as const, redis: false },
  { name: 'Postgres store, Redis counters', dialect: 'postgres' as const, redis: true },
];

interface LimitView {
  scope: string;
  metric: string;
  window: string;
  used: number;
}

const M = 'openai/gpt-4o-mini';
const body = (text: string, stream = false) => hello(M, { max_tokens: 20, stream, messages: [{ role: 'user', content: text }] });
const tokensOf = (r: Reply) => r.json<{ gateway_usage: { total_tokens: number } }>().gateway_usage.total_tokens;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(setups)('a limit added while requests are in flight ($name)', ({ dialect, redis }) => {
  let h: Harness;
  beforeAll(async () => {
    // Usage events wait a minute in the buffer unless something asks for them: the gap this
    // test is about is the events of the last flush interval.
    h = await startHarness({
      dialect,
      proxy: { flushIntervalMs: 60_000, ...(redis ? { redisUrl: REDIS_URL, redisPrefix: `gw-test-${randomString(8)}:` } : {}) },
    });
    await createOrg(h.gw, 'late', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(() => h?.close());

  it('counts the buffered and the in-flight requests, live and in the store alike', async () => {
    const k = await createKey(h.gw, 'late');
    await until('the key', async () => ((await chat(h.url, k.key, body('warm up'))).status === 200 ? true : undefined));
    // Served and settled; their events are in the sink's buffer, not in the store.
    const before = await Promise.all(Array.from({ length: 4 }, (_, i) => chat(h.url, k.key, body(`before ${i}`))));
    expect(before.every((r) => r.status === 200)).toBe(true);
    expect((await storedEvents(h.db, k.id)).length).toBe(0);
    // Admitted (no limit yet) and waiting for the upstream, JSON and streaming.
    held = 0;
    const inFlight = [
      ...Array.from({ length: 3 }, (_, i) => chat(h.url, k.key, body(`hold ${i}`))),
      ...Array.from({ length: 2 }, (_, i) => chat(h.url, k.key, body(`hold stream ${i}`, true))),
    ];
    await until('the held requests at the upstream', async () => (held === 5 ? true : undefined));

    await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--daily-tokens', '1000000', '--rpd', '1000']);
    const limitsOf = async () => (await call(h.url, '/v1/usage', { key: k.key })).json<{ limits: LimitView[] }>().limits.filter((l) => l.scope === `key:${k.id}`);
    await until('the new limits in the proxy', async () => ((await limitsOf()).length === 2 ? true : undefined));

    release();
    const finished = await Promise.all(inFlight);
    expect(finished.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    // Admitted under the new limits.
    const after = await Promise.all(Array.from({ length: 2 }, (_, i) => chat(h.url, k.key, body(`after ${i}`))));
    expect(after.every((r) => r.status === 200)).toBe(true);

    const requests = 1 + before.length + finished.length + after.length;
    // The warm-up, the buffered, the in-flight (streams included) and the later requests.
    const live = await limitsOf();
    const liveTokens = live.find((l) => l.metric === 'tokens')!.used;
    const liveRequests = live.find((l) => l.metric === 'requests')!.used;
    expect(liveRequests).toBe(requests);

    // The store agrees once the buffer is written (a restarted proxy would seed this).
    await h.close();
    const events = await storedEvents(h.db, k.id);
    expect(events).toHaveLength(requests);
    const stored = events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
    expect(liveTokens).toBe(stored);
    const json = [...before, ...finished.slice(0, 3), ...after].reduce((s, r) => s + tokensOf(r), 0);
    expect(stored).toBeGreaterThan(json); // the warm-up and the two streams on top
    const fromStore = (await ok(h.gw, ['limits', 'get', `key:${k.id}`])) as { limits: LimitView[] };
    expect(fromStore.limits.find((l) => l.metric === 'tokens')!.used).toBe(stored);
    expect(fromStore.limits.find((l) => l.metric === 'requests')!.used).toBe(requests);
  });
});

describe('a limit removed and set again', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ dialect: 'sqlite', proxy: { flushIntervalMs: 50 } });
    await createOrg(h.gw, 'readd', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(() => h?.close());

  it('counts the requests served while it was gone (a new counter, seeded from the store)', async () => {
    const k = await createKey(h.gw, 'readd');
    const rpd = async () =>
      (await call(h.url, '/v1/usage', { key: k.key })).json<{ limits: LimitView[] }>().limits.find((l) => l.scope === `key:${k.id}` && l.metric === 'requests');
    await until('the key', async () => ((await chat(h.url, k.key, body('warm'))).status === 200 ? true : undefined));
    await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--rpd', '1000']);
    await until('the limit', async () => ((await rpd()) ? true : undefined));
    expect((await chat(h.url, k.key, body('with the limit'))).status).toBe(200);
    await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--rpd', '0']);
    await until('the limit gone', async () => ((await rpd()) ? undefined : true));
    for (let i = 0; i < 3; i++) expect((await chat(h.url, k.key, body(`gap ${i}`))).status).toBe(200);
    await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--rpd', '1000']);
    await until('the limit back', async () => ((await rpd()) ? true : undefined));
    expect((await rpd())!.used).toBe(5);
    // A new max keeps the counter (and what it counted).
    await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--rpd', '2000']);
    await until('the new max', async () => ((await call(h.url, '/v1/usage', { key: k.key })).text.includes('"limit":2000') ? true : undefined));
    expect((await chat(h.url, k.key, body('after'))).status).toBe(200);
    expect((await rpd())!.used).toBe(6);
    await new Promise((r) => setTimeout(r, 200));
    const fromStore = (await ok(h.gw, ['limits', 'get', `key:${k.id}`])) as { limits: LimitView[] };
    expect(fromStore.limits.find((l) => l.metric === 'requests')!.used).toBe(6);
  });
});

describe('a seed while the store refuses writes but answers reads', () => {
  it('reads what the store holds (an open org is not seeded at 0) and adds what this process has not written yet', async () => {
    const w = await world('sqlite');
    const sink = new StoreUsageSink(w.store, { instance: 'i', flushIntervalMs: 60_000, minBackoffMs: 2_000, maxBackoffMs: 5_000 });
    let n = 0;
    const rec = (): UsageRecord => ({
      requestId: `r${++n}`, ts: Date.now(), orgId: w.orgId, userId: w.userId, keyId: w.child.key.id, ancestorKeyIds: [w.parent.key.id],
      model: 'openai/gpt-4o', provider: 'mock', promptTokens: 40, completionTokens: 60, totalTokens: 100, costMicros: 1, status: 200,
      errorCode: null, latencyMs: 1, ttfbMs: 1, stream: false, usageSource: 'upstream', creditScopes: [],
    });
    const other = new Database(w.store.display);
    try {
      for (let i = 0; i < 10; i++) sink.add(rec());
      await sink.flush(); // 1,000 tokens in the store today
      const raw = storeSeeder(w.store);
      const c = { id: `key:${w.child.key.id}::tokens:day:lim_x`, scopeType: 'key' as const, scopeId: w.child.key.id, model: '', metric: 'tokens' as const, window: 'day' as const, max: 1_500, since: 0 };
      const now = Date.now();
      // Another writer holds the write lock: the sink's next write fails (busy); reads still work.
      w.store.sqlite!.pragma('busy_timeout = 20');
      other.exec('BEGIN EXCLUSIVE');
      sink.add(rec());
      await sink.flush().catch(() => {});
      expect(await raw(c, now)).toBe(1_000);
      const limits = new MemoryLimitBackend({ seeder: heldSeeder(raw, () => sink) });
      // 1,000 in the store + the 100 the store refused, still in the buffer (before: 1,000, and
      // a request of 500 was admitted past the 1,500 cap).
      const adm = await limits.reserve('x', [c], { requests: 1, tokens: 500, cost: 0 }, now, { failureMode: 'open' });
      expect(adm).toMatchObject({ ok: false, code: 'quota_exceeded', used: 1_100 });
      // Counted as the store counts it: the org, this key's parent and credit scopes too; not
      // another key, a model the limit does not cover, or yesterday.
      const held = sink.hold();
      await held.ready.catch(() => {});
      const pending = [...held.unwritten(), { ...rec(), keyId: 'key_other', ancestorKeyIds: [] }, { ...rec(), model: 'meta/llama' }, { ...rec(), ts: now - 86_400_000 }, { ...rec(), creditScopes: [`user:${w.userId}`], costMicros: 7 }];
      held.release();
      const snap = { keys: new Map([[w.child.key.id, { id: w.child.key.id, chain: [w.parent.key.id] }]]) } as unknown as Snapshot;
      const ref = (over: Partial<CounterRef>): CounterRef => ({ ...c, ...over });
      expect(unwrittenAmount(pending, ref({ scopeType: 'org', scopeId: w.orgId }), now, snap)).toBe(400);
      expect(unwrittenAmount(pending, ref({ scopeId: w.parent.key.id }), now, snap)).toBe(300);
      expect(unwrittenAmount(pending, ref({ model: 'openai/*' }), now, snap)).toBe(200);
      expect(unwrittenAmount(pending, ref({ metric: 'requests' }), now, snap)).toBe(3);
      expect(unwrittenAmount(pending, ref({ id: 'credits', metric: 'credits', window: 'total', scopeType: 'user', scopeId: w.userId }), now, snap)).toBe(7);
    } finally {
      if (other.inTransaction) other.exec('COMMIT');
      other.close();
      await sink.close().catch(() => {});
      await w.store.close();
    }
  });
});

describe('a quota reset while the key is busy', () => {
  let h: Harness;
  beforeAll(async () => {
    // A slow poll: the proxy learns of the reset seconds after gatewayctl made it.
    h = await startHarness({ dialect: 'sqlite', proxy: { pollIntervalMs: 3_000, flushIntervalMs: 50 } });
    await createOrg(h.gw, 'resets', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(() => h?.close());

  it('counts the requests admitted after the reset in the new window, live as in the store', async () => {
    const k = await createKey(h.gw, 'resets', ['--daily-tokens', '1000000', '--rpd', '1000']);
    const limitsOf = async () => (await call(h.url, '/v1/usage', { key: k.key })).json<{ limits: LimitView[] }>().limits.filter((l) => l.scope === `key:${k.id}`);
    const requestsUsed = async () => (await limitsOf()).find((l) => l.metric === 'requests')!.used;
    await until('the key', async () => ((await chat(h.url, k.key, body('warm'))).status === 200 ? true : undefined));
    for (let i = 0; i < 3; i++) expect((await chat(h.url, k.key, body(`before ${i}`))).status).toBe(200);
    // Reset, then requests admitted after it but before the proxy has reloaded: some served at
    // once, some still in flight when it reloads. Retried if the reload came in between.
    let quick: Reply[] = [];
    let inFlight: Promise<Reply>[] = [];
    for (let attempt = 0; ; attempt++) {
      const old = await requestsUsed();
      await ok(h.gw, ['quotas', 'reset', k.id, '--daily']);
      held = 0;
      quick = await Promise.all(Array.from({ length: 3 }, (_, i) => chat(h.url, k.key, body(`after reset ${i}`))));
      inFlight = Array.from({ length: 2 }, (_, i) => chat(h.url, k.key, body(`hold after reset ${i}`)));
      await until('the held requests at the upstream', async () => (held === 2 ? true : undefined));
      if ((await requestsUsed()) > old) break; // still the old window: not reloaded yet
      release();
      await Promise.all(inFlight);
      if (attempt === 4) throw new Error('the proxy reloaded before the requests every time');
    }
    // The reset reaches the proxy; the held requests end after that.
    await until('the reset in the proxy', async () => ((await requestsUsed()) < 5 ? true : undefined), 8_000);
    release();
    expect((await Promise.all(inFlight)).map((r) => r.status)).toEqual([200, 200]);
    expect(quick.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await chat(h.url, k.key, body('later'))).status).toBe(200);
    const live = await limitsOf();
    await new Promise((r) => setTimeout(r, 300)); // flushed
    const fromStore = ((await ok(h.gw, ['limits', 'get', `key:${k.id}`])) as { limits: LimitView[] }).limits;
    for (const metric of ['requests', 'tokens']) {
      expect({ metric, used: live.find((l) => l.metric === metric)!.used }).toEqual({ metric, used: fromStore.find((l) => l.metric === metric)!.used });
    }
    expect(live.find((l) => l.metric === 'requests')!.used).toBe(6);
  });
});

describe('a key moved to another user while its requests are in flight', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ dialect: 'sqlite', proxy: { flushIntervalMs: 50 } });
    await createOrg(h.gw, 'movers', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  }, 60_000);
  afterAll(() => h?.close());

  it("charges them to the user they were admitted under (as their events say), and the new user's counters only with the new requests", async () => {
    const alice = (await ok(h.gw, ['users', 'create', 'alice', '--org', 'movers'])) as { id: string };
    const bob = (await ok(h.gw, ['users', 'create', 'bob', '--org', 'movers'])) as { id: string };
    await ok(h.gw, ['limits', 'set', 'user:alice', '--daily-tokens', '100000', '--max-requests', '100000']);
    await ok(h.gw, ['limits', 'set', 'user:bob', '--daily-tokens', '100000', '--max-requests', '100000']);
    const k = await createKey(h.gw, 'movers', ['--user', 'alice']);
    const aliceKey = await createKey(h.gw, 'movers', ['--user', 'alice']);
    await until('the keys', async () => ((await chat(h.url, k.key, body('warm'))).status === 200 ? true : undefined));
    held = 0;
    const inFlight = Array.from({ length: 4 }, (_, i) => chat(h.url, k.key, body(`hold ${i}`)));
    await until('the held requests at the upstream', async () => (held === 4 ? true : undefined));
    await ok(h.gw, ['keys', 'update', k.id, '--user', 'bob']);
    // And a limit alice did not have when they were admitted.
    await ok(h.gw, ['limits', 'set', 'user:alice', '--rpd', '100000']);
    const userLimits = async (key: string, user: string) =>
      (await call(h.url, '/v1/usage', { key })).json<{ limits: LimitView[] }>().limits.filter((l) => l.scope === `user:${user}`);
    await until('the move in the proxy', async () => ((await userLimits(k.key, bob.id)).length > 0 ? true : undefined));
    // A request under the new configuration first (it fills the proxy's counters for the key).
    expect((await chat(h.url, k.key, body('as bob'))).status).toBe(200);
    release();
    expect((await Promise.all(inFlight)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const live = { alice: await userLimits(aliceKey.key, alice.id), bob: await userLimits(k.key, bob.id) };
    await new Promise((r) => setTimeout(r, 300)); // flushed
    for (const [name, user] of [['alice', alice.id], ['bob', bob.id]] as const) {
      const fromStore = ((await ok(h.gw, ['limits', 'get', `user:${user}`])) as { limits: LimitView[] }).limits;
      expect(fromStore.length).toBe(name === 'alice' ? 3 : 2);
      for (const l of fromStore) {
        const mine = live[name].find((x) => x.metric === l.metric && x.window === l.window);
        expect({ name, metric: l.metric, window: l.window, used: mine?.used }).toEqual({ name, metric: l.metric, window: l.window, used: l.used });
      }
    }
    expect(live.bob.find((l) => l.metric === 'requests')!.used).toBe(1);
    expect(live.alice.find((l) => l.metric === 'requests' && l.window === 'day')!.used).toBe(5);
  });
});
