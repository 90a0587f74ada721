import Database from 'better-sqlite3';
import { eq, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/shared/db/store.js';
import { creditBalance } from '../../src/shared/services/credits.js';
import { mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SinkEvent, StoreUsageSink, usedInWindow } from '../../src/shared/usage/index.js';
import { decodeRecords, encodeRecords, RECORD_WIDTH } from '../../src/shared/usage/record-codec.js';
import { sqliteWorkerWriter } from '../../src/shared/usage/sqlite-writer.js';
import { batchWriter } from '../../src/shared/usage/write-batch.js';
import type { UsageRecord } from '../../src/shared/usage/types.js';
import { DIALECTS, type DialectName, PG_ADMIN_URL } from '../helpers/stores.js';
import { world, type World } from './snapshot-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let n = 0;
function record(w: World, over: Partial<UsageRecord> = {}): UsageRecord {
  n++;
  return {
    requestId: `req_${n}_${Math.random().toString(36).slice(2)}`,
    ts: Date.now() - (n % 3) * 86_400_000,
    orgId: w.orgId,
    userId: w.userId,
    keyId: w.child.key.id,
    ancestorKeyIds: [w.parent.key.id],
    model: n % 2 ? 'openai/gpt-4o' : 'meta/llama',
    provider: 'mock',
    promptTokens: 10 + (n % 7),
    completionTokens: 20 + (n % 5),
    totalTokens: 30 + (n % 7) + (n % 5),
    costMicros: 100 + n,
    status: n % 10 === 0 ? 502 : 200,
    errorCode: n % 10 === 0 ? 'upstream_error' : null,
    latencyMs: 12.4,
    ttfbMs: 3,
    stream: n % 2 === 0,
    usageSource: 'upstream',
    creditScopes: [`user:${w.userId}`],
    ...over,
  };
}

async function counts(store: Store) {
  const { db, t } = store;
  const [e] = await db
    .select({ n: sql<string>`count(*)`, tokens: sql<string>`sum(${t.usageEvents.totalTokens})`, cost: sql<string>`sum(${t.usageEvents.costMicros})` })
    .from(t.usageEvents);
  const [d] = await db
    .select({ n: sql<string>`sum(${t.usageDaily.requests})`, tokens: sql<string>`sum(${t.usageDaily.totalTokens})`, cost: sql<string>`sum(${t.usageDaily.costMicros})`, errors: sql<string>`sum(${t.usageDaily.errors})` })
    .from(t.usageDaily);
  return {
    events: Number(e?.n ?? 0),
    eventTokens: Number(e?.tokens ?? 0),
    eventCost: Number(e?.cost ?? 0),
    rollupRequests: Number(d?.n ?? 0),
    rollupTokens: Number(d?.tokens ?? 0),
    rollupCost: Number(d?.cost ?? 0),
    rollupErrors: Number(d?.errors ?? 0),
  };
}

/** Makes the store refuse writes for real, and gives it back. */
async function outage(dialect: DialectName, store: Store): Promise<{ end(): Promise<void> }> {
  if (dialect === 'sqlite') {
    store.sqlite!.pragma('busy_timeout = 20');
    const other = new Database(store.display);
    other.exec('BEGIN EXCLUSIVE');
    return {
      end: async () => {
        other.exec('COMMIT');
        other.close();
      },
    };
  }
  const dbName = new URL(store.display).pathname.slice(1);
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`alter database ${dbName} allow_connections false`);
  await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
  return {
    end: async () => {
      await admin.query(`alter database ${dbName} allow_connections true`);
      await admin.end();
    },
  };
}

/**
 * Another connection holding the lock usage writes need: SQLite's write lock
 * (BEGIN EXCLUSIVE), or on Postgres an exclusive lock on usage_events in an
 * open transaction. release() commits; calling it twice is harmless.
 */
async function writeLock(dialect: DialectName, store: Store): Promise<{ release(): Promise<void> }> {
  let done = false;
  if (dialect === 'sqlite') {
    const other = new Database(store.display);
    other.exec('BEGIN EXCLUSIVE');
    return {
      release: async () => {
        if (done) return;
        done = true;
        other.exec('COMMIT');
        other.close();
      },
    };
  }
  const other = new pg.Client({ connectionString: store.display });
  await other.connect();
  await other.query('begin');
  await other.query('lock table usage_events in access exclusive mode');
  return {
    release: async () => {
      if (done) return;
      done = true;
      await other.query('commit');
      await other.end();
    },
  };
}

