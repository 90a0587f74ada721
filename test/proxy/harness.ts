// Test harness for gateway-proxy: a fresh store configured through gatewayctl (cliFor), a proxy
// started in-process on port 0, and helpers to create orgs and keys the way an operator would.
import { request } from 'undici';
import { openStore } from '../../src/shared/db/store.js';
import { type ProxyOptions, type RunningProxy, startProxy } from '../../src/proxy/main.js';
import { cliFor } from '../helpers/cli.js';
import { type DialectName, freshStoreUrl } from '../helpers/stores.js';

export const MASTER_KEY_HEX = 'a'.repeat(64);
export const MASTER_KEY = Buffer.from(MASTER_KEY_HEX, 'hex');

export type Gw = ReturnType<typeof cliFor>;

export interface KeyJson {
  id: string;
  key: string;
  org_id: string;
}

export interface Harness {
  db: string;
  gw: Gw;
  proxy: RunningProxy;
  url: string;
  close(): Promise<void>;
}

export async function freshStore(dialect: DialectName = 'sqlite'): Promise<{ db: string; gw: Gw }> {
  const db = await freshStoreUrl(dialect);
  const gw = cliFor(db);
  const init = await gw(['init', '--json']);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  return { db, gw };
}

export async function startHarness(opts: { dialect?: DialectName; proxy?: ProxyOptions } = {}): Promise<Harness> {
  const { db, gw } = await freshStore(opts.dialect);
  const proxy = await startProxy({ dbUrl: db, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50, ...opts.proxy });
  return { db, gw, proxy, url: proxy.url, close: async () => void (await proxy.close()) };
}

/** Runs gatewayctl and fails the test with its stderr when it does not exit 0. */
export async function ok(gw: Gw, argv: string[], opts: { env?: Record<string, string> } = {}): Promise<unknown> {
  const r = await gw([...argv, '--json'], opts);
  if (r.code !== 0) throw new Error(`gatewayctl ${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim() ? r.json() : null;
}

export async function createOrg(gw: Gw, name: string, args: string[] = ['--provider', 'mock'], opts: { env?: Record<string, string> } = {}): Promise<{ id: string }> {
  return (await ok(gw, ['orgs', 'create', name, ...args], opts)) as { id: string };
}

export async function createKey(gw: Gw, org: string, args: string[] = []): Promise<KeyJson> {
  return (await ok(gw, ['keys', 'create', '--org', org, '--type', 'org', ...args])) as KeyJson;
}

/** Lets the proxy pick up the latest gatewayctl change (it polls every 100 ms in tests). */
export const synced = () => new Promise((r) => setTimeout(r, 300));

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export async function call(url: string, path: string, opts: { method?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${url}${path}`, {
    method: (opts.method ?? (opts.body === undefined ? 'GET' : 'POST')) as 'GET',
    headers,
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

export const chat = (url: string, key: string, body: unknown, headers?: Record<string, string>) =>
  call(url, '/v1/chat/completions', { key, body, headers });

export type ChatBody = { model: string; messages: Array<{ role: 'user'; content: string }> } & Record<string, unknown>;

export const hello = (model: string, extra: Record<string, unknown> = {}): ChatBody => ({
  model,
  messages: [{ role: 'user', content: 'hello there world' }],
  ...extra,
});

export interface EventRow {
  requestId: string;
  keyId: string;
  status: number;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
  usageSource: string;
  stream: boolean;
  ts: Date;
}

/** Usage events the proxy wrote to the store (read through a separate connection). */
export async function storedEvents(db: string, keyId?: string): Promise<EventRow[]> {
  const store = await openStore(db);
  try {
    const rows = await store.db.select().from(store.t.usageEvents);
    return rows.filter((r) => !keyId || r.keyId === keyId).map((r) => ({ ...r, promptTokens: Number(r.promptTokens), completionTokens: Number(r.completionTokens), costMicros: Number(r.costMicros) }));
  } finally {
    await store.close();
  }
}

/** Waits until `count` events of the key are in the store. */
export async function waitForEvents(db: string, keyId: string, count: number, timeoutMs = 5_000): Promise<EventRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await storedEvents(db, keyId);
    if (rows.length >= count) return rows;
    if (Date.now() > deadline) throw new Error(`only ${rows.length} of ${count} usage events for ${keyId} reached the store`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
