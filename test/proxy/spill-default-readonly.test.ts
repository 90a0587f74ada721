// Regression test from the review of 2026-12-07 (r4): what the comment below describes was a bug, fixed then
// (the default folder unusable: a warning, and the proxy runs without a spill folder).
// Review r4: the usage spill folder is checked at start, and a folder that cannot be written is a
// configuration error (exit 2) even when the operator never asked for one (no --usage-spill-dir).
// On Postgres the default is <data dir>/usage-spill, and the data dir (./.gateway under the
// working directory unless GATEWAY_DATA_DIR says otherwise) is otherwise unused by the proxy when
// the master key comes from GATEWAY_MASTER_KEY. A deployment that ran the proxy from a read-only
// place (a container with a read-only root filesystem, a working directory owned by root) started
// before these commits and now refuses to start: an upgrade takes the service down for a feature
// it did not opt into. /proc/sys stands in for a read-only location here (even root may not
// create anything in it), as the tests run as root, for whom a chmod'ed folder stays writable.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/proxy/cli.js';
import { tempDir as tempDirFor } from '../helpers/cli.js';
import { freshStore, MASTER_KEY_HEX } from './harness.js';

async function start(env: Record<string, string>, cwd: string) {
  let trigger: (s: string) => void = () => {};
  let listening: (url: string) => void = () => {};
  const up = new Promise<string>((r) => {
    listening = r;
  });
  const stderr: string[] = [];
  const io = {
    stdout: {
      write: (s: string) => {
        const m = /listening on (\S+)/.exec(s);
        if (m) listening(m[1]!);
        return true;
      },
    },
    stderr: new Writable({
      write(c, _e, d) {
        stderr.push(String(c));
        d();
      },
    }),
    env,
    cwd,
    onShutdown: (fn: (s: string) => void) => {
      trigger = fn;
    },
  };
  const exit = runCli(['--port', '0', '--log-level', 'warn', '--shutdown-timeout-ms', '500'], io as never);
  const first = await Promise.race([up.then((url) => ({ url })), exit.then((code) => ({ code }))]);
  return { first, exit, stderr: () => stderr.join(''), sigterm: () => trigger('SIGTERM') };
}

describe('default usage spill folder on a read-only data dir (Postgres store)', () => {
  it('gateway-proxy still starts (spill folder is a default, not something the operator asked for)', async () => {
    const { db } = await freshStore('postgres');
    const cwd = tempDirFor();
    const p = await start({ GATEWAY_DB: db, GATEWAY_MASTER_KEY: MASTER_KEY_HEX, GATEWAY_DATA_DIR: '/proc/sys/gw-r4-data' }, cwd);
    // Seen: { code: 2 }, stderr "the usage spill folder (--usage-spill-dir) cannot be used: /proc/sys is not writable".
    expect('url' in p.first).toBe(true);
    expect(p.stderr()).toContain('the default usage spill folder cannot be used');
    expect(p.stderr()).toContain('/proc/sys is not writable');
    p.sigterm();
    expect(await p.exit).toBe(0);
  }, 60_000);
});
