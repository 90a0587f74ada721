// The HTTP edge: slow clients, broken framing, header injection and unknown routes all get a
// clear OpenAI-shaped error with a request id; plus the info and operations routes.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, chat, createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness;
let key: { id: string; key: string };

beforeAll(async () => {
  h = await startHarness({ proxy: { clientHeadersTimeoutMs: 400, clientRequestTimeoutMs: 400 } });
  await createOrg(h.gw, 'acme');
  key = await createKey(h.gw, 'acme', ['--models', 'mock/echo,mock/llama-3-8b', '--daily-tokens', '5000', '--rpm', '100']);
  await synced();
}, 60_000);
afterAll(() => h?.close());

/** Sends raw bytes (optionally in timed parts) and returns everything the server answered. */
function raw(parts: Array<string | { waitMs: number }>): Promise<string> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy());
    (async () => {
      for (const p of parts) {
        if (typeof p === 'string') socket.write(p);
        else await new Promise((r) => setTimeout(r, p.waitMs));
      }
    })();
  });
}

function parse(answer: string): { status: number; headers: string; body: { error: { code: string; message: string } } } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: JSON.parse(body) };
}

describe('bad clients', () => {
  it('answers 408 request_timeout in JSON when the headers arrive too slowly', async () => {
    const r = parse(await raw(['POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n', { waitMs: 1_500 }]));
    expect(r.status).toBe(408);
    expect(r.body.error.code).toBe('request_timeout');
    expect(r.headers).toContain('x-request-id: req_');
  });

  it('answers 408 request_timeout in JSON when the body stalls, billing nothing', async () => {
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`;
    const r = parse(await raw([head, '{"model":"mock/echo",', { waitMs: 1_500 }]));
    expect(r.status).toBe(408);
    expect(r.body.error.code).toBe('request_timeout');
  });

  it('answers 400 to header injection and malformed framing', async () => {
    const injected = parse(await raw(['GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Evil: a\rb: c\r\n\r\n']));
    expect(injected.status).toBe(400);
    expect(injected.body.error.code).toBe('invalid_request');
    const garbage = parse(await raw(['HELLO\r\n\r\n']));
    expect(garbage.status).toBe(400);
  });

  it('answers 400 invalid_request to a body nested too deeply to process, billing nothing', async () => {
    // Built as text: serializing it is what overflows (the test's own JSON.stringify included).
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const withDeep = (body: unknown) => JSON.stringify(body).replace('"DEEP"', deep);
    const k = await createKey(h.gw, 'acme', ['--models', 'mock/echo']);
    await synced();
    // Measured for the prompt bound (tool calls) and hashed by the mock provider (any extra key).
    for (const body of [
      withDeep(hello('mock/echo', { messages: [{ role: 'assistant', content: null, tool_calls: 'DEEP' }, { role: 'user', content: 'hi' }] })),
      withDeep(hello('mock/echo', { messages: [{ role: 'user', content: 'hi', extra: 'DEEP' }] })),
      withDeep(hello('mock/echo', { response_format: 'DEEP' })),
    ]) {
      const r = await chat(h.url, k.key, body);
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: { code: 'invalid_request', type: 'invalid_request_error' } });
    }
    const usage = await call(h.url, '/v1/usage', { key: k.key });
    expect(JSON.stringify(usage.json())).not.toMatch(/"prompt_tokens":[1-9]/);
  });

  it('answers 400 invalid_request to a model name with control characters (a NUL cannot even be stored on Postgres), billing nothing', async () => {
    const k = await createKey(h.gw, 'acme', ['--models', '*']);
    await synced();
    for (const model of ['mock/echo\u0000', 'mock/\techo', 'mock/echo\u007f']) {
      const r = await chat(h.url, k.key, hello(model));
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: { code: 'invalid_request', param: 'model', message: expect.stringContaining('control characters') } });
    }
    // Refused before admission: the key has no charged request to report.
    expect((await call(h.url, '/v1/usage', { key: k.key })).json()).toMatchObject({ last_request: null });
  });

  it('closes the connection after refusing a request whose upload it did not read', async () => {
    for (const [line, auth] of [
      ['POST /v1/chat/completions', 'Bearer gw_nope'],
      ['POST /v1/nowhere', `Bearer ${key.key}`],
    ] as const) {
      const head = `${line} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n`;
      const t0 = Date.now();
      const r = parse(await raw([head, 'x'.repeat(64 * 1024), { waitMs: 200 }, 'x'.repeat(64 * 1024), { waitMs: 200 }]));
      expect([401, 404]).toContain(r.status);
      expect(r.headers).toContain('connection: close');
      // Closed by the server, not by the client's own 5 s timeout.
      expect(Date.now() - t0).toBeLessThan(3_000);
    }
  });

  it('answers in OpenAI shape what node would refuse with an empty body, and 405 with Allow for a wrong method', async () => {
    const noHost = parse(await raw(['GET /v1/models HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n']));
    expect(noHost.status).toBe(400);
    expect(noHost.body.error.code).toBe('invalid_request');
    const expectation = parse(await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}`]));
    expect(expectation.status).toBe(417);
    expect(expectation.body.error.code).toBe('invalid_request');
    const tunnel = parse(await raw(['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n']));
    expect(tunnel.status).toBe(405);
    expect(tunnel.body.error.code).toBe('method_not_allowed');
    const wrong = await call(h.url, '/v1/chat/completions');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.json()).toMatchObject({ error: { code: 'method_not_allowed', type: 'invalid_request_error' } });
    const post = await call(h.url, '/v1/models', { method: 'POST', body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await call(h.url, '/v1/models', { method: 'HEAD', key: key.key });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    // HTTP/1.0 needs no Host.
    expect(parse(await raw(['GET /healthz HTTP/1.0\r\n\r\n'])).status).toBe(200);
  });

  it('answers 400 to a body with broken framing from a valid key (no response has started yet)', async () => {
    for (const framing of [
      'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      'Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}',
    ]) {
      const r = parse(await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: application/json\r\n${framing}`]));
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
    }
  });

  it('answers 404 not_found for an unknown route, with a request id', async () => {
    const r = await call(h.url, '/v2/whatever');
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ error: { message: 'Unknown route: GET /v2/whatever', type: 'invalid_request_error', param: null, code: 'not_found' } });
    expect(r.headers['x-request-id']).toMatch(/^req_/);
  });
});

describe('request ids', () => {
  it('every kind of answer carries exactly one request id, each its own', async () => {
    const own = await createKey(h.gw, 'acme');
    await synced();
    const key = own; // its own key, so the usage figures of the tests below are untouched
    const answers = [
      await chat(h.url, key.key, hello('mock/echo')), // 200 JSON
      await chat(h.url, key.key, hello('mock/echo', { stream: true })), // 200 SSE
      await chat(h.url, 'sk-wrong', hello('mock/echo')), // 401
      await chat(h.url, key.key, { model: 'mock/echo' }), // 400
      await call(h.url, '/v2/whatever'), // 404
      await call(h.url, '/healthz'),
      await call(h.url, '/readyz'),
      await call(h.url, '/metrics'),
      await call(h.url, '/v1/models', { key: key.key }),
      await call(h.url, '/v1/usage', { key: key.key }),
    ];
    const ids = answers.map((r) => r.headers['x-request-id']);
    for (const id of ids) expect(id).toMatch(/^req_[0-9a-f]{32}$/); // a string: an array would mean it was sent twice
    expect(new Set(ids).size).toBe(ids.length);
    // Node answers an unknown Expect itself (417), before any handler: that answer has an id too.
    const expect417 = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: nonsense\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`]);
    expect(expect417.split('\r\n')[0]).toContain(' 417 ');
    expect(expect417).toMatch(/\r\nx-request-id: req_[0-9a-f]{32}\r\n/i);
  });
});

