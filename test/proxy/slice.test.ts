import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeUpstream, startFakeUpstream } from '../fakes/upstream.js';
import { chat, createKey, createOrg, type Harness, hello, startHarness } from './harness.js';

let h: Harness;
let fake: FakeUpstream;
let mockKey: string;
let fakeKey: string;

beforeAll(async () => {
  fake = await startFakeUpstream();
  h = await startHarness();
  await createOrg(h.gw, 'mocky');
  await createOrg(h.gw, 'fakey', ['--provider', 'openai-compatible', '--base-url', fake.url, '--unknown-models', 'free']);
  mockKey = (await createKey(h.gw, 'mocky')).key;
  fakeKey = (await createKey(h.gw, 'fakey')).key;
  await new Promise((r) => setTimeout(r, 300));
});
afterAll(async () => {
  await h?.close();
  await fake?.close();
});

describe('first slice', () => {
  it('answers a JSON completion through the mock provider with gateway_usage', async () => {
    const r = await chat(h.url, mockKey, hello('mock/gpt-4o-mini'));
    expect(r.status).toBe(200);
    const body = r.json<{ choices: unknown[]; gateway_usage: Record<string, unknown> }>();
    expect(body.choices).toHaveLength(1);
    expect(body.gateway_usage).toMatchObject({ usage_source: 'upstream' });
    expect(r.headers['x-request-id']).toMatch(/^req_/);
  });

  it('streams through the fake upstream with the openai SDK', async () => {
    const client = new OpenAI({ apiKey: fakeKey, baseURL: `${h.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({ ...hello('openai/gpt-4o-mini'), stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('The quick brown fox jumps over the lazy dog today');
  });

  it('returns 401 invalid_api_key without a key', async () => {
    const r = await chat(h.url, '', hello('mock/gpt-4o-mini'));
    expect(r.status).toBe(401);
    expect(r.json()).toMatchObject({ error: { code: 'invalid_api_key', type: 'authentication_error', param: null } });
  });
});
