import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { cliFor, tempDir } from '../helpers/cli.js';
import { DIALECTS, freshStoreUrl } from '../helpers/stores.js';
import { rng, type SeedEvent, seedUsage } from './usage-fixtures.js';

interface TotalsJson {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: number;
}
type RowJson = TotalsJson & Record<string, unknown>;

const DAY = 86_400_000;
const MODELS = ['mock/gpt-4o-mini', 'mock/llama-3-8b', 'mock/echo'];

function sum(events: SeedEvent[]) {
  let costMicros = 0;
  const t = { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  for (const e of events) {
    t.requests++;
    t.prompt_tokens += e.promptTokens;
    t.completion_tokens += e.completionTokens;
    t.total_tokens += e.promptTokens + e.completionTokens;
    costMicros += e.costMicros;
  }
  return { ...t, cost_usd: costMicros / 1e6 };
}

describe.each(DIALECTS)('gatewayctl usage, keys usage, stats and audit on %s', (dialect) => {
  let gw: ReturnType<typeof cliFor>;
  let events: SeedEvent[];
  let keys: string[];
  let users: string[];
  let orgs: string[];
  let url: string;
  const now = Date.now();

  beforeAll(async () => {
    url = await freshStoreUrl(dialect);
    gw = cliFor(url);
    await gw(['init']);
    orgs = [];
    for (const name of ['acme', 'globex']) orgs.push((await gw(['orgs', 'create', name, '--provider', 'mock', '--json'])).json<{ id: string }>().id);
    users = [];
    for (const name of ['alice', 'bob']) users.push((await gw(['users', 'create', name, '--org', 'acme', '--json'])).json<{ id: string }>().id);
    keys = [
      (await gw(['keys', 'create', '--org', 'acme', '--user', 'alice', '--name', 'alice-key', '--json'])).json<{ id: string }>().id,
      (await gw(['keys', 'create', '--org', 'acme', '--user', 'bob', '--json'])).json<{ id: string }>().id,
      (await gw(['keys', 'create', '--org', 'globex', '--json'])).json<{ id: string }>().id,
    ];
    const rand = rng(42);
    events = [];
    for (let i = 0; i < 3000; i++) {
      const k = Math.floor(rand() * 3);
      const prompt = Math.floor(rand() * 2000);
      const completion = Math.floor(rand() * 800);
      events.push({
        // Spread over 45 days, never in the future and never on a whole second (so --since never ties).
        ts: new Date(now - Math.floor(rand() * 45 * DAY) - 7),
        orgId: k === 2 ? orgs[1]! : orgs[0]!,
        keyId: keys[k]!,
        userId: k === 2 ? null : users[k]!,
        model: MODELS[Math.floor(rand() * 3)]!,
        promptTokens: prompt,
        completionTokens: completion,
        costMicros: Math.floor(rand() * 5000),
        status: rand() < 0.05 ? 502 : 200,
      });
    }
    await seedUsage(url, events);
  });

  it('usage summary equals the sum over the raw events, in total, by model/key/user/day, and since a mid-day time', async () => {
    const total = await gw(['usage', 'summary', '--json']);
    expect(total.code).toBe(0);
    const t = total.json<TotalsJson>();
    const expected = sum(events);
    expect({ ...t, cost_usd: Math.round(t.cost_usd * 1e6) }).toMatchObject({ ...expected, cost_usd: Math.round(expected.cost_usd * 1e6) });
    expect(t).not.toHaveProperty('rows');

    const byModel = (await gw(['usage', 'summary', '--by', 'model', '--json'])).json<TotalsJson & { rows: RowJson[] }>();
    for (const m of MODELS) {
      const row = byModel.rows.find((r) => r.model === m)!;
      expect(row.requests).toBe(sum(events.filter((e) => e.model === m)).requests);
      expect(row.total_tokens).toBe(sum(events.filter((e) => e.model === m)).total_tokens);
    }
    const byUser = (await gw(['usage', 'summary', '--by', 'user', '--json'])).json<{ rows: RowJson[] }>();
    expect(byUser.rows.find((r) => r.user === null)!.requests).toBe(events.filter((e) => !e.userId).length);
    const byDay = (await gw(['usage', 'summary', '--by', 'day', '--json'])).json<{ rows: RowJson[] }>();
    expect(byDay.rows.reduce((a, r) => a + r.requests, 0)).toBe(3000);
    expect(byDay.rows.map((r) => r.day)).toEqual([...new Set(events.map((e) => e.ts.toISOString().slice(0, 10)))].sort());

    // A since that falls mid-day: whole days from rollups plus the raw part of the first day.
    const since = new Date(now - 10 * DAY - 3 * 3_600_000 - 13 * 60_000);
    const recent = events.filter((e) => e.ts >= since);
    const partial = (await gw(['usage', 'summary', '--since', since.toISOString(), '--json'])).json<TotalsJson>();
    expect(partial).toMatchObject({ requests: recent.length, total_tokens: sum(recent).total_tokens, prompt_tokens: sum(recent).prompt_tokens });
    const partialByKey = (await gw(['usage', 'summary', '--since', since.toISOString(), '--by', 'key', '--json'])).json<{ rows: RowJson[] }>();
    for (const k of keys) expect(partialByKey.rows.find((r) => r.key === k)!.requests).toBe(recent.filter((e) => e.keyId === k).length);
    const partialByDay = (await gw(['usage', 'summary', '--since', since.toISOString(), '--by', 'day', '--json'])).json<{ rows: RowJson[] }>();
    expect(partialByDay.rows[0]!.day).toBe(since.toISOString().slice(0, 10));
    expect(partialByDay.rows.reduce((a, r) => a + r.requests, 0)).toBe(recent.length);

    const org = (await gw(['usage', 'summary', '--org', 'globex', '--json'])).json<TotalsJson>();
    expect(org.requests).toBe(events.filter((e) => e.keyId === keys[2]).length);
    const user = (await gw(['usage', 'summary', '--user', 'alice', '--key', keys[0]!, '--json'])).json<TotalsJson>();
    expect(user.requests).toBe(events.filter((e) => e.keyId === keys[0]).length);

    const human = await gw(['usage', 'summary', '--by', 'model']);
    expect(human.stdout).toContain('mock/echo');
    expect(human.stdout).toMatch(/requests\s+3000/);
  });

  it('usage summary exits 2 on a malformed duration or grouping, 3 on an unknown org/key/user', async () => {
    const bad = await gw(['usage', 'summary', '--since', '7 days', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.errorJson().error.message).toContain("invalid since '7 days'");
    expect((await gw(['usage', 'summary', '--since', '3x'])).code).toBe(2);
    expect((await gw(['usage', 'summary', '--by', 'week'])).code).toBe(2);
    expect((await gw(['usage', 'summary', '--org', 'nope'])).code).toBe(3);
    expect((await gw(['usage', 'summary', '--key', 'k000000000000'])).code).toBe(3);
    expect((await gw(['usage', 'summary', '--user', 'nobody'])).code).toBe(3);
  });

  it('usage export streams every event as CSV or JSON lines to a file or stdout, exactly', async () => {
    const dir = tempDir();
    const file = join(dir, 'usage.jsonl');
    const res = await gw(['usage', 'export', '--format', 'jsonl', '--out', file, '--json']);
    expect(res.code).toBe(0);
    expect(res.json()).toMatchObject({ rows: 3000, format: 'jsonl' });
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { ts: string; total_tokens: number; cost_usd: string });
    expect(lines).toHaveLength(3000);
    expect(lines.map((l) => l.ts)).toEqual([...lines.map((l) => l.ts)].sort());
    expect(lines.reduce((a, l) => a + l.total_tokens, 0)).toBe(sum(events).total_tokens);
    const micros = lines.reduce((a, l) => a + Math.round(Number(l.cost_usd) * 1e6), 0);
    expect(micros).toBe(events.reduce((a, e) => a + e.costMicros, 0));

    const csv = await gw(['usage', 'export', '--since', '5d', '--org', 'acme']);
    expect(csv.code).toBe(0);
    const rows = csv.stdout.trim().split('\n');
    expect(rows[0]).toBe('request_id,ts,org_id,user_id,key_id,model,provider,prompt_tokens,completion_tokens,total_tokens,cost_usd,status,error_code,latency_ms,ttfb_ms,stream,usage_source');
    const cut = Date.now() - 5 * DAY;
    expect(rows.length - 1).toBe(events.filter((e) => e.ts.getTime() >= cut && e.orgId === orgs[0]).length);
    expect((await gw(['usage', 'export', '--json'])).code).toBe(2);
    expect((await gw(['usage', 'export', '--format', 'xml'])).code).toBe(2);
  });

  it('usage export to a slow stdout waits for drain: never more than about one page is buffered', async () => {
    let maxBuffered = 0;
    let bytes = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        setTimeout(done, 2);
      },
    });
    const write = slow.write.bind(slow);
    slow.write = ((chunk: string) => {
      const ok = write(chunk);
      maxBuffered = Math.max(maxBuffered, slow.writableLength);
      return ok;
    }) as typeof slow.write;
    const code = await run(['--db', url, 'usage', 'export', '--format', 'jsonl'], {
      stdout: slow,
      stderr: { write: () => true },
      stdin: Readable.from([]),
      env: { USER: 'tester' },
      cwd: tempDir(),
      interactive: false,
      stdoutIsTTY: false,
    });
    expect(code).toBe(0);
    await new Promise<void>((resolve) => slow.end(resolve));
    // 3000 events in pages of 1000: a writer that ignored backpressure would hold them all at once.
    expect(maxBuffered).toBeLessThan(bytes / 2);
  });

  it('keys usage pages through recent events with a cursor; keys usage-summary gives today, month and all time', async () => {
    const key = keys[0]!;
    const mine = events.filter((e) => e.keyId === key && e.ts.getTime() >= now - 7 * DAY);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await gw(['keys', 'usage', key, '--limit', '100', '--json', ...(cursor ? ['--cursor', cursor] : [])]);
      expect(page.code).toBe(0);
      const body = page.json<{ key_id: string; events: { request_id: string; ts: string }[]; next_cursor: string | null }>();
      expect(body.key_id).toBe(key);
      seen.push(...body.events.map((e) => e.ts));
      cursor = body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(mine.length);
    expect(seen).toEqual([...seen].sort().reverse());
    const human = await gw(['keys', 'usage', key, '--limit', '2']);
    expect(human.stdout).toContain('more: --cursor');
    expect((await gw(['keys', 'usage', key, '--cursor', 'garbage'])).code).toBe(2);
    expect((await gw(['keys', 'usage', key, '--since', 'yesterday'])).code).toBe(2);
    expect((await gw(['keys', 'usage', 'k000000000000'])).code).toBe(3);

    const s = (await gw(['keys', 'usage-summary', key, '--json'])).json<Record<string, TotalsJson & { top_model: string | null; avg_tokens_per_request: number }>>();
    const all = events.filter((e) => e.keyId === key);
    expect(s.all_time).toMatchObject({ requests: all.length, total_tokens: sum(all).total_tokens });
    expect(s.all_time!.avg_tokens_per_request).toBe(Math.round(sum(all).total_tokens / all.length));
    const counts = MODELS.map((m) => all.filter((e) => e.model === m).length);
    expect(s.all_time!.top_model).toBe(MODELS[counts.indexOf(Math.max(...counts))]);
    const today = new Date(now).toISOString().slice(0, 10);
    expect(s.today!.requests).toBe(all.filter((e) => e.ts.toISOString().slice(0, 10) === today).length);
    const monthPrefix = today.slice(0, 7);
    expect(s.month!.requests).toBe(all.filter((e) => e.ts.toISOString().startsWith(monthPrefix)).length);
    expect((await gw(['keys', 'usage-summary', key])).stdout).toContain('all time');
    expect((await gw(['keys', 'usage-summary', 'k000000000000'])).code).toBe(3);
  });

  it('stats shows orgs, users, keys by status, today and this month, top keys and models', async () => {
    const res = await gw(['stats', '--json']);
    expect(res.code).toBe(0);
    const s = res.json<{ orgs: number; users: Record<string, number>; keys: Record<string, number>; month: TotalsJson; top_keys: { id: string; name: string }[]; top_models: { id: string }[] }>();
    expect(s.orgs).toBe(2);
    expect(s.users).toEqual({ active: 2, disabled: 0 });
    expect(s.keys).toEqual({ active: 3, disabled: 0, revoked: 0, expired: 0 });
    const monthPrefix = new Date(now).toISOString().slice(0, 7);
    expect(s.month.requests).toBe(events.filter((e) => e.ts.toISOString().startsWith(monthPrefix)).length);
    expect(s.top_models.length).toBeGreaterThan(0);
    const human = await gw(['stats']);
    expect(human.stdout).toContain('top keys this month');
    expect(human.stdout).toMatch(/keys\s+3 active/);
  });

  it('audit list filters by actor, target, action and time', async () => {
    const all = (await gw(['audit', 'list', '--json'])).json<{ action: string; actor: string; target: string }[]>();
    expect(all.map((a) => a.action)).toContain('keys.create');
    const orgsOnly = (await gw(['audit', 'list', '--action', 'orgs.create', '--json'])).json<{ target: string }[]>();
    expect(orgsOnly.map((a) => a.target).sort()).toEqual(orgs.map((o) => `org:${o}`).sort());
    expect((await gw(['audit', 'list', '--actor', 'os:nobody', '--json'])).json()).toEqual([]);
    expect((await gw(['audit', 'list', '--target', `key:${keys[0]}`, '--json'])).json<unknown[]>()).toHaveLength(1);
    expect((await gw(['audit', 'list', '--limit', '2', '--json'])).json<unknown[]>()).toHaveLength(2);
    expect((await gw(['audit', 'list', '--since', '1h'])).stdout).toContain('orgs.create');
    expect((await gw(['audit', 'list', '--since', 'soon'])).code).toBe(2);
    expect((await gw(['audit', 'list', '--limit', '0'])).code).toBe(2);
  });

  it('usage prune deletes old raw events but keeps the rollups, so summaries do not change; it needs --yes', async () => {
    const before = (await gw(['usage', 'summary', '--json'])).json<TotalsJson>();
    expect((await gw(['usage', 'prune', '--before', '20d'])).code).toBe(2);
    expect((await gw(['usage', 'prune', '--before', 'tomorrow', '--yes'])).code).toBe(2);
    expect((await gw(['usage', 'prune', '--before', new Date(now + DAY).toISOString(), '--yes'])).code).toBe(2);
    const cut = new Date(now - 20 * DAY - 1234);
    const pruned = await gw(['usage', 'prune', '--before', cut.toISOString(), '--yes', '--json']);
    expect(pruned.code).toBe(0);
    expect(pruned.json<{ deleted: number }>().deleted).toBe(events.filter((e) => e.ts < cut).length);
    expect((await gw(['usage', 'summary', '--json'])).json()).toEqual(before);
    const remaining = await gw(['usage', 'export', '--format', 'jsonl']);
    expect(remaining.stdout.trim().split('\n')).toHaveLength(3000 - pruned.json<{ deleted: number }>().deleted);
  });
});
