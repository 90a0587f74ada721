// Counters in Redis, shared by every proxy instance. Reserve and settle are one Lua script each
// (redis-scripts.ts), so limits hold across instances exactly as they do in one process.
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { GatewayError } from '../errors.js';
import { amountFor, bucketOf, calendarResetAt, counterState, denial, minBucket, rollingEmptyAt } from './accounting.js';
import { ADD_IF_EXISTS_LUA, ADD_ROLLING_LUA, REFRESH_LUA, RESERVE_LUA, SETTLE_LUA } from './redis-scripts.js';
import type { Admission, Amounts, CounterRef, CounterSeeder, CounterState, LimitBackend, Reservation, ReserveOptions } from './types.js';
import { BUCKET_MS, calendarEnd, effectiveSince, isRolling, ROLLING_MS, rollingFreeAt } from './windows.js';

export interface RedisLimitOptions {
  url: string;
  /** Key prefix, to share one Redis between gateways or tests (default 'gw:'). */
  prefix?: string;
  /** Seeds a calendar/total counter whose key is absent (first use, or an emptied Redis). */
  seeder?: CounterSeeder;
  /**
   * How long an unsettled reservation keeps counting before it expires (default 15 min): what a
   * crashed instance's reservations hold. A request still running is refreshed by its instance
   * every third of this, for up to MAX_HELD_MS.
   */
  reservationTtlMs?: number;
  /** Per-command timeout (default 1000 ms); past it the call fails as unavailable. */
  commandTimeoutMs?: number;
  /**
   * Longest the client may sit with its socket open but no answer to its handshake (a frozen
   * server, a partition after the TCP connect) before it starts over (default 5000 ms).
   */
  stuckMs?: number;
}

type Reply = (number | string)[];

/** Longest a running request's reservation is kept alive by its instance (a day). */
const MAX_HELD_MS = 86_400_000;
/** A charge for a key (see addIfExists); `added` once it has been, by whichever seed collected it first. */
type Charged = { counter: CounterRef; since: number; used: number; added?: boolean };
type Collected = Charged[];
const rollingTtl = (c: CounterRef) => ROLLING_MS[c.window]! + BUCKET_MS[c.window]! + 60_000;
const shas = new Map<string, string>();
/** A script's SHA1 for EVALSHA, hashed once per script (a hash per command was ~3% of the proxy's CPU). */
function sha1(script: string): string {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  return sha;
}

// Random per process, then a counter: unique across instances and restarts as 32 random bits a
// reservation would be, without a call into the CSPRNG per request (~3% of the proxy's CPU).
const reservationPrefix = randomBytes(4).toString('hex');
let reservationSeq = 0;
/** A request's reservation id in Redis: unique even if a request id comes twice. */
export const reservationIdFor = (requestId: string) => `${requestId}:${reservationPrefix}${(reservationSeq++).toString(36)}`;

export class RedisLimitBackend implements LimitBackend {
  readonly client: Redis;
  private readonly prefix: string;
  /** Per counter being seeded by this process, one list per seed in flight: charges made meanwhile. */
  private readonly collecting = new Map<string, Set<Collected>>();
  private readonly ttl: number;
  private readonly listeners = new Set<(ready: boolean) => void>();
  /** The server's epoch marker as last seen: a different one means Redis came back empty. */
  private epoch: string | null = null;
  private readonly watchdog: NodeJS.Timeout;
  private probing = false;
  /**
   * Reservations made here and not settled yet (request id → its counters, when it was made).
   * A request may run longer than the reservation TTL (a long stream, a slow reasoning model):
   * its reservation is refreshed every third of the TTL, so it never expires while the request
   * runs and the room stays taken; only a crashed instance's reservations expire.
   */
  private readonly open = new Map<string, { counters: readonly CounterRef[]; at: number; wall: number }>();
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(private readonly opts: RedisLimitOptions) {
    this.prefix = opts.prefix ?? 'gw:';
    this.ttl = opts.reservationTtlMs ?? 15 * 60_000;
    // Fail fast while disconnected instead of queueing: the caller applies the failure mode.
    this.client = new Redis(opts.url, {
      enableOfflineQueue: false,
      // A command whose connection was lost has already failed here (and its settlement is
      // replayed by the failover backend): ioredis sending it again on the next connection
      // would count it twice.
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      // The commands of every request issued in one turn of the event loop leave in one socket
      // write (each still has its own reply, timeout and failure): under load, ~12% less CPU a
      // request than one write per command. Only while connected; otherwise nothing is queued.
      enableAutoPipelining: true,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    });
    this.client.on('error', () => {});
    this.client.on('ready', () => {
      // Remember the first epoch at once; later ones are compared by epochChanged().
      if (this.epoch === null) void this.epochChanged().catch(() => {});
      this.emit(true);
    });
    this.client.on('close', () => this.emit(false));
    // ioredis's connectTimeout covers the TCP connect only: a socket that connects and then
    // hears nothing (a frozen server, a partition) would wait in 'connect' for ever.
    const stuckMs = opts.stuckMs ?? 5_000;
    let status = this.client.status;
    let since = Date.now();
    this.watchdog = setInterval(() => {
      const now = Date.now();
      if (this.client.status !== status) {
        status = this.client.status;
        since = now;
      } else if ((status === 'connect' || status === 'connecting') && now - since > stuckMs) {
        since = now;
        this.client.disconnect(true);
      }
    }, Math.min(1_000, stuckMs));
    this.watchdog.unref();
  }