// SQLite runs both ways: batches in-thread (the default) and on the writer thread
// (gateway-proxy --usage-writer thread).
const VARIANTS: Record<string, { dialect: DialectName; thread: boolean }> = {
  sqlite: { dialect: 'sqlite', thread: false },
  'sqlite, writer thread': { dialect: 'sqlite', thread: true },
  ...Object.fromEntries(DIALECTS.filter((d) => d !== 'sqlite').map((d) => [d, { dialect: d, thread: true }])),
};

describe.each(Object.keys(VARIANTS))('usage sink on %s', (variant) => {
  const { dialect, thread } = VARIANTS[variant]!;
  async function setup(opts: Partial<ConstructorParameters<typeof StoreUsageSink>[1]> = {}) {
    const w = await world(dialect);
    const events: SinkEvent[] = [];
    const sink = new StoreUsageSink(w.store, { instance: 'test-1', flushIntervalMs: 100, minBackoffMs: 20, maxBackoffMs: 100, onEvent: (e) => events.push(e), writerThread: thread, ...opts });
    cleanups.push(() => w.store.close());
    cleanups.push(() => sink.close().catch(() => {}));
    return { w, sink, events };
  }

  it('writes one event per request, rollups equal to the raw events, credit charges and last use', async () => {
    const { w, sink } = await setup({ batchSize: 40 });
    const records = Array.from({ length: 100 }, () => record(w));
    for (const r of records) sink.add(r);
    await sink.flush();
    expect(sink.pending()).toBe(0);
    const c = await counts(w.store);
    expect(c.events).toBe(100);
    expect(c).toMatchObject({ rollupRequests: 100, rollupTokens: c.eventTokens, rollupCost: c.eventCost, rollupErrors: 10 });
    expect(c.eventTokens).toBe(records.reduce((s, r) => s + r.totalTokens, 0));
    const spent = records.reduce((s, r) => s + r.costMicros, 0);
    expect((await creditBalance(w.store.db, w.ctx, { type: 'user', id: w.userId })).balance).toBe(-spent);
    const charges = await w.store.db.select().from(w.store.t.creditLedger).where(eq(w.store.t.creditLedger.kind, 'charge'));
    expect(charges.length).toBe(3);
    const [key] = await w.store.db.select().from(w.store.t.apiKeys).where(eq(w.store.t.apiKeys.id, w.child.key.id));
    expect(key?.lastUsedAt?.getTime()).toBe(Math.max(...records.map((r) => r.ts)));
    const today = records.filter((r) => new Date(r.ts).toISOString().slice(0, 10) === new Date().toISOString().slice(0, 10));
    const used = await usedInWindow(w.store, { scopeType: 'key', scopeId: w.parent.key.id, keyIds: [w.parent.key.id, w.child.key.id], metric: 'tokens', window: 'day' }, Date.now());
    expect(used).toBe(today.reduce((s, r) => s + r.totalTokens, 0));
  });

  it('ignores a duplicate request id, in the same batch or a later one, without double counting', async () => {
    const { w, sink, events } = await setup();
    const a = record(w);
    const b = record(w);
    sink.add(a);
    sink.add(a);
    sink.add(b);
    await sink.flush();
    sink.add({ ...b, totalTokens: 999_999 });
    await sink.flush();
    const c = await counts(w.store);
    expect(c).toMatchObject({ events: 2, rollupRequests: 2, rollupTokens: a.totalTokens + b.totalTokens });
    expect((await creditBalance(w.store.db, w.ctx, { type: 'user', id: w.userId })).balance).toBe(-(a.costMicros + b.costMicros));
    expect(events.filter((e) => e.type === 'flushed').map((e) => e.type === 'flushed' && [e.inserted, e.duplicates])).toEqual([
      [2, 1],
      [0, 1],
    ]);
  });

  it('keeps every event while the store is down and writes them all when it is back', async () => {
    const { w, sink, events } = await setup({ maxBuffer: 50 });
    const records = Array.from({ length: 60 }, () => record(w));
    const down = await outage(dialect, w.store);
    for (const r of records.slice(0, 30)) sink.add(r);
    await expect(sink.flush()).rejects.toMatchObject({ code: 'store_unavailable' });
    for (const r of records.slice(30)) sink.add(r);
    expect(sink.pending()).toBe(60);
    expect(sink.accepting()).toBe(false);
    expect(events.some((e) => e.type === 'full')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((e) => e.type === 'error').length).toBeGreaterThan(1);
    await down.end();
    const start = Date.now();
    while (sink.pending() > 0 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(sink.pending()).toBe(0);
    expect(sink.accepting()).toBe(true);
    expect(events.some((e) => e.type === 'recovered')).toBe(true);
    const c = await counts(w.store);
    expect(c).toMatchObject({ events: 60, rollupRequests: 60, rollupTokens: records.reduce((s, r) => s + r.totalTokens, 0) });
  });

  it('hold(): writes what came before it, keeps what came after it until released', async () => {
    const { w, sink } = await setup({ flushIntervalMs: 20, batchSize: 3 });
    const early = Array.from({ length: 7 }, () => record(w));
    for (const r of early) sink.add(r);
    const hold = sink.hold();
    const late = Array.from({ length: 5 }, () => record(w));
    for (const r of late) sink.add(r);
    await hold.ready;
    // Batches of 3 stop at the cut (3 + 3 + 1), and no flush passes it while the hold stands.
    expect((await counts(w.store)).events).toBe(7);
    await new Promise((r) => setTimeout(r, 150));
    await sink.flush();
    expect((await counts(w.store)).events).toBe(7);
    expect(sink.pending()).toBe(5);
    // A second hold has its cut after the late records: ready once the first lets them go.
    const second = sink.hold();
    let secondReady = false;
    void second.ready.then(() => {
      secondReady = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(secondReady).toBe(false);
    hold.release();
    hold.release();
    await second.ready;
    expect((await counts(w.store)).events).toBe(12);
    second.release();
    // Given up before it was ready: rejected, and no unhandled rejection.
    sink.add(record(w));
    const abandoned = sink.hold();
    abandoned.release();
    await expect(abandoned.ready).rejects.toMatchObject({ code: 'store_unavailable' });
    await sink.flush();
    expect((await counts(w.store)).events).toBe(13);
    // Nothing waiting: ready at once.
    const idle = sink.hold();
    await idle.ready;
    idle.release();
  });

  it('hold(): a store that cannot be written rejects ready (the records stay), and close() writes past a hold', async () => {
    const { w, sink } = await setup({ flushIntervalMs: 60_000 });
    const down = await outage(dialect, w.store);
    for (let i = 0; i < 4; i++) sink.add(record(w));
    const hold = sink.hold();
    await expect(hold.ready).rejects.toMatchObject({ code: 'store_unavailable' });
    // While the failed write backs off, a new hold is refused at once.
    sink.add(record(w));
    const again = sink.hold();
    await expect(again.ready).rejects.toMatchObject({ code: 'store_unavailable' });
    hold.release();
    await down.end();
    const standing = sink.hold();
    standing.ready.catch(() => {});
    sink.add(record(w));
    await sink.close();
    expect((await counts(w.store)).events).toBe(6);
    standing.release();
    again.release();
  });

  it('hold(): a hold waiting behind another is written for as soon as that one is released, not a flush interval later', async () => {
    const { w, sink } = await setup({ flushIntervalMs: 5_000 });
    sink.add(record(w));
    const a = sink.hold();
    await a.ready;
    sink.add(record(w)); // settled while A's seed reads the store
    const b = sink.hold();
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    a.release();
    await b.ready;
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect((await counts(w.store)).events).toBe(2);
    b.release();
  });

  it('hold(): close() lets a standing hold finish before it writes past the cut', async () => {
    const { w, sink } = await setup({ flushIntervalMs: 60_000 });
    const h = sink.hold();
    await h.ready;
    sink.add(record(w));
    let closed = false;
    const closing = sink.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    // The seed behind the hold is still reading: nothing past its cut is written yet.
    expect(closed).toBe(false);
    expect((await counts(w.store)).events).toBe(0);
    h.release();
    await closing;
    expect((await counts(w.store)).events).toBe(1);
  });

  /**
   * Two records buffered while another connection holds the lock, a flush of them under way
   * (SQLite fails it at once: busy, retried later; Postgres waits for the lock), and a hold.
   */
  async function lockedWithHold() {
    const { w, sink } = await setup({ flushIntervalMs: 60_000, busy: (e) => (e as { code?: string }).code === 'SQLITE_BUSY' });
    const other = await writeLock(dialect, w.store);
    sink.add(record(w));
    sink.add(record(w));
    const flushing = sink.flush().catch(() => {});
    return { w, sink, other, flushing, h: sink.hold() };
  }

  it('hold(): waits through a store another connection holds locked instead of giving up', async () => {
    const { w, other, flushing, h } = await lockedWithHold();
    try {
      let outcome = 'waiting';
      h.ready.then(
        () => {
          outcome = 'ready';
        },
        () => {
          outcome = 'rejected';
        },
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(outcome).toBe('waiting');
      await other.release();
      const t0 = performance.now();
      await flushing;
      await h.ready;
      expect(performance.now() - t0).toBeLessThan(500);
      expect((await counts(w.store)).events).toBe(2);
      h.release();
    } finally {
      await other.release();
    }
  });

  it('close() while a seed waits behind a hold for a locked store: keeps retrying for it, and ends as soon as the lock goes', async () => {
    const { w, sink, other, flushing, h } = await lockedWithHold();
    try {
      // The seed: reads once its hold is ready (or given up), then releases it.
      const seeded = h.ready.catch(() => {}).then(() => h.release());
      await new Promise((r) => setTimeout(r, 20));
      const t0 = performance.now();
      const closing = sink.close();
      await new Promise((r) => setTimeout(r, 100));
      await other.release();
      await closing;
      await seeded;
      await flushing;
      // Before, close() stopped the retry the hold waited on and sat out the hold's 5 s.
      expect(performance.now() - t0).toBeLessThan(1_500);
      expect((await counts(w.store)).events).toBe(2);
    } finally {
      await other.release();
    }
  });

  it('flushes everything on close, with no explicit flush', async () => {
    const { w, sink } = await setup({ flushIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) sink.add(record(w));
    expect(sink.pending()).toBe(25);
    await sink.close();
    expect((await counts(w.store)).events).toBe(25);
  });

  it('writes 1,000 events in one flush (timing printed)', async () => {
    const { w, sink } = await setup({ batchSize: 1000, flushIntervalMs: 60_000 });
    for (let i = 0; i < 1000; i++) sink.add(record(w, { keyId: i % 2 ? w.child.key.id : w.parent.key.id }));
    const start = performance.now();
    await sink.flush();
    const ms = performance.now() - start;
    console.log(`[usage] ${variant}: 1,000 events flushed in one transaction in ${ms.toFixed(1)} ms`);
    expect((await counts(w.store)).events).toBe(1000);
  });
});

describe('usage sink on SQLite, closed while another connection holds the write lock', () => {
  it('gives up after closeTimeoutMs, then writes nothing more and arms no timer, whatever calls in late', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    let attempts = 0;
    const sink = new StoreUsageSink(w.store, {
      instance: 'test-1',
      flushIntervalMs: 60_000,
      closeTimeoutMs: 300,
      minBackoffMs: 20,
      maxBackoffMs: 50,
      busy: (e) => (e as { code?: string }).code === 'SQLITE_BUSY',
      onEvent: (e) => {
        if (e.type === 'error' || e.type === 'flushed') attempts++;
      },
    });
    const other = await writeLock('sqlite', w.store);
    try {
      sink.add(record(w));
      await expect(sink.close()).rejects.toMatchObject({ code: 'store_unavailable', message: expect.stringContaining('1 usage events') });
      const atClose = attempts;
      expect(atClose).toBeGreaterThan(0);
      // A seed starting late in shutdown (limits close after the sink) gets a hold: it is refused,
      // and does not start the busy retry again (before: a write attempt every 50 ms, for ever).
      const h = sink.hold();
      await expect(h.ready).rejects.toMatchObject({ code: 'store_unavailable' });
      await new Promise((r) => setTimeout(r, 400));
      expect(attempts).toBe(atClose);
      h.release();
      await other.release();
      await new Promise((r) => setTimeout(r, 100));
      expect(attempts).toBe(atClose);
      expect((await counts(w.store)).events).toBe(0);
    } finally {
      await other.release();
    }
  });
});

describe('the SQLite writer thread', () => {
  it('carries every field of a record across unchanged', () => {
    const r: UsageRecord = {
      requestId: 'req_1', ts: 1_700_000_000_001, orgId: 'org_1', userId: 'usr_1', keyId: 'key_1', ancestorKeyIds: ['key_0', 'key_00'],
      model: 'openai/gpt-4o', provider: 'openrouter', promptTokens: 11, completionTokens: 12, totalTokens: 23, costMicros: 14,
      status: 499, errorCode: 'aborted', latencyMs: 15.5, ttfbMs: 16, stream: true, usageSource: 'estimated', creditScopes: ['org:org_1', 'user:usr_1'],
    };
    const other: UsageRecord = { ...r, requestId: 'req_2', userId: null, ancestorKeyIds: [], errorCode: null, ttfbMs: null, stream: false, usageSource: 'none', creditScopes: [] };
    const flat = encodeRecords([r, other]);
    expect(flat.length).toBe(2 * RECORD_WIDTH);
    expect(decodeRecords(structuredClone(flat))).toEqual([r, other]);
    // Every field is distinct, so a swapped pair of positions would show above; and none is left out.
    expect(Object.keys(decodeRecords(flat)[0]!).sort()).toEqual(Object.keys(r).sort());
    expect(() => decodeRecords(flat.slice(1))).toThrow(/not whole records/);
  });

  it('is used for a SQLite file, and the event loop keeps turning while a big batch is written', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    expect(batchWriter(w.store).thread).toBeUndefined(); // in-thread unless asked for
    const write = batchWriter(w.store, { thread: true });
    cleanups.push(async () => write.close?.());
    expect(write.thread).toBe('worker');
    const records = Array.from({ length: 20_000 }, () => record(w));
    let last = performance.now();
    let maxGap = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 1);
    const start = performance.now();
    const result = await write(records, 'test-1', new Date());
    const ms = performance.now() - start;
    clearInterval(tick);
    expect(result).toEqual({ inserted: 20_000, duplicates: 0 });
    expect((await counts(w.store)).events).toBe(20_000);
    console.log(`[usage] sqlite writer thread: 20,000 events in ${ms.toFixed(0)} ms; longest event-loop gap meanwhile ${maxGap.toFixed(1)} ms`);
    // In-thread the loop would be blocked for the whole write; here only while the batch is copied over.
    expect(maxGap).toBeLessThan(ms / 2);
  });

  it('reports a failed batch as an error, keeps working after it, and starts afresh after close', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    const write = batchWriter(w.store, { thread: true });
    cleanups.push(async () => write.close?.());
    w.store.sqlite!.exec('create trigger no_more before insert on usage_events when new.model = \'refuse\' begin select raise(abort, \'refused by test\'); end');
    await expect(write([record(w), record(w, { model: 'refuse' })], 'test-1', new Date())).rejects.toMatchObject({ name: 'SqliteWriterError', message: expect.stringContaining('refused by test') });
    expect((await counts(w.store)).events).toBe(0); // the whole batch rolled back
    expect(await write([record(w)], 'test-1', new Date())).toEqual({ inserted: 1, duplicates: 0 });
    await write.close!();
    expect(await write([record(w)], 'test-1', new Date())).toEqual({ inserted: 1, duplicates: 0 });
    expect((await counts(w.store)).events).toBe(2);
  });

  it('rejects a batch it cannot even send, and answers the next one', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    let failRead = false;
    const write = sqliteWorkerWriter(w.store.display, () => {
      if (failRead) throw new Error('the store handle is closed');
      return 5000;
    }, async () => {
      throw new Error('not used');
    })!;
    cleanups.push(() => write.close());
    expect(await write([record(w)], 'test-1', new Date())).toEqual({ inserted: 1, duplicates: 0 });
    failRead = true;
    await expect(write([record(w)], 'test-1', new Date())).rejects.toThrow(/handle is closed/);
    failRead = false;
    expect(await write([record(w)], 'test-1', new Date())).toEqual({ inserted: 1, duplicates: 0 });
    expect((await counts(w.store)).events).toBe(2);
  });

  it('a sink on a database file that disappeared keeps its events and reports the failure', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    const events: SinkEvent[] = [];
    const sink = new StoreUsageSink(w.store, { instance: 'test-1', flushIntervalMs: 60_000, minBackoffMs: 10, maxBackoffMs: 20, closeTimeoutMs: 100, onEvent: (e) => events.push(e), writerThread: true });
    const dir = mkdtempSync(join(tmpdir(), 'gw-gone-'));
    // The writer opens its connection at the first write: point the store's path somewhere empty.
    const moved = join(dir, 'moved.db');
    renameSync(w.store.display, moved);
    sink.add(record(w));
    await expect(sink.flush()).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(sink.pending()).toBe(1);
    expect(events.some((e) => e.type === 'error')).toBe(true);
    renameSync(moved, w.store.display);
    await sink.flush();
    expect(sink.pending()).toBe(0);
    expect((await counts(w.store)).events).toBe(1);
    await sink.close();
  });
});
