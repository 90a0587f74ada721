// The SQLite usage writer's thread (see sqlite-writer.ts): its own connection to the store's
// file, the same prepared batch as in-thread (sqlite-batch.ts), one BEGIN IMMEDIATE
// transaction per batch. Every message gets one answer, the result or the error.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { decodeRecords } from './record-codec.js';
import { sqliteBatchWriter } from './sqlite-batch.js';
import type { WriteReply, WriteRequest } from './sqlite-writer.js';

const { file } = workerData as { file: string };
const port = parentPort!;

let db: Database.Database | null = null;
let batch: ((rows: readonly unknown[], instance: string, now: Date) => ReturnType<ReturnType<typeof sqliteBatchWriter>>) | null = null;
let busyTimeoutMs = -1;

/** Opened at the first write, and again after a failure closed it: an open failure is that write's failure. */
function connection(): NonNullable<typeof batch> {
  if (db && batch) return batch;
  const handle = new Database(file, { fileMustExist: true });
  try {
    handle.pragma('journal_mode = WAL');
    handle.pragma('foreign_keys = ON');
    handle.pragma('synchronous = NORMAL');
    const write = sqliteBatchWriter(handle);
    const tx = handle.transaction((records: ReturnType<typeof decodeRecords>, instance: string, now: Date) => write(records, instance, now));
    batch = (rows, instance, now) => tx.immediate(decodeRecords(rows), instance, now);
  } catch (err) {
    handle.close();
    throw err;
  }
  db = handle;
  busyTimeoutMs = -1;
  return batch;
}

port.on('message', (m: WriteRequest) => {
  let reply: WriteReply;
  try {
    const write = connection();
    // The store's own busy timeout, as the in-thread writer would wait.
    if (m.busyTimeoutMs !== busyTimeoutMs) {
      db!.pragma(`busy_timeout = ${Math.max(0, Math.floor(m.busyTimeoutMs))}`);
      busyTimeoutMs = m.busyTimeoutMs;
    }
    reply = { id: m.id, ok: true, result: write(m.rows, m.instance, new Date(m.now)) };
  } catch (err) {
    const e = err as { message?: unknown; code?: unknown };
    reply = { id: m.id, ok: false, message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : null };
    // A busy or locked store, or a constraint, leaves the connection sound; anything else (I/O,
    // the file gone or replaced, a bad batch) is answered with a fresh connection next time.
    if (db && !(typeof e?.code === 'string' && /^SQLITE_(BUSY|LOCKED|CONSTRAINT)/.test(e.code))) {
      db.close();
      db = null;
      batch = null;
    }
  }
  port.postMessage(reply);
});
