// A request that has to wait for a free upstream connection (every connection of the origin's
// pool busy, here behind a stalled upstream) waits at most --upstream-queue-timeout-ms: then it is
// answered 503 with Retry-After, never reaches the upstream, is billed nothing, releases its
// reservation and is recorded like other upstream failures. Requests that get a connection are
// not watched at all, and the refused request does not cost the pool its connection.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readEnv } from '../../src/shared/config.js';
import { isGatewayError } from '../../src/shared/errors.js';
import { ClientAbort } from '../../src/proxy/client-abort.js';
import { parseCli } from '../../src/proxy/config.js';
import { requestsWatched } from '../../src/proxy/upstream/queue-wait.js';
import { requestWhole } from '../../src/proxy/upstream/whole-response.js';
import { type FakeReply, type FakeUpstream, type SseItem, startFakeUpstream } from '../fakes/upstream.js';
import { call, chat, createKey, createOrg, type Harness, hello, type Reply, startHarness, storedEvents, synced } from './harness.js';

const M = 'openai/gpt-4o-mini';
const QUEUE_MS = 600;

let fake: FakeUpstream;
let h: Harness;
let key: { id: string; key: string };

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { upstream: { connections: 1, queueMs: QUEUE_MS } } });
  await createOrg(h.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  key = await createKey(h.gw, 'up', ['--daily-tokens', '1000000']);
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

/** The next upstream request gets no answer until release() (then `reply`). */
function stallNext(reply: FakeReply = { type: 'default' }): { release: () => void } {
  let release = () => {};
  const gate = new Promise<FakeReply>((resolve) => {
    release = () => resolve(reply);
  });
  fake.enqueue(() => gate);
  return { release: () => release() };
}

/** Tokens the key's daily quota holds right now, reservations of requests in flight included. */
async function tokensUsed(k: { id: string; key: string }, url = h.url): Promise<number> {
  const usage = (await call(url, '/v1/usage', { key: k.key })).json<{ limits: { scope: string; metric: string; used: number }[] }>();
  const limit = usage.limits.find((l) => l.scope === `key:${k.id}` && l.metric === 'tokens');
  if (!limit) throw new Error(`no token limit in ${JSON.stringify(usage)}`);
  return limit.used;
}

async function requestsCounted(status: number, url = h.url): Promise<number> {
  const text = (await call(url, '/metrics')).text;
  const m = new RegExp(`gateway_requests_total\\{route="chat",status="${status}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

function expectQueueTimeout(r: Reply, elapsedMs: number): void {
  expect(r.status).toBe(503);
  expect(r.headers['retry-after']).toBe('1');
  expect(r.headers['content-type']).toBe('application/json');
  expect(r.json()).toEqual({
    error: {
      message: `Every connection to the upstream stayed busy for ${QUEUE_MS} ms, so the request was not sent upstream. Retry shortly.`,
      type: 'service_unavailable_error',
      param: null,
      code: 'unavailable',
    },
  });
  // The sweep runs every 100 ms: answered between the deadline and a little after it.
  expect(elapsedMs).toBeGreaterThanOrEqual(QUEUE_MS - 20);
  expect(elapsedMs).toBeLessThan(QUEUE_MS + 1_500);
}

async function queueTimeoutEvent(k: { id: string }) {
  let found: Awaited<ReturnType<typeof storedEvents>>[number] | undefined;
  await expect
    .poll(async () => {
      found = (await storedEvents(h.db, k.id)).find((e) => e.status === 503);
      return found !== undefined;
    }, { timeout: 5_000 })
    .toBe(true);
  return found!;
}

describe('a request waiting for a free upstream connection', () => {
  it('JSON: gets 503 with Retry-After after --upstream-queue-timeout-ms, billed nothing, its reservation released', async () => {
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '1000000']);
    await synced();
    const stall = stallNext();
    const stalled = chat(h.url, k.key, hello(M));
    await fake.waitForRequests(1);
    const usedBefore = await tokensUsed(k);
    expect(usedBefore).toBeGreaterThan(0); // the stalled request's reservation
    const errorsBefore = await requestsCounted(503);

    const t0 = performance.now();
    const queued = await chat(h.url, k.key, hello(M, { max_tokens: 50 }));
    expectQueueTimeout(queued, performance.now() - t0);
    expect(fake.requests).toHaveLength(1); // it never reached the upstream
    expect(await tokensUsed(k)).toBe(usedBefore);
    const ev = await queueTimeoutEvent(k);
    expect(ev).toMatchObject({ status: 503, errorCode: 'unavailable', promptTokens: 0, completionTokens: 0, costMicros: 0, usageSource: 'none', stream: false });
    expect(await requestsCounted(503)).toBe(errorsBefore + 1);
    await expect.poll(() => requestsWatched(), { timeout: 1_000 }).toBe(0);

    stall.release();
    const first = await stalled;
    expect(first.status).toBe(200);
    const after = await chat(h.url, k.key, hello(M));
    expect(after.status).toBe(200);
    expect(fake.requests).toHaveLength(2);
    // Only what the two answered requests were billed remains on the counter.
    const billed = [first, after].reduce((s, r) => s + r.json<{ gateway_usage: { total_tokens: number } }>().gateway_usage.total_tokens, 0);
    expect(await tokensUsed(k)).toBe(billed);
  });

  it('streaming: behind a stream stalled mid-way, gets the same 503 (as JSON, before any SSE), and the stream goes on', async () => {
    const k = await createKey(h.gw, 'up', ['--daily-tokens', '1000000']);
    await synced();
    const chunk = (text: string, delayMs?: number): SseItem => ({
      data: { id: 'gen-s', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] },
      ...(delayMs ? { delayMs } : {}),
    });
    const usage = { prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 };
    fake.enqueue({ type: 'sse', items: [chunk('one'), chunk(' two', 3_000), { data: { id: 'gen-s', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage } }] });
    const stalled = chat(h.url, k.key, hello(M, { stream: true, max_tokens: 10 }));
    await fake.waitForRequests(1);
    const usedBefore = await tokensUsed(k);

    const t0 = performance.now();
    const queued = await chat(h.url, k.key, hello(M, { stream: true, stream_options: { include_usage: true } }));
    expectQueueTimeout(queued, performance.now() - t0);
    expect(queued.text).not.toContain('data:');
    expect(fake.requests).toHaveLength(1);
    expect(await tokensUsed(k)).toBe(usedBefore);
    const ev = await queueTimeoutEvent(k);
    expect(ev).toMatchObject({ status: 503, errorCode: 'unavailable', promptTokens: 0, completionTokens: 0, costMicros: 0, usageSource: 'none', stream: true });

    const first = await stalled;
    expect(first.status).toBe(200);
    expect(first.text).toContain(' two');
    expect(first.text.trim().endsWith('data: [DONE]')).toBe(true);
    const after = await chat(h.url, k.key, hello(M, { stream: true }));
    expect(after.status).toBe(200);
    expect(after.text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(fake.requests).toHaveLength(2);
  });

  it('is not refused while the wait stays under the timeout', async () => {
    const stall = stallNext();
    const stalled = chat(h.url, key.key, hello(M));
    await fake.waitForRequests(1);
    const queued = chat(h.url, key.key, hello(M));
    await new Promise((r) => setTimeout(r, QUEUE_MS / 3));
    stall.release();
    expect((await stalled).status).toBe(200);
    expect((await queued).status).toBe(200);
    expect(fake.requests).toHaveLength(2);
  });
});

describe('with --upstream-queue-timeout-ms 0', () => {
  let own: Harness;
  let k: { id: string; key: string };
  beforeAll(async () => {
    own = await startHarness({ proxy: { upstream: { connections: 1, queueMs: 0 } } });
    await createOrg(own.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
    k = await createKey(own.gw, 'up');
    await synced();
  }, 60_000);
  afterAll(async () => {
    await own?.close();
  });

  it('a request waits as long as it takes; one whose client leaves while it waits ends at once, 499, never sent upstream', async () => {
    const stall = stallNext();
    const stalled = chat(own.url, k.key, hello(M));
    await fake.waitForRequests(1);
    const waiting = chat(own.url, k.key, hello(M));
    const controller = new AbortController();
    const leaving = request(`${own.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(hello(M)), signal: controller.signal,
    });
    leaving.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await expect
      .poll(async () => (await storedEvents(own.db, k.id)).map((e) => [e.status, e.errorCode, e.promptTokens + e.completionTokens]), { timeout: 3_000 })
      .toEqual([[499, 'aborted', 0]]);
    await new Promise((r) => setTimeout(r, QUEUE_MS + 400));
    expect(fake.requests).toHaveLength(1);
    stall.release();
    expect((await stalled).status).toBe(200);
    expect((await waiting).status).toBe(200);
    expect(fake.requests).toHaveLength(2);
  });
});

