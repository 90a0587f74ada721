// Regression test from the review of 2026-12-07 (r6): what the comment below describes was a bug, fixed then.
// Pipelined requests on one keep-alive connection: answers go out in order, and a request that
// is executed (sent upstream, billed) is answered. Two ways this breaks:
//  1. A refusal that closes the connection (a bad key or an unknown route, with the upload left
//     unread) ends the socket, but the request pipelined behind it was already parsed and
//     dispatched: it is sent upstream and billed, and its answer is never written.
//  2. A well-formed request followed by garbage: the raw 400 for the garbage is written at once
//     (no response has *started* on the socket yet), so the client reads it as the answer to its
//     first request, and the socket is ended; the first request is still served and billed.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createOrg, type Harness, hello, startHarness, storedEvents, synced } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

/** Writes `bytes` in one go and returns everything the server sent until it closed. */
function pipeline(bytes: string): Promise<string> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy());
    socket.write(bytes);
  });
}

const post = (auth: string, body: string, path = '/v1/chat/completions') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const good = JSON.stringify(hello('mock/echo', { max_tokens: 5 }));
/** The status codes of the answers in a raw byte stream, in order. */
const statuses = (answer: string) => [...answer.matchAll(/(?:^|\r\n\r\n|})HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
const settle = () => new Promise((r) => setTimeout(r, 600)); // the usage flush runs every 50 ms here

describe('pipelined requests', () => {
  it('a request pipelined behind a refusal that closes the connection is not served and billed without an answer', async () => {
    const key = await createKey(h.gw, 'acme', ['--daily-tokens', '100000']);
    await synced();
    for (const first of [post('gw_live_nope_nope', good), post(key.key, good, '/v1/nowhere')]) {
      const answer = await pipeline(first + post(key.key, good));
      const got = statuses(answer);
      expect(got[0]).toBe(first.includes('nope') ? 401 : 404);
      await settle();
      const billed = (await storedEvents(h.db, key.id)).filter((e) => e.status === 200);
      // Every request the gateway served and billed was answered: as many 200s on the wire as
      // 200 usage events (seen: 0 answered, 1 then 2 billed with 17 tokens each).
      expect(billed.length).toBe(got.filter((s) => s === 200).length);
    }
  });

  it('garbage after a well-formed request does not take that request\'s place in the answers', async () => {
    const key = await createKey(h.gw, 'acme', ['--daily-tokens', '100000']);
    await synced();
    const answer = await pipeline(`${post(key.key, good)}GARBAGE\r\n\r\n`);
    const got = statuses(answer);
    await settle();
    const billed = (await storedEvents(h.db, key.id)).filter((e) => e.status === 200);
    // Answers in order: the chat completion first (then the 400 for the garbage, or a close).
    // Seen: [400] alone, the 400 being read as the completion's answer, while the completion
    // was served upstream and billed (one 200 usage event, 17 tokens) and its answer dropped.
    expect(got[0]).toBe(200);
    expect(billed.length).toBe(got.filter((s) => s === 200).length);
  });
});
