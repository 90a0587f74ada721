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

type Pending = Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>;

/**
 * A BatchWriter for the SQLite file `file` on its own thread, or null when no worker script is
 * at hand. If a thread dies before it ever answered (it cannot start here: no threads, the addon
 * will not load in one), batches go to `inThread` from then on rather than fail forever.
 */
export function sqliteWorkerWriter(file: string, busyTimeoutMs: () => number, inThread: BatchWriter): WorkerBatchWriter | null {
  const script = workerScript();
  if (!script) return null;
  let current: { worker: Worker; pending: Pending } | null = null;
  let answered = false;
  let unusable = false;
  let seq = 0;

  const start = () => {
    const worker = new Worker(script, { workerData: { file } });
    // Each thread answers only its own batches: a dead one's late 'exit' must not fail a new one's.
    const pending: Pending = new Map();
    const self = { worker, pending };
    worker.on('message', (m: WriteReply) => {
      answered = true;
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (pending.size === 0) worker.unref(); // idle: it must not keep the process alive
      if (!p) return;
      if (m.ok) p.resolve(m.result);
      else p.reject(new SqliteWriterError(m.message, m.code));
    });
    const gone = (err: Error) => {
      if (current === self) current = null;
      if (!answered) unusable = true;
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    };
    worker.on('error', (err) => gone(err instanceof Error ? err : new Error(String(err))));
    worker.on('exit', (code) => gone(new Error(`the SQLite writer thread exited (code ${code})`)));
    return self;
  };

  const write = (records: readonly UsageRecord[], instance: string, now: Date): Promise<BatchResult> => {
    if (!records.length) return Promise.resolve({ inserted: 0, duplicates: 0 });
    if (unusable) return inThread(records, instance, now);
    let request: WriteRequest;
    try {
      // Everything that can throw comes before the thread is held for an answer.
      request = { id: ++seq, rows: encodeRecords(records), instance, now: now.getTime(), busyTimeoutMs: busyTimeoutMs() };
    } catch (err) {
      return Promise.reject(err);
    }
    current ??= start();
    const { worker, pending } = current;
    return new Promise<BatchResult>((resolve, reject) => {
      pending.set(request.id, { resolve, reject });
      worker.ref(); // a batch in flight keeps the process alive until it is answered
      try {
        worker.postMessage(request);
      } catch (err) {
        pending.delete(request.id);
        if (pending.size === 0) worker.unref();
        reject(err);
      }
    });
  };
  return Object.assign(write, {
    thread: 'worker' as const,
    async close() {
      const c = current;
      current = null;
      if (c) await c.worker.terminate(); // its 'exit' fails whatever it still had
    },
  });
}