  /** Whether lost calendar/total counters are seeded again from the store. */
  get seeded(): boolean {
    return this.opts.seeder !== undefined;
  }

  /** Whether commands can be sent now. */
  ready(): boolean {
    return this.client.status === 'ready';
  }

  /** Resolves once connected (or rejects after `timeoutMs`). */
  async waitReady(timeoutMs = 5000): Promise<void> {
    const start = Date.now();
    while (!this.ready()) {
      if (Date.now() - start > timeoutMs) throw new GatewayError('unavailable', `Redis at ${this.opts.url} is not reachable`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Called with true when Redis becomes reachable, false when the connection drops. */
  onStateChange(listener: (ready: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async reserve(requestId: string, counters: readonly CounterRef[], amounts: Amounts, now: number, opts?: ReserveOptions): Promise<Admission> {
    const id = opts?.reservationId ?? reservationIdFor(requestId);
    const reply = await this.run('reserve', id, counters, amounts, now, opts?.failureMode ?? 'closed');
    if (reply[0] === 0) {
      const i = Number(reply[1]) - 1;
      const c = counters[i]!;
      return denial(c, Number(reply[2]), amountFor(c, amounts), this.freeAt(c, reply, amounts, now), now);
    }
    const n = counters.length;
    this.hold(id, counters, now);
    return {
      ok: true,
      id,
      counters,
      reserved: { ...amounts },
      reservedAt: now,
      states: counters.map((c, i) => this.state(c, Number(reply[i + 1]) + amountFor(c, amounts), now, Number(reply[n + i + 1]))),
    };
  }

  async settle(reservation: Reservation, actual: Amounts, now: number): Promise<readonly CounterState[]> {
    // No longer refreshed: settled now, or (Redis unreachable) replayed later by the failover
    // backend, the reservation expiring meanwhile as a crashed instance's would.
    this.release(reservation.id);
    const { counters, reservedAt } = reservation;
    const keys = [`${this.prefix}done:${reservation.id}`];
    const args: (string | number)[] = [reservation.id, this.ttl * 2, counters.length, this.opts.seeder ? 0 : 1, now];
    for (const c of counters) {
      keys.push(...this.keysOf(c, reservedAt));
      const rolling = isRolling(c.window);
      args.push(
        rolling ? 'r' : 'c',
        amountFor(c, actual),
        rolling ? bucketOf(c, reservedAt) : 0,
        rolling ? 0 : this.expireAt(c, reservedAt),
        rolling ? rollingTtl(c) : 0,
        amountFor(c, reservation.reserved),
        rolling ? minBucket(c, now) : 0,
      );
    }
    // The counters as they stand after the settlement, read in the same script (as peek reads
    // them: the window of `now`, which past midnight or a quota reset is not the one settled;
    // only then are its keys sent too).
    const reading: string[] = [];
    let moved = false;
    for (const c of counters) {
      const k = this.keysOf(c, now);
      if (k[0] !== keys[reading.length + 1]) moved = true;
      reading.push(...k);
    }
    if (moved) keys.push(...reading);
    const reply = await this.eval(SETTLE_LUA, keys, args);
    const n = counters.length;
    // Keys this settlement found missing (Redis restarted empty, or flushed, while the request
    // ran): its amount was left out, as the store will hold it. But its usage event is recorded
    // only after this settlement, so a seed made now (by the peek below, or by anyone before the
    // event is flushed) cannot hold it: it is added once such a seed is in. The usage of a
    // request in flight across a Redis restart was lost from the shared counter.
    const skipped: CounterRef[] = [];
    for (let i = 0; i < n; i++) if (Number(reply[2 * n + i + 2]) === 1) skipped.push(counters[i]!);
    if (skipped.length > 0) {
      await this.peek(skipped, now);
      await this.charge(skipped, actual, reservedAt, now);
      return this.peek(counters, now);
    }
    // A counter of the current window not in Redis yet: peek seeds it, and reads it then.
    if (reply[1] !== 0) return this.peek(counters, now);
    return counters.map((c, i) => this.state(c, Number(reply[i + 2]), now, Number(reply[n + i + 2])));
  }

  /**
   * A request admitted before these counters existed, settled now: calendar and total windows
   * take it in the window it was admitted in (collected if being seeded), rolling windows in its
   * bucket while that is still in the window.
   */
  async charge(counters: readonly CounterRef[], actual: Amounts, at: number, now: number): Promise<void> {
    const items: Charged[] = [];
    const rollingKeys: string[] = [];
    const rollingArgs: number[] = [];
    for (const c of counters) {
      const used = amountFor(c, actual);
      if (used === 0) continue;
      if (isRolling(c.window)) {
        // Into the bucket it was admitted in, while that bucket is still in the window (and
        // after the counter's quota reset, if any); rolling windows are never seeded.
        const idx = bucketOf(c, at);
        if (idx < Math.max(minBucket(c, now), Math.ceil((c.since ?? 0) / BUCKET_MS[c.window]!))) continue;
        rollingKeys.push(this.keysOf(c, now)[0]);
        rollingArgs.push(idx, used, rollingTtl(c));
        continue;
      }
      const since = effectiveSince(c.window, c.since, at);
      // Admitted before the counter's quota reset: the store dates the request before it too
      // (its event is dated at admission), so the new window does not count it (as in memory).
      if (at < since) continue;
      const item: Charged = { counter: c, since, used };
      // Being seeded by this process: added once its seed is in (see seed()).
      const lists = this.collecting.get(c.id);
      if (lists) for (const list of lists) list.push(item);
      else items.push(item);
    }
    if (rollingKeys.length) await this.eval(ADD_ROLLING_LUA, rollingKeys, [0, ...rollingArgs]);
    await this.addIfExists(items);
  }

  async peek(counters: readonly CounterRef[], now: number): Promise<readonly CounterState[]> {
    const reply = await this.run('peek', 'peek', counters, { requests: 0, tokens: 0, cost: 0 }, now, 'open');
    return counters.map((c, i) => this.state(c, Number(reply[i + 1]), now, Number(reply[counters.length + i + 1])));
  }

  /** Zeroes a counter: committed usage and in-flight reservations, in every window. */
  async reset(counterId: string, _now: number): Promise<void> {
    const glob = counterId.replace(/[*?[\]\\]/g, '\\$&');
    const doomed = ['r', 'pz', 'ph'].map((k) => `${this.prefix}${k}:${counterId}`);
    for (const kind of ['c', 'pz', 'ph']) {
      let cursor = '0';
      do {
        const [next, found] = await this.call(() => this.client.scan(cursor, 'MATCH', `${this.prefix}${kind}:${glob}:*`, 'COUNT', 500));
        cursor = next;
        doomed.push(...found);
      } while (cursor !== '0');
    }
    await this.call(() => this.client.del(...doomed));
  }

  /**
   * How far `now()` is from Redis's own clock, in ms (positive: this instance runs ahead), halfway
   * through the round trip. Rolling windows are cut by each instance's clock: instances whose
   * clocks disagree by s seconds see windows s seconds apart, and one running ahead drops the
   * others' oldest buckets (see the README on clock skew).
   */
  async clockSkewMs(now: () => number = Date.now): Promise<number> {
    const before = now();
    const [sec, usec] = await this.call(() => this.client.time());
    const after = now();
    return (before + after) / 2 - (Number(sec) * 1000 + Number(usec) / 1000);
  }

  /**
   * Whether Redis lost its data since this process last looked (restart without persistence,
   * FLUSHALL, eviction): every instance shares one random epoch key set NX, so an instance that
   * finds a different value knows the counters were emptied, whoever reconnected first.
   */
  async epochChanged(): Promise<boolean> {
    const key = `${this.prefix}epoch`;
    const replies = await this.call(() => this.client.multi().set(key, randomBytes(8).toString('hex'), 'NX').get(key).exec());
    const now = String(replies?.[1]?.[1] ?? '');
    const changed = this.epoch !== null && this.epoch !== now;
    this.epoch = now;
    return changed;
  }

  /**
   * Adds a fallback period's rolling-window usage (this instance's requests while Redis was out)
   * to the shared windows, bucket by bucket, for the buckets still in their window.
   */
  async addRolling(items: readonly { counter: CounterRef; buckets: readonly [number, number][] }[], now: number): Promise<void> {
    const keys: string[] = [];
    const args: number[] = [1];
    for (const { counter: c, buckets } of items) {
      const min = minBucket(c, now);
      for (const [idx, amount] of buckets) {
        if (idx < min) continue;
        keys.push(this.keysOf(c, now)[0]);
        args.push(idx, amount, rollingTtl(c));
      }
    }
    if (keys.length) await this.eval(ADD_ROLLING_LUA, keys, args);
  }

  /** Adds usage counted elsewhere (a fallback period) to calendar/total keys that exist. */
  async addIfExists(items: readonly { counter: CounterRef; since: number; used: number }[]): Promise<void> {
    if (!items.length) return;
    const keys = items.map((x) => `${this.prefix}c:${x.counter.id}:${x.since}`);
    await this.eval(ADD_IF_EXISTS_LUA, keys, items.map((x) => x.used));
  }

  /** Reservations of requests still running here (for tests). */
  get held(): number {
    return this.open.size;
  }

  private hold(id: string, counters: readonly CounterRef[], at: number): void {
    if (!counters.some((c) => !isRolling(c.window))) return; // rolling windows hold nothing pending
    this.open.set(id, { counters, at, wall: Date.now() });
    if (this.heartbeat === null) {
      this.heartbeat = setInterval(() => void this.refresh().catch(() => {}), Math.max(100, Math.floor(this.ttl / 3)));
      this.heartbeat.unref();
    }
  }

  /**
   * Stops refreshing a reservation (its request is over): called by settle(), and by the
   * failover backend when it keeps a settlement for later, so that a settlement it must drop
   * (its queue full, or Redis back empty) leaves the reservation to expire as a crashed
   * instance's would, not refreshed for a day.
   */
  release(id: string): void {
    if (!this.open.delete(id) || this.open.size > 0 || this.heartbeat === null) return;
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Gives every reservation still held here a new expiry (one script for all of them). */
  private async refresh(): Promise<void> {
    if (this.open.size === 0 || !this.ready()) return;
    const wall = Date.now();
    const keys: string[] = [];
    const ids: string[] = [];
    for (const [id, r] of this.open) {
      if (wall - r.wall > MAX_HELD_MS) {
        this.release(id);
        continue;
      }
      for (const c of r.counters) {
        if (isRolling(c.window)) continue;
        const [, pz, ph] = this.keysOf(c, r.at);
        keys.push(pz, ph);
        ids.push(id);
      }
    }
    if (keys.length) await this.eval(REFRESH_LUA, keys, [wall + this.ttl, this.ttl * 2, ...ids]);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    clearInterval(this.watchdog);
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.client.disconnect();
  }

  private async run(mode: 'reserve' | 'peek', id: string, counters: readonly CounterRef[], amounts: Amounts, now: number, failureMode: 'closed' | 'open'): Promise<Reply> {
    let allowMissing = !this.opts.seeder;
    for (let attempt = 0; ; attempt++) {
      const keys: string[] = [];
      const args: (string | number)[] = [mode, now, id, now + this.ttl, this.ttl * 2, counters.length];
      for (const c of counters) {
        keys.push(...this.keysOf(c, now));
        const rolling = isRolling(c.window);
        args.push(
          rolling ? 'r' : 'c',
          c.max,
          amountFor(c, amounts),
          rolling ? minBucket(c, now) : allowMissing ? 1 : 0,
          rolling ? bucketOf(c, now) : 0,
          rolling ? rollingTtl(c) : 0,
        );
      }
      const reply = await this.eval(RESERVE_LUA, keys, args);
      if (reply[0] !== -1) return reply;
      try {
        await this.seed(reply.slice(1).map((i) => counters[Number(i) - 1]!), now);
      } catch (cause) {
        if (failureMode === 'closed') throw new GatewayError('store_unavailable', 'usage counters cannot be seeded: the store is unreachable', { cause });
        allowMissing = true;
      }
      if (attempt >= 1) allowMissing = true;
    }
  }

  private async seed(counters: readonly CounterRef[], now: number): Promise<void> {
    // Charges from now on are in no seed read below (see charge()): collected, and added once
    // the key exists (whether this process's SET NX won or another instance's).
    const lists = counters.map((c) => this.collect(c.id));
    try {
      await this.setSeeds(counters, now);
    } finally {
      counters.forEach((c, i) => {
        this.uncollect(c.id, lists[i]!);
      });
    }
    // Seeded (by this SET NX or another's): the charges go in, each once, though a charge made
    // while two seeds of one counter were read is in both lists. A seed that failed adds
    // nothing: another seed in flight adds what it collected, or a later seed reads the events.
    const late: Charged[] = [];
    for (const list of lists) {
      for (const x of list) {
        if (x.added) continue;
        x.added = true;
        late.push(x);
      }
    }
    await this.addIfExists(late);
  }

  private collect(id: string): Collected {
    const list: Collected = [];
    let lists = this.collecting.get(id);
    if (!lists) {
      lists = new Set();
      this.collecting.set(id, lists);
    }
    lists.add(list);
    return list;
  }

  private uncollect(id: string, list: Collected): void {
    const lists = this.collecting.get(id);
    if (!lists) return;
    lists.delete(list);
    if (lists.size === 0) this.collecting.delete(id);
  }

  private async setSeeds(counters: readonly CounterRef[], now: number): Promise<void> {
    const seeds = await Promise.all(counters.map((c) => this.opts.seeder!(c, now)));
    await this.call(() => {
      const m = this.client.multi();
      counters.forEach((c, i) => {
        const key = this.keysOf(c, now)[0]!;
        const at = this.expireAt(c, now);
        // NX: another instance may have seeded (and counted on) this key meanwhile.
        if (at > 0) m.set(key, seeds[i]!, 'PXAT', at, 'NX');
        else m.set(key, seeds[i]!, 'NX');
      });
      return m.exec();
    });
  }

  /** Calendar/total keys carry their window start, so a new day or a quota reset starts from fresh keys. */
  private keysOf(c: CounterRef, at: number): [string, string, string] {
    const window = isRolling(c.window) ? c.id : `${c.id}:${effectiveSince(c.window, c.since, at)}`;
    return [`${this.prefix}${isRolling(c.window) ? 'r' : 'c'}:${window}`, `${this.prefix}pz:${window}`, `${this.prefix}ph:${window}`];
  }

  /** Calendar keys outlive their window by a day, so a late settlement still lands; total keys never expire. */
  private expireAt(c: CounterRef, at: number): number {
    const end = c.metric === 'credits' ? null : calendarEnd(c.window, at);
    return end === null ? 0 : end + 86_400_000;
  }

  /**
   * A counter's state from what a script read: a rolling window empties one window after its
   * newest bucket holding anything (`newest`, -1 for none), as in memory; taking the current
   * bucket for the newest put every reset one whole window from now.
   */
  private state(c: CounterRef, used: number, now: number, newest: number): CounterState {
    if (!isRolling(c.window)) return counterState(c, used, calendarResetAt(c, now));
    return counterState(c, used, rollingEmptyAt(c, used > 0 && newest >= 0 ? newest : null));
  }

  private freeAt(c: CounterRef, reply: Reply, amounts: Amounts, now: number): number | null {
    if (!isRolling(c.window)) return calendarResetAt(c, now);
    const buckets: [number, number][] = [];
    for (let j = 4; j + 1 < reply.length; j += 2) buckets.push([Number(reply[j]), Number(reply[j + 1])]);
    return rollingFreeAt(buckets, Number(reply[3]), amountFor(c, amounts), c.max, c.window);
  }

  private async eval(script: string, keys: string[], args: (string | number)[]): Promise<Reply> {
    const sha = sha1(script);
    return this.call(async () => {
      try {
        return (await this.client.evalsha(sha, keys.length, ...keys, ...args)) as Reply;
      } catch (err) {
        if (!String(err).includes('NOSCRIPT')) throw err;
        return (await this.client.eval(script, keys.length, ...keys, ...args)) as Reply;
      }
    });
  }

  /** Connection problems become GatewayError('unavailable'); script errors are bugs and pass through. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Error && err.name === 'ReplyError') throw err;
      if (err instanceof Error && err.message === 'Command timed out') this.probe();
      throw new GatewayError('unavailable', 'the shared limit counters (Redis) are unreachable', { cause: err });
    }
  }

  /**
   * After a command timed out: is the connection still answering? A connection that stopped
   * answering without closing (a partition, a frozen server) would time out every command for
   * as long as the kernel keeps it, so when a PING times out too, a new one is started (ioredis
   * ends this one, destroying it if it does not close, and reconnects). A Redis that is only
   * slow answers the PING once the slow command is done, and keeps its connection.
   */
  private probe(): void {
    if (this.probing || this.client.status !== 'ready') return;
    this.probing = true;
    this.client
      .ping()
      .catch((err: unknown) => {
        if (err instanceof Error && err.message === 'Command timed out' && this.client.status === 'ready') this.client.disconnect(true);
      })
      .finally(() => {
        this.probing = false;
      });
  }

  private emit(ready: boolean): void {
    for (const l of this.listeners) l(ready);
  }
}
