// Regression test from the review of 2026-12-07 (r2): what the comment below describes was a bug, fixed then.
// OpenRouter answers 403 when moderation flags the prompt or a guardrail blocks it (protocols.md
// A.5: "403 Forbidden: permission, guardrail block, or moderation flag", with metadata {reasons,
// flagged_input, provider_name, model_slug}; bad credentials are 401 there). The gateway turns
// every upstream 403 into 502 "rejected the gateway's credentials": the client is told the
// gateway is broken instead of that its input was flagged, and the SDK (which retries >= 500)
// sends the flagged prompt upstream three times.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { createKey, createOrg, type Harness, hello, startHarness, synced } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let key: string;
const M = 'openai/gpt-4o';

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness();
  await createOrg(h.gw, 'router', ['--provider', 'openrouter', '--base-url', fake.url, '--unknown-models', 'free']);
  key = (await createKey(h.gw, 'router', ['--daily-tokens', '1000000'])).key;
  await synced();
}, 60_000);
afterAll(async () => {
  await h?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

async function sdkError(): Promise<InstanceType<typeof OpenAI.APIError>> {
  // Default SDK settings (maxRetries 2), as an application would use it.
  const client = new OpenAI({ apiKey: key, baseURL: `${h.url}/v1` });
  const err = await client.chat.completions.create({ ...hello(M), max_tokens: 5 }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as InstanceType<typeof OpenAI.APIError>;
}

describe("OpenRouter's 403 for flagged or blocked input", () => {
  it('reaches the SDK as a client error naming the flag, and is sent upstream once (moderation)', async () => {
    const message = 'openai/gpt-4o requires moderation on OpenAI. Your input was flagged for "violence".';
    const metadata = { reasons: ['violence'], flagged_input: 'how do I ...', provider_name: 'OpenAI', model_slug: 'openai/gpt-4o' };
    fake.script(() => ({ type: 'error', status: 403, message, metadata }));
    const err = await sdkError();
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
    expect(err.message).toContain('flagged for "violence"');
    expect(err).toMatchObject({ status: 403, code: 'content_policy_violation', type: 'invalid_request_error' });
    expect(fake.requests).toHaveLength(1);
  });

  it('reaches the SDK as a client error naming the block, and is sent upstream once (guardrail)', async () => {
    fake.script(() => ({ type: 'error', status: 403, message: 'Request blocked: prompt injection patterns detected', metadata: { patterns: ['ignore previous instructions'] } }));
    const err = await sdkError();
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
    expect(err.message).toContain('Request blocked: prompt injection patterns detected');
    expect(fake.requests).toHaveLength(1);
  });

  it('a 403 without any sign of a content block still means bad upstream credentials: 502, its message hidden', async () => {
    fake.script(() => ({ type: 'error', status: 403, message: 'Key sk-or-v1-secret is disabled' }));
    const err = await sdkError();
    expect(err.status).toBe(502);
    expect(err.message).not.toContain('sk-or-v1-secret');
  });
});
