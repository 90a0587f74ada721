// Browser clients: CORS preflights answered on the API's routes, CORS headers on every answer to a
// request from an allowed origin (errors included, so a browser app can read them), none for
// requests without an Origin (server-side clients), and --cors-origins to narrow or turn it off.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProxy, startProxy } from '../../src/proxy/main.js';
import { chat, createKey, createOrg, freshStore, hello, MASTER_KEY, synced } from './harness.js';

const M = 'mock/gpt-4o-mini';
let db: string;
let key: string;
let narrowKey: string;
const proxies: RunningProxy[] = [];

async function proxyWith(corsOrigins?: string[]): Promise<string> {
  const p = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50, ...(corsOrigins ? { corsOrigins } : {}) });
  proxies.push(p);
  return p.url;
}

async function preflight(url: string, path: string, origin: string, headers = 'authorization, content-type, x-stainless-os') {
  const r = await request(`${url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers } });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

beforeAll(async () => {
  const s = await freshStore('sqlite');
  db = s.db;
  await createOrg(s.gw, 'acme');
  key = (await createKey(s.gw, 'acme')).key;
  narrowKey = (await createKey(s.gw, 'acme', ['--referrer', 'app.example.com'])).key;
}, 60_000);
afterAll(async () => {
  for (const p of proxies) await p.close();
});

describe('CORS, by default for any origin', () => {
  let url: string;
  beforeAll(async () => {
    url = await proxyWith();
    await synced();
  });

  it("answers a preflight with 204, the route's methods and the headers asked for", async () => {
    const r = await preflight(url, '/v1/chat/completions', 'https://app.example.com');
    expect(r.status).toBe(204);
    expect(r.body).toBe('');
    expect(r.headers).toMatchObject({
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'authorization, content-type, x-stainless-os',
      'access-control-max-age': '600',
    });
    expect((await preflight(url, '/v1/models/mock%2Fgpt-4o-mini', 'https://a.example')).headers['access-control-allow-methods']).toBe('GET, HEAD');
    // Not a route of the API: 404 as before; an OPTIONS that is no preflight: 405 as before.
    expect((await preflight(url, '/nope', 'https://a.example')).status).toBe(404);
    expect((await request(`${url}/v1/chat/completions`, { method: 'OPTIONS' })).statusCode).toBe(405);
  });

  it('marks answers to browser requests (errors too) and exposes the gateway headers; server-side requests get none', async () => {
    const ok = await chat(url, key, hello(M, { max_tokens: 5 }), { origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('*');
    expect(String(ok.headers['access-control-expose-headers'])).toContain('x-request-id');
    expect(String(ok.headers['access-control-expose-headers'])).toContain('x-ratelimit-remaining-tokens');
    const bad = await chat(url, 'sk-gw-nope', hello(M), { origin: 'https://app.example.com' });
    expect(bad.status).toBe(401);
    expect(bad.headers['access-control-allow-origin']).toBe('*');
    const plain = await chat(url, key, hello(M, { max_tokens: 5 }));
    expect(plain.status).toBe(200);
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("keeps a key's referrer allow-list: an Origin it does not list is refused (403), readable by the browser", async () => {
    const r = await chat(url, narrowKey, hello(M, { max_tokens: 5 }), { origin: 'https://evil.example' });
    expect(r.status).toBe(403);
    expect(r.json()).toMatchObject({ error: { code: 'referrer_not_allowed' } });
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect((await chat(url, narrowKey, hello(M, { max_tokens: 5 }), { origin: 'https://app.example.com' })).status).toBe(200);
  });
});

describe('CORS narrowed with --cors-origins', () => {
  it('answers only the origins listed, naming the origin and varying on it', async () => {
    const url = await proxyWith(['https://app.example.com']);
    await synced();
    const yes = await preflight(url, '/v1/chat/completions', 'https://app.example.com');
    expect(yes.status).toBe(204);
    expect(yes.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(yes.headers.vary)).toContain('origin');
    const no = await preflight(url, '/v1/chat/completions', 'https://evil.example');
    expect(no.status).toBe(403);
    expect(JSON.parse(no.body)).toMatchObject({ error: { code: 'origin_not_allowed' } });
    expect(no.headers['access-control-allow-origin']).toBeUndefined();
    const answered = await chat(url, key, hello(M, { max_tokens: 5 }), { origin: 'https://evil.example' });
    expect(answered.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("turned off with 'none': preflights are refused and no answer carries CORS headers", async () => {
    const url = await proxyWith([]);
    await synced();
    expect((await preflight(url, '/v1/chat/completions', 'https://app.example.com')).status).toBe(403);
    const r = await chat(url, key, hello(M, { max_tokens: 5 }), { origin: 'https://app.example.com' });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('--cors-origins', () => {
  it("takes '*', 'none' or exact origins, and says what is wrong with anything else", async () => {
    const { parseCli } = await import('../../src/proxy/config.js');
    const { readEnv } = await import('../../src/shared/config.js');
    const parse = (v: string) => parseCli(['--cors-origins', v], readEnv({}));
    const run = (v: string) => {
      const p = parse(v);
      if (p.kind !== 'run') throw new Error('not a run');
      return p;
    };
    expect(run('*').config.corsOrigins).toEqual(['*']);
    expect(run('none').config.corsOrigins).toEqual([]);
    expect(run('https://a.example, http://localhost:3000/').config.corsOrigins).toEqual(['https://a.example', 'http://localhost:3000']);
    expect(run('a.example').problems.join()).toMatch(/--cors-origins must be '\*', 'none' or a comma-separated list of origins/);
    expect(run('https://a.example/path').problems).toHaveLength(1);
  });
});
