// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// a key revoked while a request's body is still uploading. Nothing has gone upstream
// yet, so this is a new request for every purpose but one: it was authenticated (and its policy
// and limits read) against the snapshot in force when its headers arrived.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, ok, startHarness } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  h = await startHarness({ proxy: { pollIntervalMs: 100 } });
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

describe('revocation vs a slow upload', () => {
  it('a key revoked 2 s before the body completes is not served', async () => {
    const k = await createKey(h.gw, 'acme');
    await new Promise((r) => setTimeout(r, 300));
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);

    const body = JSON.stringify(hello(M, { max_tokens: 5 }));
    const { port } = new URL(h.url);
    const sock = connect(Number(port), '127.0.0.1');
    let answer = '';
    sock.on('data', (d) => (answer += String(d)));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${k.key}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((r) => setTimeout(r, 200));
    await ok(h.gw, ['keys', 'revoke', k.id, '--yes']);
    await new Promise((r) => setTimeout(r, 2_000));
    // A fresh request already gets 401 by now...
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(401);
    sock.end(body.slice(10));
    await closed;
    // ...but the one whose body was still arriving is served with the revoked key.
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 401 Unauthorized');
  }, 20_000);
});