describe('requestWhole on a pool with no free connection', () => {
  let server: Server;
  let connections = 0;
  let held: ServerResponse[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/hold') held.push(res);
        else res.end('{}');
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const origin = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const send = (pool: Pool, path: string, queueMs: number) => requestWhole(pool, { method: 'POST', path, body: '{}' }, new ClientAbort(), undefined, queueMs);

  it('fails the waiting request after queueMs and keeps the connection for the next one', async () => {
    const pool = new Pool(origin(), { connections: 1 });
    try {
      held = [];
      connections = 0;
      expect((await send(pool, '/ok', 200)).status).toBe(200);
      const holding = send(pool, '/hold', 200);
      await expect.poll(() => held.length).toBe(1);
      const t0 = performance.now();
      const err = await send(pool, '/ok', 200).then(() => null, (e: unknown) => e);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(180);
      expect(isGatewayError(err) && err.code === 'unavailable' && err.status).toBe(503);
      held[0]!.end('{}');
      expect((await holding).status).toBe(200);
      expect((await send(pool, '/ok', 200)).status).toBe(200);
      // One socket served all of it: the refused request was dropped without closing it.
      expect(connections).toBe(1);
      await expect.poll(() => requestsWatched(), { timeout: 1_000 }).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('does not watch a request that gets a connection', async () => {
    const pool = new Pool(origin(), { connections: 4 });
    try {
      expect((await send(pool, '/ok', 200)).status).toBe(200);
      const next = send(pool, '/ok', 200);
      expect(requestsWatched()).toBe(0);
      expect((await next).status).toBe(200);
    } finally {
      await pool.close();
    }
  });
});

describe('configuration', () => {
  it('reads --upstream-queue-timeout-ms and GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS (default 10000, 0 = no limit)', () => {
    const env = (vars: Record<string, string> = {}) => readEnv({ GATEWAY_MASTER_KEY: 'a'.repeat(64), ...vars });
    const run = (argv: string[], vars?: Record<string, string>) => {
      const p = parseCli(argv, env(vars));
      if (p.kind !== 'run') throw new Error(p.kind);
      return p;
    };
    expect(run([]).config.upstream.queueMs).toBe(10_000);
    expect(run(['--upstream-queue-timeout-ms', '2500']).config.upstream.queueMs).toBe(2_500);
    expect(run([], { GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS: '0' }).config.upstream.queueMs).toBe(0);
    expect(run(['--upstream-queue-timeout-ms', 'soon']).problems.join()).toContain('--upstream-queue-timeout-ms');
  });

  it('waits as long for the upstream headers as between body chunks by default (120 s each: one undici timer per connection), each settable', () => {
    const run = (argv: string[], vars: Record<string, string> = {}) => {
      const p = parseCli(argv, readEnv({ GATEWAY_MASTER_KEY: 'a'.repeat(64), ...vars }));
      if (p.kind !== 'run') throw new Error(p.kind);
      return p.config.upstream;
    };
    expect(run([])).toMatchObject({ headersMs: 120_000, bodyMs: 120_000 });
    expect(run(['--upstream-headers-timeout-ms', '30000'])).toMatchObject({ headersMs: 30_000, bodyMs: 120_000 });
    expect(run([], { GATEWAY_UPSTREAM_BODY_TIMEOUT_MS: '5000' })).toMatchObject({ headersMs: 120_000, bodyMs: 5_000 });
  });
});
