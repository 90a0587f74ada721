// Contracts of the hot-path shortcuts taken for throughput: they change no byte the client or
// the upstream would otherwise see.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bearerToken } from '../../src/proxy/auth-step.js';
import { createSseRewriter, utf8Length } from '../../src/proxy/sse-usage.js';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { chat, createKey, createOrg, type Harness, startHarness, synced } from './harness.js';

describe('upstream body of a stream on an OpenAI-compatible org', () => {
  let h: Harness;
  let fake: FakeUpstream;
  let key: string;
  beforeAll(async () => {
    fake = await startFakeUpstream();
    h = await startHarness();
    await createOrg(h.gw, 'compat', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
    key = (await createKey(h.gw, 'compat', ['--daily-tokens', '1000000'])).key;
    await synced();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  it("asks for usage by adding stream_options after the opening brace, the client's bytes otherwise unchanged", async () => {
    const raw = '  {"model": "x/y",  "messages":[{"role":"user","content":"héllo \\u00e9"}], "stream" : true, "seed": 1.50}';
    const r = await chat(h.url, key, raw);
    expect(r.status).toBe(200);
    const [seen] = await fake.waitForRequests(1);
    expect(seen!.rawBody).toBe(`  {"stream_options":{"include_usage":true},${raw.slice(3)}`);
    expect(r.text).not.toContain('"usage":{');
  });

  it('re-serializes a body whose stream_options lacks include_usage, with include_usage true', async () => {
    await chat(h.url, key, { model: 'x/y', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: false } });
    const [seen] = await fake.waitForRequests(1);
    expect(seen!.body).toMatchObject({ stream_options: { include_usage: true } });
  });

  it('forwards the body untouched when the client asked for usage itself', async () => {
    const raw = JSON.stringify({ model: 'x/y', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    const r = await chat(h.url, key, raw);
    const [seen] = await fake.waitForRequests(1);
    expect(seen!.rawBody).toBe(raw);
    expect(r.text).toContain('"usage":{');
  });
});

describe('bearerToken', () => {
  it('answers what the Bearer regex answers, for the usual header and every odd one', () => {
    const regex = (h: string) => /^Bearer\s+(\S+)\s*$/i.exec(h)?.[1] ?? null;
    const key = 'gw_live_abcdefghijkl_0123456789ABCDEFGHIJabcdefghij0123456789abc';
    const headers = [
      `Bearer ${key}`, `bearer ${key}`, `BEARER ${key}`, `Bearer  ${key}`, `Bearer\t${key}`, `Bearer ${key} `, `Bearer ${key}\t`, `Bearer ${key} x`,
      `Bearer ${key}\u00a0`, `Bearer \u00a0${key}`, `Bearer ${key}é`, `Bearer ${key}\u2028`, `Bearer ${key}\x7f`, `Bearer ${key}\x00`,
      'Bearer ', 'Bearer', 'Bearer x', `Basic ${key}`, key, '', ' Bearer x', 'Bearerx', 'Bearer\u3000x', 'Bearer x\ufeff',
    ];
    for (let c = 0; c < 0x3000; c++) headers.push(`Bearer a${String.fromCharCode(c)}b`, `Bearer ab${String.fromCharCode(c)}`);
    for (const h of headers) expect(bearerToken(h), JSON.stringify(h)).toBe(regex(h));
  });
});

describe('utf8Length', () => {
  it('equals Buffer.byteLength for ASCII, 2- and 3-byte characters, surrogate pairs and lone surrogates', () => {
    for (const s of ['', 'abc', 'é', 'héllo', '€uro', '日本語', '😀', 'a😀b', '\ud800', 'x\udc00y', '\ud83d', '😀\ud800😀']) {
      expect(utf8Length(s)).toBe(Buffer.byteLength(s));
    }
  });
});

describe('createSseRewriter fast path', () => {
  const event = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":"${content}"}}]}\n\n`;

  it('passes a chunk of whole events without usage through as the same buffer', () => {
    const rw = createSseRewriter({ includeUsage: false });
    const chunk = Buffer.from(event('a') + event('b'));
    expect(rw.push(chunk)).toEqual([chunk]);
    const crlf = Buffer.from('data: {"x":1}\r\n\r\n');
    expect(rw.push(crlf)[0]).toBe(crlf);
  });

  it('still drops the usage chunk after fast-path chunks, and frames a chunk that ends mid-event', () => {
    const rw = createSseRewriter({ includeUsage: false });
    const out: Uint8Array[] = [];
    out.push(...rw.push(Buffer.from(event('a'))));
    out.push(...rw.push(Buffer.from('data: {"choices":[],"us')));
    out.push(...rw.push(Buffer.from('age":{"prompt_tokens":1,"completion_tokens":2}}\n\ndata: [DONE]\n\n')));
    out.push(...rw.end());
    expect(Buffer.concat(out).toString()).toBe(`${event('a')}data: [DONE]\n\n`);
  });
});

describe('readBody', () => {
  it('takes its listeners off the request once the body is read, so nothing of it outlives the read', async () => {
    const { createServer } = await import('node:http');
    const { readBody } = await import('../../src/proxy/http-io.js');
    const counts: number[][] = [];
    const server = createServer((req, res) => {
      const before = ['data', 'end', 'error', 'aborted'].map((e) => req.listenerCount(e));
      readBody(req, 1024, 5_000).then(
        (body) => {
          counts.push(before, ['data', 'end', 'error', 'aborted'].map((e) => req.listenerCount(e)));
          res.end(body);
        },
        (err: Error) => res.end(String(err)),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'héllo' });
      expect(await r.text()).toBe('héllo');
      expect(counts[1]).toEqual(counts[0]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('times out stalled bodies between their deadline and one sweep later, and frees their slots for the next reads', async () => {
    const { createServer } = await import('node:http');
    const { connect } = await import('node:net');
    const { readBody, bodiesBeingRead } = await import('../../src/proxy/http-io.js');
    const outcomes: Array<{ result: string; ms: number }> = [];
    const server = createServer((req, res) => {
      const t0 = performance.now();
      readBody(req, 1024, 300).then(
        (body) => {
          outcomes.push({ result: body.toString(), ms: performance.now() - t0 });
          res.end('ok');
        },
        (err: Error & { code?: string }) => {
          outcomes.push({ result: err.code ?? String(err), ms: performance.now() - t0 });
          res.end('timeout');
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    try {
      // Three clients promise 10 bytes and send 2; one sends its body whole meanwhile.
      const stalled = [0, 1, 2].map(() => {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {}); // reset when the server gives up on them
        s.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab');
        return s;
      });
      // All three reads under way (a busy machine may take more than a few ms to get there).
      for (let waited = 0; bodiesBeingRead() < 3 && waited < 2_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      expect(bodiesBeingRead()).toBe(3);
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'whole' });
      expect(await r.text()).toBe('ok');
      await new Promise((r) => setTimeout(r, 600));
      expect(bodiesBeingRead()).toBe(0);
      const timeouts = outcomes.filter((o) => o.result === 'request_timeout');
      expect(timeouts).toHaveLength(3);
      for (const t of timeouts) {
        expect(t.ms).toBeGreaterThanOrEqual(299);
        expect(t.ms).toBeLessThan(300 + 100 + 100); // one sweep late at most, plus scheduling slack
      }
      // The freed slots are reused: more reads at once than before leave nothing behind.
      const bodies = await Promise.all(Array.from({ length: 5 }, (_, i) => fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: `b${i}` }).then((x) => x.text())));
      expect(bodies).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
      expect(bodiesBeingRead()).toBe(0);
      for (const s of stalled) s.destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
