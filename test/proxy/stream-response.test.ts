// The dispatch-handler body of a streamed upstream answer: bytes intact and in order, the
// upstream socket paused while the reader lags (backpressure), a failure after the bytes that
// preceded it, and an early stop or a client abort ending the upstream request.
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientAbort } from '../../src/proxy/client-abort.js';
import { relaySse } from '../../src/proxy/relay-sse.js';
import { requestStream } from '../../src/proxy/upstream/stream-response.js';
import type { UpstreamResponse } from '../../src/proxy/upstream/types.js';

type Route = (res: ServerResponse) => void;
let server: Server;
let pool: Pool;
const routes = new Map<string, Route>();
const closedEarly = new Set<string>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '';
    res.on('close', () => {
      if (!res.writableFinished) closedEarly.add(path);
    });
    req.resume();
    req.on('end', () => routes.get(path)?.(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 2 });
});
afterAll(async () => {
  await pool.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const call = (path: string, signal = new ClientAbort()) => requestStream(pool, { method: 'POST', path, body: '{}' }, signal);

describe('requestStream', () => {
  it('delivers every byte in order and pauses the upstream socket while the reader lags', async () => {
    const chunk = Buffer.alloc(64 * 1024);
    const total = 512; // 32 MiB: more than loopback socket buffers hold, so the sender must wait
    let written = 0;
    const sent = createHash('sha256');
    routes.set('/big', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const more = () => {
        while (i < total) {
          chunk.writeUInt32BE(i, 0);
          sent.update(chunk);
          i++;
          const ok = res.write(Buffer.from(chunk));
          written = i;
          if (!ok) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const up = await call('/big');
    expect(up.status).toBe(200);
    expect(up.headers['content-type']).toBe('text/event-stream');
    await new Promise((r) => setTimeout(r, 300)); // not reading: the queue fills, then the socket pauses
    // Without the pause the whole 32 MiB would sit in the queue by now; with it, the sender is
    // held at what the queue and the loopback socket buffers take.
    expect(written).toBeLessThan(total / 2);
    const got = createHash('sha256');
    let bytes = 0;
    for await (const c of up.body) {
      got.update(c);
      bytes += c.length;
    }
    expect(bytes).toBe(total * chunk.length);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
  });

  it('hands over the bytes that arrived before a broken connection, then the error', async () => {
    routes.set('/broken', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const up = await call('/broken');
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of up.body) seen.push(c.toString());
      })(),
    ).rejects.toThrow();
    expect(seen.join('')).toBe('data: one\n\n');
  });

  it('a reader that stops early ends the upstream request, and the pool serves the next one', async () => {
    routes.set('/endless', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write('data: x\n\n'), 5);
      res.on('close', () => clearInterval(timer));
    });
    routes.set('/short', (res) => res.end('ok'));
    const up = await call('/endless');
    for await (const _ of up.body) break;
    await expect.poll(() => closedEarly.has('/endless'), { timeout: 2_000 }).toBe(true);
    const next = await call('/short');
    let text = '';
    for await (const c of next.body) text += c.toString();
    expect(text).toBe('ok');
  });

  it('a client abort before the headers rejects the call; after them it ends the iteration with an error', async () => {
    routes.set('/slow-head', (res) => setTimeout(() => res.end('late'), 300));
    const early = new ClientAbort();
    const pending = call('/slow-head', early);
    setTimeout(() => early.abort(), 30);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });

    routes.set('/slow-body', (res) => {
      res.writeHead(200);
      res.write('first');
      setTimeout(() => res.end('rest'), 300);
    });
    const late = new ClientAbort();
    const up = await call('/slow-body', late);
    const it = up.body[Symbol.asyncIterator]();
    expect((await it.next()).value?.toString()).toBe('first');
    late.abort();
    await expect(it.next()).rejects.toMatchObject({ name: 'AbortError' });
    await expect.poll(() => closedEarly.has('/slow-body'), { timeout: 2_000 }).toBe(true);
  });

  it('rejects at once when the signal was already aborted', async () => {
    const gone = new ClientAbort();
    gone.abort();
    await expect(call('/short', gone)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('says the body ended only once the upstream finished cleanly and every chunk was taken', async () => {
    routes.set('/two', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      setTimeout(() => res.end('data: 2\n\n'), 20);
    });
    const up = await call('/two');
    const it = up.body[Symbol.asyncIterator]();
    expect((await it.next()).value?.toString()).toBe('data: 1\n\n');
    expect(up.ended?.()).toBe(false);
    expect((await it.next()).value?.toString()).toBe('data: 2\n\n');
    await expect.poll(() => up.ended?.(), { timeout: 1_000 }).toBe(true);
    expect((await it.next()).done).toBe(true);

    routes.set('/broken', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n', () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const broken = await call('/broken');
    const bi = broken.body[Symbol.asyncIterator]();
    await bi.next();
    await expect(bi.next()).rejects.toThrow();
    expect(broken.ended?.()).toBe(false);
  });
});

describe('relaySse', () => {
  /** A response that records what was written, and whether in end(). */
  function recordingResponse() {
    const calls: Array<{ kind: 'write' | 'end'; data: string }> = [];
    const res = {
      destroyed: false,
      writableFinished: false,
      writeHead: () => res,
      write: (d: Uint8Array | string) => {
        calls.push({ kind: 'write', data: Buffer.from(d).toString() });
        return true;
      },
      end: (d?: Uint8Array | string) => {
        calls.push({ kind: 'end', data: d === undefined ? '' : Buffer.from(d).toString() });
        return res;
      },
      once: () => res,
      off: () => res,
    };
    return { res: res as unknown as ServerResponse, calls };
  }

  function upstream(chunks: string[], endedAfterLast: boolean): UpstreamResponse {
    let taken = 0;
    return {
      status: 200,
      headers: {},
      body: (async function* () {
        for (const c of chunks) {
          taken++;
          yield Buffer.from(c);
        }
      })(),
      discard: () => {},
      ended: () => endedAfterLast && taken === chunks.length,
    };
  }

  const opts = () => ({ includeUsage: false, headers: {}, clientGone: () => false, watch: null, writeTimeoutMs: 30_000 });
  const usage = 'data: {"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n';

  it('sends the last chunk with the end of the response when the upstream has already finished', async () => {
    const { res, calls } = recordingResponse();
    const r = await relaySse(res, upstream(['data: {"choices":[{"delta":{"content":"a"}}]}\n\n', `data: {"choices":[{"delta":{"content":"b"}}]}\n\n${usage}data: [DONE]\n\n`], true), opts());
    expect(r.end).toEqual({ kind: 'complete' });
    expect(calls.map((c) => c.kind)).toEqual(['write', 'end']);
    expect(calls[1]!.data).toBe('data: {"choices":[{"delta":{"content":"b"}}]}\n\ndata: [DONE]\n\n');
    expect(r.state.usage).toMatchObject({ promptTokens: 1, completionTokens: 2 });
  });

  it('without that signal writes every chunk, then ends', async () => {
    const { res, calls } = recordingResponse();
    await relaySse(res, upstream(['data: {"choices":[{"delta":{"content":"a"}}]}\n\n', 'data: [DONE]\n\n'], false), opts());
    expect(calls).toEqual([
      { kind: 'write', data: 'data: {"choices":[{"delta":{"content":"a"}}]}\n\n' },
      { kind: 'write', data: 'data: [DONE]\n\n' },
      { kind: 'end', data: '' },
    ]);
  });

  it('a last chunk cut inside an event still goes out before the error event', async () => {
    const { res, calls } = recordingResponse();
    const r = await relaySse(res, upstream(['data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"cho'], true), opts());
    expect(r.end).toEqual({ kind: 'upstream_failed', code: 'upstream_error' });
    const text = calls.map((c) => c.data).join('');
    expect(text.startsWith('data: {"choices":[{"delta":{"content":"a"}}]}\n\n')).toBe(true);
    expect(text).toContain('"code":"upstream_error"');
    expect(calls.at(-1)!.kind).toBe('end');
  });
});
