// A limit added while the key is in use counts every request the store counts against it: the
// requests still in flight when it arrived (admitted without it) and the ones whose usage events
// were still waiting in the sink's buffer. The live counter (GET /v1/usage), the store
// (`gatewayctl limits get`, what a restarted proxy seeds from) and the usage events all agree.
// Before, the new counter started from the store alone: it missed both, so the new cap could be
// overrun by up to a second of traffic plus everything in flight, until a restart.
import { randomString } from '../../src/shared/ids.js';
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