describe('GET /v1/models and GET /v1/usage', () => {
  it('lists only the models this key may use', async () => {
    const r = await call(h.url, '/v1/models', { key: key.key });
    expect(r.status).toBe(200);
    expect(r.json<{ data: { id: string }[] }>().data.map((m) => m.id)).toEqual(['mock/echo', 'mock/llama-3-8b']);
    expect((await call(h.url, '/v1/models')).status).toBe(401);
  });

  it("answers this key's usage and what remains, and a streamed request's charge by id", async () => {
    const s = await chat(h.url, key.key, hello('mock/echo', { stream: true }));
    const requestId = String(s.headers['x-request-id']);
    const usage = await call(h.url, `/v1/usage?request_id=${requestId}`, { key: key.key });
    expect(usage.status).toBe(200);
    const body = usage.json<{ key_id: string; request: { request_id: string; total_tokens: number; usage_source: string }; limits: { metric: string; window: string; used: number; remaining: number }[] }>();
    expect(body.key_id).toBe(key.id);
    expect(body.request).toMatchObject({ request_id: requestId, usage_source: 'upstream' });
    const daily = body.limits.find((l) => l.metric === 'tokens' && l.window === 'day')!;
    expect(daily.used).toBe(body.request.total_tokens);
    expect(daily.remaining).toBe(5000 - daily.used);
    const other = await createKey(h.gw, 'acme');
    await synced();
    expect((await call(h.url, `/v1/usage?request_id=${requestId}`, { key: other.key })).status).toBe(404);
  });
});

describe('operations', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await call(h.url, '/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await call(h.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', store: 'ok', counters: 'memory', draining: false });
  });

  it('exposes requests, tokens, cost, denials, upstream latency and overhead on /metrics', async () => {
    await chat(h.url, key.key, hello('mock/llama-3-8b', { max_tokens: 5 }));
    await chat(h.url, key.key, hello('mock/gpt-4o-mini'));
    const m = await call(h.url, '/metrics');
    expect(m.headers['content-type']).toContain('text/plain');
    for (const line of [
      /gateway_requests_total\{route="chat",status="200"\} \d+/,
      /gateway_tokens_total\{kind="prompt"\} \d+/,
      /gateway_cost_usd_total \d/,
      /gateway_denials_total\{reason="model_not_allowed"\} 1/,
      /gateway_upstream_latency_seconds_count \d+/,
      /gateway_overhead_seconds_bucket\{le="0.001"\} \d+/,
    ]) {
      expect(m.text).toMatch(line);
    }
  });
});
