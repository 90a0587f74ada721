// Regression test from the review of 2026-12-07 (r2): GET /v1/models/{model} was not served (the SDK's models.retrieve() got 404 Unknown route).
// OpenAI serves GET /v1/models/{model} (the SDK's models.retrieve): a client that checks a model
// before using it gets 404 "Unknown route" from the gateway for a model the key may use.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createKey, createOrg, type Harness, startHarness, synced } from './harness.js';

let h: Harness;
let key: string;

beforeAll(async () => {
  h = await startHarness();
  await createOrg(h.gw, 'acme');
  key = (await createKey(h.gw, 'acme', ['--models', 'mock/gpt-4o-mini,mock/echo'])).key;
  await synced();
}, 60_000);
afterAll(() => h?.close());

describe('GET /v1/models/{model}', () => {
  it('answers models.retrieve for a model the key may use with the same entry models.list gives', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${h.url}/v1`, maxRetries: 0 });
    const list = await client.models.list();
    const listed = list.data.find((m) => m.id === 'mock/gpt-4o-mini');
    expect(listed).toMatchObject({ id: 'mock/gpt-4o-mini', object: 'model' });
    // The SDK encodes the slash of the id: GET /v1/models/mock%2Fgpt-4o-mini.
    const got = await client.models.retrieve('mock/gpt-4o-mini').catch((err: unknown) => err);
    expect(got).toEqual(listed);
  });

  it('answers the unencoded path too (plain clients and curl), and 404 model_not_found for a model the key may not use', async () => {
    const ok = await call(h.url, '/v1/models/mock/gpt-4o-mini', { key });
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({ id: 'mock/gpt-4o-mini', object: 'model' });
    const denied = await call(h.url, '/v1/models/mock%2Fllama-3-8b', { key });
    expect(denied.status).toBe(404);
    expect(denied.json()).toMatchObject({ error: { code: 'model_not_found' } });
  });
});
