import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { cliFor, tempDir } from '../helpers/cli.js';
import { freshStoreUrl } from '../helpers/stores.js';

/** Drives run(argv) as a person at a terminal: answers are typed into stdin as prompts appear. */
async function interactive(db: string, argv: string[], answers: string[]) {
  const stdin = new PassThrough();
  const stderr = new PassThrough();
  // A terminal is never closed by the program that writes to it; the prompt library ends its output.
  stderr.end = (() => stderr) as typeof stderr.end;
  let screen = '';
  let all = '';
  let stdout = '';
  stderr.on('data', (d: Buffer) => {
    screen += d.toString();
    all += d.toString();
  });
  const pending = [...answers];
  const timer = setInterval(() => {
    if (pending.length && /\?/.test(screen)) {
      screen = '';
      stdin.write(pending.shift()!);
    }
  }, 50);
  try {
    const code = await run(['--db', db, ...argv], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr,
      stdin,
      env: { USER: 'tester', GATEWAY_MASTER_KEY: 'a'.repeat(64) },
      cwd: tempDir(),
      interactive: true,
      stdoutIsTTY: false,
    });
    return { code, stdout, stderr: all };
  } finally {
    clearInterval(timer);
  }
}

describe('gatewayctl users delete on a terminal', () => {
  it('asks what to do with the keys (revoke), then confirms, and revokes them', async () => {
    const db = await freshStoreUrl('sqlite');
    const gw = cliFor(db);
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    await gw(['users', 'create', 'alice', '--org', 'acme']);
    const key = (await gw(['keys', 'create', '--org', 'acme', '--user', 'alice', '--json'])).json<{ id: string }>().id;
    const res = await interactive(db, ['users', 'delete', 'alice'], ['\r', 'y\r']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`revoked keys: ${key}`);
    expect((await gw(['keys', 'get', key, '--json'])).json<{ status: string }>().status).toBe('revoked');
  });

  it('cancel leaves the user and keys untouched', async () => {
    const db = await freshStoreUrl('sqlite');
    const gw = cliFor(db);
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    await gw(['users', 'create', 'alice', '--org', 'acme']);
    await gw(['keys', 'create', '--org', 'acme', '--user', 'alice']);
    const res = await interactive(db, ['users', 'delete', 'alice'], ['\u001b[B\u001b[B\r']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('aborted: nothing was changed');
    expect((await gw(['users', 'get', 'alice'])).code).toBe(0);
  });

  it('reassign asks for the user who gets the keys', async () => {
    const db = await freshStoreUrl('sqlite');
    const gw = cliFor(db);
    await gw(['init']);
    await gw(['orgs', 'create', 'acme', '--provider', 'mock']);
    await gw(['users', 'create', 'alice', '--org', 'acme']);
    await gw(['users', 'create', 'bob', '--org', 'acme']);
    const key = (await gw(['keys', 'create', '--org', 'acme', '--user', 'alice', '--json'])).json<{ id: string }>().id;
    const res = await interactive(db, ['users', 'delete', 'alice'], ['\u001b[B\r', 'bob\r', 'y\r']);
    expect(res.code).toBe(0);
    expect((await gw(['keys', 'list', '--user', 'bob', '--json'])).json<{ id: string }[]>().map((k) => k.id)).toEqual([key]);
  });
});
