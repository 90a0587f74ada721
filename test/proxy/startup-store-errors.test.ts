// Regression test from the review of 2026-12-07: what the comment below describes was a bug, fixed then.
// starting gateway-proxy against a Postgres store that cannot be reached should fail
// like gatewayctl does (exit 6, "cannot reach the Postgres store …"), not as an unexpected error
// (exit 1) whose message is drizzle's failed SQL.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/proxy/cli.js';
import { cliFor } from '../helpers/cli.js';
import { MASTER_KEY_HEX } from './harness.js';

function io(env: Record<string, string>) {
  let out = '';
  let err = '';
  const stderr = new Writable({
    write(chunk, _enc, cb) {
      err += String(chunk);
      cb();
    },
  });
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: stderr as unknown as NodeJS.WritableStream & { write(s: string): unknown },
      env: { GATEWAY_MASTER_KEY: MASTER_KEY_HEX, ...env },
      cwd: '/tmp',
      onShutdown: () => {},
    },
    out: () => out,
    err: () => err,
  };
}

const DOWN = 'postgres://postgres@127.0.0.1:1/gateway';

describe('startup with the Postgres store unreachable', () => {
  it('gatewayctl says the store is unreachable and exits 6 (the contract)', async () => {
    const r = await cliFor(DOWN)(['orgs', 'list', '--json']);
    expect(r.code).toBe(6);
  });

  it('gateway-proxy exits 6 with a clear message, as gatewayctl does', async () => {
    const t = io({});
    const code = await runCli(['--port', '0', '--db', DOWN, '--log-level', 'silent'], t.io);
    expect(t.out()).toBe('');
    const firstLine = t.err().split('\n')[0];
    expect(firstLine).not.toContain('Failed query');
    expect(firstLine).toMatch(/cannot reach|unreachable|connection refused/);
    expect(code).toBe(6);
  }, 20_000);
});
