// Regression test from the review of 2026-12-07 (r5): what the comment below describes was a bug, fixed then.
// Review r5: a key that expires (or whose rotation grace ends) while a request's body is still
// uploading. handleChat re-authenticates after the body only when the snapshot changed; expiry
// and grace are times, not configuration changes, so no reload happens and the request is
// admitted, reserved, sent upstream and billed with a key that had expired seconds before.
// A fresh request at the same instant gets 401 key_expired / invalid_api_key.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, createKey, createOrg, type Harness, hello, ok, startHarness, synced } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';
let clock: number | null = null;

beforeAll(async () => {
  h = await startHarness({ proxy: { now: () => clock ?? Date.now() } });
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

/** Sends the headers and 10 bytes of the body, runs `meanwhile`, then the rest; the status line. */
async function slowUpload(key: string, meanwhile: () => Promise<void>): Promise<string> {
  const body = JSON.stringify(hello(M, { max_tokens: 5 }));
  const sock = connect(Number(new URL(h.url).port), '127.0.0.1');
  let answer = '';
  sock.on('data', (d) => (answer += String(d)));
  const closed = new Promise((r) => sock.on('close', r));
  await new Promise((r) => sock.once('connect', r));
  sock.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, 10)}`,
  );
  await new Promise((r) => setTimeout(r, 200));
  await meanwhile();
  sock.end(body.slice(10));
  await closed;
  return answer.split('\r\n')[0]!;
}

describe('time-based key checks vs a slow upload (no reload in between)', () => {
  it('a key that expires before its body completes is not served', async () => {
    const k = (await createKey(h.gw, 'acme', ['--expires-in', '1h'])) as unknown as { key: string; expires_at: string };
    await synced();
    const expiresAt = Date.parse(k.expires_at);
    clock = expiresAt - 1_000;
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    const line = await slowUpload(k.key, async () => {
      clock = expiresAt + 1_000;
      // A fresh request already gets 401 key_expired by now...
      const fresh = await chat(h.url, k.key, hello(M, { max_tokens: 5 }));
      expect(fresh.status).toBe(401);
      expect(fresh.json<{ error: { code: string } }>().error.code).toBe('key_expired');
    });
    clock = null;
    // ...and so must the request whose body was still arriving.
    expect(line).toBe('HTTP/1.1 401 Unauthorized');
  }, 20_000);

  it("a rotated key's old secret whose grace ends before its body completes is not served", async () => {
    const k = await createKey(h.gw, 'acme');
    const rotated = (await ok(h.gw, ['keys', 'rotate', k.id, '--grace', '1h'])) as { key: string; rotation_grace_until: string };
    await synced();
    const graceEnd = Date.parse(rotated.rotation_grace_until);
    clock = graceEnd - 1_000;
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    const line = await slowUpload(k.key, async () => {
      clock = graceEnd + 1_000;
      expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(401);
    });
    clock = null;
    expect(line).toBe('HTTP/1.1 401 Unauthorized');
  }, 20_000);
});
