// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// SIGTERM while the store refuses writes, without a spill folder (usage-spill.test.ts has the spill). The sink gives up after the shutdown
// timeout and its usage events are dropped (logged), yet runCli resolves EXIT.ok: the process
// exits 0 as after a clean flush ("SIGTERM ... flushes usage and exits 0"; DESIGN §5 "nothing is
// lost on SIGTERM"), so a supervisor or deploy script cannot tell billing data was lost.
import Database from 'better-sqlite3';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/proxy/cli.js';
import { createKey, createOrg, freshStore, hello, MASTER_KEY_HEX, storedEvents, synced } from './harness.js';

describe('SIGTERM while the store refuses writes', () => {
  it('does not exit 0 when usage events could not be written', async () => {
    const { db, gw } = await freshStore('sqlite');
    await createOrg(gw, 'o', ['--provider', 'mock', '--failure-mode', 'open']);
    const k = await createKey(gw, 'o');
    let trigger: (s: string) => void = () => {};
    let url = '';
    let ready: () => void = () => {};
    const listening = new Promise<void>((r) => {
      ready = r;
    });
    const stderr: string[] = [];
    const io = {
      stdout: { write: (s: string) => { const m = /listening on (\S+)/.exec(s); if (m) { url = m[1]!; ready(); } return true; } },
      stderr: Object.assign(new (await import('node:stream')).Writable({ write(c, _e, d) { stderr.push(String(c)); d(); } }), {}),
      env: { GATEWAY_MASTER_KEY: MASTER_KEY_HEX },
      cwd: process.cwd(),
      onShutdown: (fn: (s: string) => void) => {
        trigger = fn;
      },
    };
    const exit = runCli(['--port', '0', '--db', db, '--log-level', 'error', '--shutdown-timeout-ms', '1000', '--usage-writer', 'inline', '--usage-spill-dir', 'none'], io as never);
    await listening;
    await synced();
    // Another connection holds SQLite's write lock for the rest of the test: every usage write is refused.
    const path = db.startsWith('sqlite://') ? db.slice('sqlite://'.length) : db;
    const lock = new Database(path);
    lock.exec('BEGIN IMMEDIATE');
    try {
      const r = await request(`${url}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' }, body: JSON.stringify(hello('mock/gpt-4o-mini', { max_tokens: 5 })),
      });
      expect(r.statusCode).toBe(200);
      await r.body.text();
      trigger('SIGTERM');
      const code = await exit;
      lock.exec('ROLLBACK');
      expect(await storedEvents(db, k.id)).toHaveLength(0); // the event is gone for good
      expect(stderr.join('')).toMatch(/usage events could not be written/);
      // What the gateway did: exit code 0, as after a clean flush.
      expect(code).not.toBe(0);
    } finally {
      if (lock.inTransaction) lock.exec('ROLLBACK');
      lock.close();
    }
  });
});
