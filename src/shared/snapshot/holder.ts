// Holds the current snapshot and keeps it fresh: polls config_version (≤ 1 s by default) and,
// on Postgres, also LISTENs on the channel recordChange() notifies, so a change lands at once.
// A failed reload keeps the last good snapshot and is reported through health().
import type pg from 'pg';
import type { Store } from '../db/store.js';
import { CONFIG_CHANNEL } from '../services/audit.js';
import { loadSnapshot } from './load.js';
import type { Snapshot } from './types.js';

export interface SnapshotHolderOptions {
  store: Store;
  masterKey: Buffer;
  /** How often config_version is read, ms (default 1000). */
  pollMs?: number;
  /** LISTEN for pushes on Postgres (default true). */
  listen?: boolean;
  onReload?: (snapshot: Snapshot) => void;
  /**
   * A version check or reload failed; the last good snapshot stays in use. `stage` says where:
   * reading config_version (the store did not answer the simplest query: an outage), loading the
   * configuration (the store answered, or stopped answering midway), or listening for pushes.
   */
  onError?: (err: unknown, stage: 'version' | 'load' | 'listen') => void;
  now?: () => number;
}

export interface SnapshotHealth {
  version: number;
  loadedAt: number;
  /** Last time the store confirmed the snapshot is current (version read or reload). */
  checkedAt: number;
  /** ms since checkedAt: how stale the snapshot may be. */
  ageMs: number;
  lastError: string | null;
  lastErrorAt: number | null;
  listening: boolean;
}

export class SnapshotHolder {
  private snapshot: Snapshot;
  private checkedAt: number;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private again = false;
  private listener: pg.PoolClient | null = null;
  private closed = false;
  private connecting = false;
  private readonly now: () => number;

  private constructor(
    private readonly opts: SnapshotHolderOptions,
    first: Snapshot,
  ) {
    this.snapshot = first;
    this.now = opts.now ?? Date.now;
    this.checkedAt = this.now();
  }

  /** Loads the first snapshot (throws if it cannot: the proxy must not open its port without one) and starts watching. */
  static async start(opts: SnapshotHolderOptions): Promise<SnapshotHolder> {
    const holder = new SnapshotHolder(opts, await loadSnapshot(opts.store, opts.masterKey));
    holder.timer = setInterval(() => void holder.refresh(), opts.pollMs ?? 1000);
    holder.timer.unref();
    if (opts.listen !== false && opts.store.pool) await holder.listen(opts.store.pool);
    return holder;
  }

  current(): Snapshot {
    return this.snapshot;
  }

  health(): SnapshotHealth {
    const now = this.now();
    return {
      version: this.snapshot.version,
      loadedAt: this.snapshot.loadedAt,
      checkedAt: this.checkedAt,
      ageMs: now - this.checkedAt,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      listening: this.listener !== null,
    };
  }

  /** Reads config_version and reloads if it moved. Concurrent calls coalesce into one more check. */
  refresh(force = false): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = this.check(force).finally(() => {
      this.inFlight = null;
      if (this.again && !this.closed) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.inFlight;
  }

  private async check(force: boolean): Promise<void> {
    const { store, masterKey } = this.opts;
    let stage: 'version' | 'load' = 'version';
    try {
      let row: { version: number | string } | undefined;
      try {
        [row] = await store.db.select({ version: store.t.configVersion.version }).from(store.t.configVersion).limit(1);
      } catch (err) {
        // The store does not answer: the LISTEN connection may be as lost as the one that
        // failed (a partition resets nothing), and would then wait for pushes forever. Drop it;
        // the next successful poll listens again on a fresh connection.
        if (this.listener) this.dropListener(this.listener);
        throw err;
      }
      const version = Number(row?.version ?? 0);
      stage = 'load';
      if (force || version !== this.snapshot.version) {
        const next = await loadSnapshot(store, masterKey);
        if (this.closed) return;
        this.snapshot = next;
        this.opts.onReload?.(next);
      }
      this.checkedAt = this.now();
      this.lastError = null;
      const { pool } = store;
      if (pool && this.opts.listen !== false && !this.listener && !this.connecting && !this.closed) void this.listen(pool);
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      this.lastErrorAt = this.now();
      this.opts.onError?.(err, stage);
    }
  }

  private async listen(pool: pg.Pool): Promise<void> {
    try {
      this.connecting = true;
      const client = await pool.connect();
      client.on('notification', (msg) => {
        if (msg.channel === CONFIG_CHANNEL) void this.refresh();
      });
      client.on('error', () => this.dropListener(client));
      await client.query(`listen ${CONFIG_CHANNEL}`);
      if (this.closed) client.release();
      else this.listener = client;
    } catch (err) {
      // Polling still covers every change; a later successful poll retries the LISTEN.
      this.opts.onError?.(err, 'listen');
    } finally {
      this.connecting = false;
    }
  }

  private dropListener(client: pg.PoolClient): void {
    if (this.listener !== client) return;
    this.listener = null;
    client.release(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight?.catch(() => {});
    const l = this.listener;
    this.listener = null;
    if (l) {
      await l.query(`unlisten ${CONFIG_CHANNEL}`).catch(() => {});
      l.release();
    }
  }
}
