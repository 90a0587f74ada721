// gatewayctl demo, in-process: what it seeds, that re-running is harmless, where the keys go,
// and how --serve runs (and reports) the proxy. The real proxy is in demo-serve.test.ts.
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/shared/db/store.js';
import { hashKey } from '../../src/shared/keys.js';
import { cliFor, tempDir } from '../helpers/cli.js';
import { DIALECTS, freshSqlitePath, freshStoreUrl } from '../helpers/stores.js';
import { startFakeGateway } from './chat-fake-gateway.js';

interface DemoJson {
  url: string;
  key_file: string;
  orgs: { id: string; name: string; provider: string; models: string[]; created: boolean }[];
  users: { id: string; username: string; org_id: string; created: boolean }[];
  keys: { name: string; id: string; key: string; org: string; user: string; action: string; limits: { metric: string; window: string; max: number }[] }[];
  try: string[];
}

interface KeyRow {
  id: string;
  status: string;
  user_id: string;
}

describe.each(DIALECTS)('gatewayctl demo on %s', (dialect) => {
  it('seeds two mock orgs, three users and three keys with different limits', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    const r = await gw(['demo', '--json']);
    expect(r.code).toBe(0);
    const d = r.json<DemoJson>();
    expect(d.orgs.map((o) => [o.name, o.provider, o.created])).toEqual([
      ['demo-acme', 'mock', true],
      ['demo-globex', 'mock', true],
    ]);
    expect(d.users.map((u) => u.username)).toEqual(['demo-alice', 'demo-bob', 'demo-carol']);
    expect(d.keys.map((k) => [k.name, k.org, k.user, k.action])).toEqual([
      ['alice', 'demo-acme', 'demo-alice', 'created'],
      ['bob', 'demo-acme', 'demo-bob', 'created'],
      ['carol', 'demo-globex', 'demo-carol', 'created'],
    ]);
    const limitsOf = (name: string) => d.keys.find((k) => k.name === name)!.limits.map((l) => `${l.metric}/${l.window}=${l.max}`).sort();
    expect(limitsOf('alice')).toEqual(['requests/minute=60', 'tokens/day=100000']);
    expect(limitsOf('bob')).toEqual(['tokens/day=1500']);
    expect(limitsOf('carol')).toEqual(['requests/minute=5']);
    const carolBalance = await gw(['credits', 'balance', `key:${d.keys[2]!.id}`, '--json']);
    expect(carolBalance.json()).toMatchObject({ balance_usd: 0.01 });
    const keys = (await gw(['keys', 'list', '--json'])).json<KeyRow[]>();
    expect(keys.filter((k) => k.status === 'active')).toHaveLength(3);
  });

  it('re-running reuses the orgs and users and rotates the keys: same ids, new secrets', async () => {
    const gw = cliFor(await freshStoreUrl(dialect));
    const first = (await gw(['demo', '--json'])).json<DemoJson>();
    const again = await gw(['demo', '--json']);
    expect(again.code).toBe(0);
    const second = again.json<DemoJson>();
    expect(second.orgs.map((o) => [o.id, o.created])).toEqual(first.orgs.map((o) => [o.id, false]));
    expect(second.users.map((u) => [u.id, u.created])).toEqual(first.users.map((u) => [u.id, false]));
    expect(second.keys.map((k) => [k.id, k.action])).toEqual(first.keys.map((k) => [k.id, 'rotated']));
    for (const [i, k] of second.keys.entries()) expect(k.key).not.toBe(first.keys[i]!.key);
    const keys = (await gw(['keys', 'list', '--json'])).json<KeyRow[]>();
    expect(keys).toHaveLength(3);
    expect((await gw(['orgs', 'list', '--json'])).json<unknown[]>()).toHaveLength(2);
  });
});

