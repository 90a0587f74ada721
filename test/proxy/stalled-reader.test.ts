// A client that stops reading: it is dropped after the write timeout, so it cannot keep its
// upstream connection paused and taken from the pool (with one connection per origin, every other
// request would wait behind it until --upstream-queue-timeout-ms refuses it), and what it was sent
// is billed.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { chat, createKey, createOrg, type Harness, hello, startHarness, storedEvents, synced } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let key: { id: string; key: string };
const M = 'openai/gpt-4o-mini';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness({ proxy: { clientWriteTimeoutMs: 300, upstream: { connections: 1 } } });
  await createOrg(h.gw, 'up', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  key = await createKey(h.gw, 'up');
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});

/** Sends a request on a raw socket and never reads the answer. */
function stalledClient(body: unknown): Socket {
  const { port } = new URL(h.url);
  const socket = connect(Number(port), '127.0.0.1');
  const json = JSON.stringify(body);
  socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key.key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
  socket.pause();
  socket.on('error', () => {});
  return socket;
}

const big = (n: number) => ({
  data: { id: 'gen-x', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: 'x'.repeat(n) }, finish_reason: null }] },
});

describe('a client that stops reading', () => {
  it('is dropped after the write timeout, frees the upstream connection, and is billed what it was sent', async () => {
    // 32 MB: more than the kernel buffers of both sockets hold, so the proxy has to wait.
    fake.enqueue({ type: 'sse', items: Array.from({ length: 128 }, () => big(256 * 1024)) });
    const stalled = stalledClient(hello(M, { stream: true }));
    try {
      const [seen] = await fake.waitForRequests(1);
      // The only upstream connection is the stalled stream's; this one gets it once that is dropped.
      const t0 = Date.now();
      const next = await chat(h.url, key.key, hello(M));
      expect(next.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(5_000);
      await expect.poll(() => seen!.clientAborted, { timeout: 3_000 }).toBe(true);
      await expect
        .poll(async () => (await storedEvents(h.db, key.id)).find((e) => e.status === 499), { timeout: 5_000 })
        .toMatchObject({ errorCode: 'aborted', usageSource: 'estimated' });
      const [ev] = (await storedEvents(h.db, key.id)).filter((e) => e.status === 499);
      expect(ev!.completionTokens).toBeGreaterThan(0);
    } finally {
      stalled.destroy();
    }
  });

  it('that asked for a large JSON answer is dropped too', async () => {
    const content = 'y'.repeat(32 * 1024 * 1024);
    fake.enqueue({ type: 'json', body: { id: 'gen-y', object: 'chat.completion', created: 1, model: M, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 } } });
    const before = fake.requests.length;
    const stalled = stalledClient(hello(M));
    try {
      await expect.poll(() => fake.requests.length, { timeout: 3_000 }).toBe(before + 1);
      // Once the upstream has sent all 32 MB (how long that takes depends on the machine's load:
      // a fixed wait from the request failed once in CI), and well past the write timeout after
      // that, the client starts reading: it gets part of the answer, then the end.
      const seen = fake.requests[before]!;
      await expect.poll(() => seen.closedAt !== undefined, { timeout: 15_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, 1_500));
      let got = 0;
      stalled.on('data', (d: Buffer) => {
        got += d.length;
      });
      const closed = new Promise<boolean>((resolve) => {
        stalled.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 5_000);
      });
      stalled.resume();
      expect(await closed).toBe(true);
      expect(got).toBeLessThan(content.length);
    } finally {
      stalled.destroy();
    }
  });
});

describe('a request node cannot parse on a connection with an answer in progress', () => {
  it('after a pipelined request still waiting for its upstream: its answer first, then the 400, then the close', async () => {
    // Before the review of 2026-12-07 (r6) the 400 went out at once, taking the place of the
    // answer still due to the valid request (which was served upstream all the same).
    fake.enqueue({ type: 'default', headerDelayMs: 300 });
    const before = fake.requests.length;
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    const json = JSON.stringify(hello(M));
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key.key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}garbage\r\n\r\n`,
    );
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    const second = answer.indexOf('HTTP/1.1 400 ');
    expect(second).toBeGreaterThan(0);
    expect(answer.slice(0, second)).toContain('"object":"chat.completion"');
    expect(fake.requests.length).toBe(before + 1);
  });

  it('writes the 400 after that answer, never into the middle of it', async () => {
    // Before the review of 2026-12-07 (r6) the connection was closed at once, cutting the stream.
    fake.enqueue({ type: 'sse', items: [big(10), { ...big(10), delayMs: 400 }, { ...big(10), delayMs: 400 }] });
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    const json = JSON.stringify(hello(M, { stream: true }));
    let answer = '';
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    const firstBytes = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key.key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
    await firstBytes;
    socket.write('garbage\r\n\r\n');
    await closed;
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    const second = answer.indexOf('HTTP/1.1 400 ');
    expect(second).toBeGreaterThan(0);
    // The whole stream came first: its three events and its end.
    const stream = answer.slice(0, second);
    expect(stream.split('data: {').length - 1).toBe(3);
    expect(stream).toContain('data: [DONE]');
  });

  it('still answers it with a 400 when the connection is idle', async () => {
    const { port } = new URL(h.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.write('garbage\r\n\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"invalid_request"');
  });
});
