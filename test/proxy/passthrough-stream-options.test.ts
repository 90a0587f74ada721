// Regression test from the review of 2026-12-07 (r2): a streamed body with stream_options was re-serialized (an int64 seed lost its last digits).
// The client's body goes upstream as it came; for an OpenAI-style upstream a stream is only asked
// for its usage (stream_options.include_usage). A stream_options the client sent for another
// reason (include_obfuscation: false, to save bandwidth) makes the gateway re-serialize the whole
// body through JSON.parse/JSON.stringify: an integer past 2^53 (an int64 seed) reaches the
// upstream as a different number.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { chat, createKey, createOrg, type Harness, startHarness, synced } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let key: string;

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness();
  await createOrg(h.gw, 'oa', ['--provider', 'openai', '--base-url', fake.url, '--unknown-models', 'free']);
  key = (await createKey(h.gw, 'oa', ['--daily-tokens', '1000000'])).key;
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

describe('request body to an OpenAI-style upstream', () => {
  it('keeps every field of a streamed request with stream_options exactly as sent (an int64 seed included), adding only include_usage', async () => {
    const raw =
      '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,' +
      '"stream_options":{"include_obfuscation":false},"seed":12345678901234567890,"user":"u-1"}';
    const r = await chat(h.url, key, raw);
    expect(r.status).toBe(200);
    const [seen] = await fake.waitForRequests(1);
    expect(seen!.rawBody).toContain('"seed":12345678901234567890');
    expect(seen!.rawBody).toContain('"include_obfuscation":false');
    expect(seen!.rawBody).toContain('"include_usage":true');
  });

  it('keeps the body as sent when the client already asked for usage (reference: passes today)', async () => {
    const raw =
      '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,' +
      '"stream_options":{"include_usage":true},"seed":12345678901234567890}';
    await chat(h.url, key, raw);
    const [seen] = await fake.waitForRequests(1);
    expect(seen!.rawBody).toBe(raw);
  });
});
