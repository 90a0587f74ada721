// What the proxy logs about usage writes that keep failing: a warning when it starts and at
// most one per 10 s after that (the rest at debug), not one per attempt.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/proxy/config.js';
import { createUsageSink } from '../../src/proxy/sink-wiring.js';
import { readEnv } from '../../src/shared/config.js';
import { world } from '../shared/snapshot-fixtures.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe('usage sink wiring', () => {
  it('warns once while writes keep failing, logs the repeats at debug, and reports the store as failing', async () => {
    const w = await world('sqlite');
    cleanups.push(() => w.store.close());
    const lines: { level: number; msg: string }[] = [];
    const log = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _enc, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    const config = { ...defaultConfig(readEnv({ GATEWAY_MASTER_KEY: 'a'.repeat(64) })), flushIntervalMs: 10, shutdownTimeoutMs: 0 };
    const wired = createUsageSink(config, w.store, log);
    cleanups.push(() => wired.sink.close());
    // Every write fails for good (not busy): the table is gone.
    w.store.sqlite!.exec('DROP TABLE usage_events');
    wired.sink.add({
      requestId: 'req_1', ts: Date.now(), orgId: w.orgId, userId: w.userId, keyId: w.child.key.id, ancestorKeyIds: [], model: 'm', provider: 'mock',
      promptTokens: 1, completionTokens: 1, totalTokens: 2, costMicros: 0, status: 200, errorCode: null, latencyMs: 1, ttfbMs: 1, stream: false,
      usageSource: 'upstream', creditScopes: [],
    });
    await new Promise((r) => setTimeout(r, 1_500));
    const failures = lines.filter((l) => l.msg === 'usage events could not be written; kept in memory');
    expect(failures.length).toBeGreaterThan(2);
    expect(failures.filter((l) => l.level === 40)).toHaveLength(1);
    expect(failures[0]!.level).toBe(40);
    expect(wired.failing()).toBe(true);
    expect(wired.sink.pending()).toBe(1);
  });
});