describe('gatewayctl demo (files and output)', () => {
  it('keeps only the current keys, in <data dir>/demo-keys.json with mode 0600', async () => {
    const db = freshSqlitePath();
    const gw = cliFor(db);
    await gw(['demo']);
    const d = (await gw(['demo', '--json'])).json<DemoJson>();
    expect(statSync(d.key_file).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(d.key_file, 'utf8')) as { url: string; default: string; keys: Record<string, { id: string; key: string }> };
    expect(file.default).toBe('alice');
    expect(file.url).toBe('http://127.0.0.1:8080');
    expect(Object.fromEntries(Object.entries(file.keys).map(([n, k]) => [n, k.key]))).toEqual(Object.fromEntries(d.keys.map((k) => [k.name, k.key])));
    // The store holds the hash of the file's key (the rotated one), and never the plaintext.
    const store = await openStore(db);
    try {
      const rows = await store.db.select().from(store.t.apiKeys);
      expect(rows.map((k) => k.keyHash).sort()).toEqual(Object.values(file.keys).map((k) => hashKey(k.key)).sort());
      expect(JSON.stringify(rows)).not.toContain(file.keys.alice!.key.split('_').at(-1));
    } finally {
      await store.close();
    }
  });

  it('prints the keys, the curl line and the chat lines to try', async () => {
    const gw = cliFor(freshSqlitePath(), { GATEWAY_PORT: '9999' });
    const r = await gw(['demo']);
    expect(r.code).toBe(0);
    const alice = /alice\s+\S+ \(demo-acme\) created[^\n]*\n\s+(gw_live_\S+)/.exec(r.stdout)?.[1];
    expect(alice).toBeDefined();
    expect(r.stdout).toContain(
      `curl -s http://127.0.0.1:9999/v1/chat/completions -H "Authorization: Bearer ${alice}" -H "Content-Type: application/json" -d '{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'`,
    );
    expect(r.stdout).toContain('gatewayctl chat "hello"');
    expect(r.stdout).toContain('gatewayctl chat --as bob');
    expect(r.stdout).toContain('Start the gateway on the same store: gateway-proxy');
  });

  it('chat --as <demo user> sends that user\'s key to the demo URL', async () => {
    const { fake, url } = await startFakeGateway();
    try {
      const gw = cliFor(freshSqlitePath(), { GATEWAY_URL: url });
      const d = (await gw(['demo', '--json'])).json<DemoJson>();
      const r = await gw(['chat', '--as', 'bob', '--model', 'mock/echo', 'hi']);
      expect(r.code).toBe(5);
      expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${d.keys[1]!.key}`);
      const unknown = await gw(['chat', '--as', 'mallory', 'hi']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("no demo user 'mallory': use one of alice, bob, carol");
    } finally {
      await fake.close();
    }
  });

  it('exits 2 for --serve with --json (the proxy log would break the one JSON document)', async () => {
    const r = await cliFor(freshSqlitePath())(['demo', '--serve', '--json']);
    expect(r.code).toBe(2);
  });
});

describe('gatewayctl demo --serve (with a stand-in proxy)', () => {
  let dir: string;
  let proxy: string;
  beforeAll(() => {
    dir = tempDir();
    proxy = join(dir, 'fake-proxy');
    // Records its arguments, announces a URL like the real proxy, then exits with FAKE_EXIT.
    writeFileSync(
      proxy,
      `#!/usr/bin/env node
require('fs').writeFileSync(${JSON.stringify(join(dir, 'args.json'))}, JSON.stringify(process.argv.slice(2)));
console.log('listening on http://127.0.0.1:4321');
process.exitCode = Number(process.env.FAKE_EXIT || 0);
`,
    );
    chmodSync(proxy, 0o755);
  });

  it('runs the proxy on the same store and prints the lines to try with the URL it listens on', async () => {
    const db = freshSqlitePath();
    const gw = cliFor(db, { GATEWAY_PROXY_BIN: proxy });
    const r = await gw(['demo', '--serve', '--port', '0']);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8'))).toEqual(['--db', db, '--host', '127.0.0.1', '--port', '0']);
    expect(r.stdout).toContain('listening on http://127.0.0.1:4321\n');
    expect(r.stdout).toMatch(/Try it \(in another terminal, same directory\):\n {2}curl -s http:\/\/127\.0\.0\.1:4321\/v1\/chat\/completions/);
    const keyFile = /in (\S+demo-keys\.json)/.exec(r.stdout)?.[1];
    expect(JSON.parse(readFileSync(keyFile!, 'utf8')).url).toBe('http://127.0.0.1:4321');
  });

  it('exits 6 and says so when the proxy fails', async () => {
    const gw = cliFor(freshSqlitePath(), { GATEWAY_PROXY_BIN: proxy, FAKE_EXIT: '2' });
    const r = await gw(['demo', '--serve']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('error: gateway-proxy stopped with exit code 2');
  });

  it('exits 6 when the proxy program cannot be started', async () => {
    const gw = cliFor(freshSqlitePath(), { GATEWAY_PROXY_BIN: join(dir, 'missing-proxy') });
    const r = await gw(['demo', '--serve']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('could not start gateway-proxy');
  });
});
