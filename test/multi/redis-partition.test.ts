// Redis lost without a reset (a partition, a frozen server): the connection stays open and
// nothing answers, so ioredis sees no close. Commands time out; the proxy must start a new
// connection by itself, or it would stay on its local counters (503 for fail-closed orgs) for
// as long as the kernel keeps the dead one.
import { describe, expect, it } from 'vitest';
import { startProxy } from '../../src/proxy/main.js';
import { blackhole } from '../helpers/blackhole.js';
import { REDIS_URL } from '../helpers/stores.js';
import { call, chat, createKey, createOrg, freshStore, hello, MASTER_KEY, storedEvents, synced, waitForEvents } from '../proxy/harness.js';

const M = 'mock/gpt-4o-mini';

describe('Redis lost without a reset', () => {
  it('falls back per failure mode, then returns to the shared counters once the network heals, with every request counted', async () => {
    const { db, gw } = await freshStore('sqlite');
    const target = new URL(REDIS_URL);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 6379) });
    const proxy = await startProxy({
      dbUrl: db,
      redisUrl: hole.via(REDIS_URL),
      redisPrefix: `partition${Date.now()}:`,
      port: 0,
      masterKey: MASTER_KEY,
      pollIntervalMs: 100,
      flushIntervalMs: 50,
    });
    const counters = async () => (await call(proxy.url, '/readyz')).json<{ counters: string }>().counters;
    try {
      await createOrg(gw, 'r-open', ['--provider', 'mock', '--failure-mode', 'open']);
      await createOrg(gw, 'r-closed', ['--provider', 'mock', '--failure-mode', 'closed']);
      const open = await createKey(gw, 'r-open', ['--daily-tokens', '1000000']);
      const closed = await createKey(gw, 'r-closed', ['--daily-tokens', '1000000']);
      await synced();
      let served = 0;
      expect((await chat(proxy.url, open.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
      served++;
      expect((await chat(proxy.url, closed.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
      expect(await counters()).toBe('redis');

      hole.swallow();
      const lostAt = Date.now();
      const closedStatuses: number[] = [];
      while (Date.now() - lostAt < 3_000) {
        expect((await chat(proxy.url, open.key, hello(M, { max_tokens: 5, stream: served % 2 === 0 }))).status).toBe(200);
        served++;
        closedStatuses.push((await chat(proxy.url, closed.key, hello(M, { max_tokens: 5 }))).status);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(closedStatuses.at(-1)).toBe(503);
      expect(await counters()).toMatch(/^fallback/);

      hole.heal();
      const healedAt = Date.now();
      // Before, the proxy stayed on the dead connection: 'fallback' and 503 for good.
      let state = await counters();
      while (state !== 'redis' && Date.now() - healedAt < 10_000) {
        await new Promise((r) => setTimeout(r, 100));
        // Requests are what notice Redis is back (as in production: traffic keeps flowing).
        expect((await chat(proxy.url, open.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
        served++;
        state = await counters();
      }
      expect(state).toBe('redis');
      expect((await chat(proxy.url, closed.key, hello(M, { max_tokens: 5 }))).status).toBe(200);
      // The shared counter holds every request served before, during and after the partition.
      const events = await waitForEvents(db, open.id, served, 10_000);
      const tokens = events.reduce((s, e) => s + e.promptTokens + e.completionTokens, 0);
      const usage = (await call(proxy.url, '/v1/usage', { key: open.key })).json<{ limits: { scope: string; window: string; metric: string; used: number }[] }>();
      const daily = usage.limits.find((l) => l.scope === `key:${open.id}` && l.window === 'day' && l.metric === 'tokens');
      expect(daily?.used).toBe(tokens);
    } finally {
      await proxy.close();
      await hole.close();
    }
  }, 60_000);

  it('under concurrent traffic, a partition healing loses no request to the shared counter (requests arriving while the fallback is handed over wait for it)', async () => {
    const { db, gw } = await freshStore('sqlite');
    const target = new URL(REDIS_URL);
    const hole = await blackhole({ host: target.hostname, port: Number(target.port || 6379) });
    const proxy = await startProxy({ dbUrl: db, redisUrl: hole.via(REDIS_URL), redisPrefix: `race${Date.now()}:`, port: 0, masterKey: MASTER_KEY, pollIntervalMs: 100, flushIntervalMs: 50 });
    let stop = false;
    let clients: Promise<void>[] = [];
    try {
      await createOrg(gw, 'race-open', ['--provider', 'mock', '--failure-mode', 'open']);
      const k = await createKey(gw, 'race-open', ['--daily-tokens', '100000000']);
      await synced();
      const start = () => {
        stop = false;
        clients = Array.from({ length: 16 }, async () => {
          while (!stop) await chat(proxy.url, k.key, hello(M, { max_tokens: 5 }));
        });
      };
      const pause = async () => {
        stop = true;
        await Promise.all(clients);
      };
      const dailyUsed = async () =>
        (await call(proxy.url, '/v1/usage', { key: k.key })).json<{ limits: { window: string; metric: string; used: number }[] }>().limits.find((l) => l.window === 'day' && l.metric === 'tokens')?.used;
      for (let cycle = 0; cycle < 2; cycle++) {
        start();
        await new Promise((r) => setTimeout(r, 700));
        hole.swallow();
        await new Promise((r) => setTimeout(r, 2_500));
        hole.heal();
        await new Promise((r) => setTimeout(r, 3_000));
        await pause();
        expect((await call(proxy.url, '/readyz')).json<{ counters: string }>().counters).toBe('redis');
        // Every request has ended; its event is written within a flush interval (50 ms).
        await new Promise((r) => setTimeout(r, 300));
        const all = await storedEvents(db, k.id);
        expect(all.length).toBeGreaterThan(0);
        const tokens = all.reduce((sum, e) => sum + e.promptTokens + e.completionTokens, 0);
        // Before: each reconnection left a request or more (64 tokens in the probe) out of Redis.
        expect(await dailyUsed()).toBe(tokens);
      }
    } finally {
      stop = true;
      await Promise.all(clients);
      await proxy.close();
      await hole.close();
    }
  }, 90_000);
});
