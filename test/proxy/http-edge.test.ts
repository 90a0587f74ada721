// Regression test from the review of 2026-12-07 (r6): what the comment below describes was a bug, fixed then.
// Two HTTP-edge answers that are wrong for valid or nearly valid input:
//  1. A request in absolute-form (`POST http://host/v1/chat/completions HTTP/1.1`), which RFC 9112
//     §3.2.2 says a server MUST accept, is answered 404 "Unknown route".
//  2. A body cut short by the client's FIN (Content-Length promises more) is answered 400 "The
//     request is not valid HTTP (malformed request line or headers)", which blames the wrong part.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createOrg, type Harness, hello, startHarness, storedEvents, synced } from './harness.js';

let h: Harness;
let key: { id: string; key: string };

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
  key = await createKey(h.gw, 'acme', ['--daily-tokens', '100000']);
  await synced();
}, 60_000);
afterAll(() => h?.close());

function raw(bytes: string, end = false): Promise<string> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy());
    socket.write(bytes);
    if (end) setTimeout(() => socket.end(), 50);
  });
}

function parse(answer: string) {
  const i = answer.indexOf('\r\n\r\n');
  return { status: Number(answer.split(' ')[1]), body: JSON.parse(answer.slice(i + 4)) as { error?: { code: string; message: string } } & Record<string, unknown> };
}

const good = JSON.stringify(hello('mock/echo', { max_tokens: 5 }));

describe('HTTP edge', () => {
  it('serves a request whose target is in absolute-form, as RFC 9112 requires', async () => {
    const r = parse(
      await raw(`POST http://x/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: application/json\r\nContent-Length: ${good.length}\r\nConnection: close\r\n\r\n${good}`),
    );
    // Seen: 404 {"code":"not_found","message":"Unknown route: POST http://x/v1/chat/completions"}.
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: 'chat.completion' });
  });

  it('says the body was cut short, not that the request line or headers are malformed, when the client ends it early', async () => {
    await new Promise((res) => setTimeout(res, 300)); // the earlier test's event written
    const before = (await storedEvents(h.db, key.id)).length;
    const r = parse(await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: application/json\r\nContent-Length: ${good.length}\r\n\r\n${good.slice(0, 10)}`, true));
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe('invalid_request');
    // Seen: "The request is not valid HTTP (malformed request line or headers)." for a request
    // whose request line and headers were fine.
    expect(r.body.error?.message).not.toContain('request line or headers');
    expect(r.body.error?.message).toMatch(/body/i);
    await new Promise((res) => setTimeout(res, 300));
    expect((await storedEvents(h.db, key.id)).length).toBe(before); // nothing billed
  });
});

describe('Expect: 100-continue', () => {
  it('refuses a declared body over the limit with 413 before the upload (no 100 Continue), and serves one within it', async () => {
    const big = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n`);
    expect(big).not.toContain('100 Continue');
    expect(big).toMatch(/^HTTP\/1\.1 413 /);
    expect(big).toContain('"code":"request_too_large"');
    const small = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: application/json\r\nContent-Length: ${good.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n${good}`);
    expect(small).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });
});
