// gatewayctl changes reach a running proxy within about a second (config_version poll), and a
// reload that fails keeps the last good snapshot and says so in /readyz.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFor } from '../helpers/cli.js';
import { call, chat, createKey, createOrg, type Harness, hello, ok, startHarness } from './harness.js';

let h: Harness;
const M = 'mock/gpt-4o-mini';

beforeAll(async () => {
  // The production poll interval: these tests time what operators will see.
  h = await startHarness({ proxy: { pollIntervalMs: 500 } });
  await createOrg(h.gw, 'acme');
}, 60_000);
afterAll(() => h?.close());

/** ms until `check` passes, polling every 25 ms, or throws after `limitMs`. */
async function msUntil(check: () => Promise<boolean>, limitMs: number): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > limitMs) throw new Error(`not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return performance.now() - start;
}

describe('changes made with gatewayctl', () => {
  it('a key revoked with gatewayctl stops working within 2 s', async () => {
    const k = await createKey(h.gw, 'acme');
    await msUntil(async () => (await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status === 200, 2_000);
    await ok(h.gw, ['keys', 'revoke', k.id, '--yes']);
    const ms = await msUntil(async () => {
      const r = await chat(h.url, k.key, hello(M, { max_tokens: 5 }));
      return r.status === 401 && r.json<{ error: { code: string } }>().error.code === 'key_revoked';
    }, 2_000);
    expect(ms).toBeLessThan(2_000);
  });

  it('a new limit applies within about a second', async () => {
    const k = await createKey(h.gw, 'acme');
    await msUntil(async () => (await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status === 200, 2_000);
    await ok(h.gw, ['limits', 'set', `key:${k.id}`, '--rpm', '1']);
    const ms = await msUntil(async () => (await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status === 429, 2_000);
    expect(ms).toBeLessThan(2_000);
  });

  it('a new org model rule applies within about a second', async () => {
    const k = await createKey(h.gw, 'acme');
    await msUntil(async () => (await chat(h.url, k.key, hello('mock/echo'))).status === 200, 2_000);
    await ok(h.gw, ['orgs', 'models', 'add', 'acme', 'mock/gpt-*']);
    const ms = await msUntil(async () => (await chat(h.url, k.key, hello('mock/echo'))).status === 403, 2_000);
    expect(ms).toBeLessThan(2_000);
    expect((await chat(h.url, k.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    await ok(h.gw, ['orgs', 'models', 'remove', 'acme', 'mock/gpt-*']);
  });
});

describe('a failed reload', () => {
  it('keeps the last good snapshot, reports the error in /readyz, and recovers', async () => {
    const victim = await createKey(h.gw, 'acme');
    await msUntil(async () => (await chat(h.url, victim.key, hello(M, { max_tokens: 5 }))).status === 200, 2_000);
    // An upstream key sealed with another master key cannot be opened by this proxy: every reload fails.
    const foreign = cliFor(h.db, { GATEWAY_MASTER_KEY: 'b'.repeat(64) });
    await ok(foreign, ['orgs', 'create', 'sealed-elsewhere', '--provider', 'openai', '--upstream-key-env', 'K'], { env: { K: 'sk-foreign' } });
    await msUntil(async () => (await call(h.url, '/readyz')).json<{ snapshot: { last_error: string | null } }>().snapshot.last_error !== null, 3_000);
    await ok(h.gw, ['keys', 'revoke', victim.id, '--yes']);
    await new Promise((r) => setTimeout(r, 1_200));
    // The revocation is not visible: the proxy still serves from the last good snapshot.
    expect((await chat(h.url, victim.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
    await ok(h.gw, ['orgs', 'delete', 'sealed-elsewhere', '--yes']);
    await msUntil(async () => (await chat(h.url, victim.key, hello(M, { max_tokens: 5 }))).status === 401, 3_000);
    const ready = await call(h.url, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', snapshot: { last_error: null } });
  });
});
