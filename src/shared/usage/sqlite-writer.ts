// SQLite usage batches written on a thread of their own. A batch of 500 events is ~5–10 ms of
// SQLite work (four B-trees a row, the rollups, the credit ledger, the WAL), and on the
// proxy's event loop every request in flight waited for it: ~10–20 µs of the loop's time per
// request, and a stall in the latency tail every batch. The thread has its own connection to
// the same file (WAL: the proxy's reads never wait for it; writers take turns on SQLite's lock
// within the busy timeout), so the loop only copies the batch over (~1 µs a record).
//
// Failures keep StoreUsageSink's contract: a batch that fails rejects, and the sink keeps its
// records and retries. A thread that dies fails what it had and is started afresh next time.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodeRecords } from './record-codec.js';
import type { UsageRecord } from './types.js';
import type { BatchResult, BatchWriter } from './write-batch.js';

export interface WriteRequest {
  id: number;
  rows: unknown[];
  instance: string;
  now: number;
  busyTimeoutMs: number;
}

export type WriteReply = { id: number; ok: true; result: BatchResult } | { id: number; ok: false; message: string; code: string | null };

/** An error the writer thread reported, with SQLite's code (SQLITE_BUSY, …) when it had one. */
export class SqliteWriterError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'SqliteWriterError';
  }
}

/**
 * The compiled worker script next to this module. Run from the TypeScript sources (the test
 * suite, which builds first), that is the built twin under dist/. null when there is none.
 */
export function workerScript(): URL | null {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL(here.replace(/\/src\/shared\/usage\/[^/]+\.ts$/, '/dist/shared/usage/sqlite-worker.js')) : new URL('./sqlite-worker.js', here);
  return existsSync(fileURLToPath(url)) ? url : null;
}

export type WorkerBatchWriter = BatchWriter & { readonly thread: 'worker'; close(): Promise<void> };

/** A BatchWriter for the SQLite file `file` on its own thread, or null when no worker script is at hand. */
export function sqliteWorkerWriter(file: string, busyTimeoutMs: () => number): WorkerBatchWriter | null {
  const script = workerScript();
  if (!script) return null;
  let worker: Worker | null = null;
  let seq = 0;
  const pending = new Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>();

  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const start = (): Worker => {
    const w = new Worker(script, { workerData: { file } });
    w.on('message', (m: WriteReply) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (pending.size === 0) w.unref(); // idle: it must not keep the process alive
      if (m.ok) p.resolve(m.result);
      else p.reject(new SqliteWriterError(m.message, m.code));
    });
    const gone = (err: Error) => {
      if (worker === w) worker = null;
      failAll(err);
    };
    w.on('error', (err) => gone(err instanceof Error ? err : new Error(String(err))));
    w.on('exit', (code) => gone(new Error(`the SQLite writer thread exited (code ${code})`)));
    return w;
  };

  const write = (records: readonly UsageRecord[], instance: string, now: Date): Promise<BatchResult> => {
    if (!records.length) return Promise.resolve({ inserted: 0, duplicates: 0 });
    worker ??= start();
    const w = worker;
    w.ref(); // a batch in flight keeps the process alive until it is answered
    const id = ++seq;
    return new Promise<BatchResult>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      const request: WriteRequest = { id, rows: encodeRecords(records), instance, now: now.getTime(), busyTimeoutMs: busyTimeoutMs() };
      w.postMessage(request);
    });
  };
  return Object.assign(write, {
    thread: 'worker' as const,
    async close() {
      const w = worker;
      worker = null;
      if (w) await w.terminate();
      failAll(new Error('the SQLite writer thread was closed'));
    },
  });
}
