import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { App } from '../../src/cli/app.js';
import { NAMESPACES, targetCommand } from '../../src/cli/commands/namespaces.js';
import { buildProgram } from '../../src/cli/main.js';

function app(): App {
  return new App({
    stdout: { write: () => true },
    stderr: { write: () => true },
    stdin: Readable.from([]),
    env: {},
    cwd: process.cwd(),
    interactive: false,
    stdoutIsTTY: false,
  });
}

describe('lazy command namespaces', () => {
  it('shows the same top-level help whether the command code is loaded or not', async () => {
    const light = await buildProgram(app(), () => false, false);
    const full = await buildProgram(app(), () => true, false);
    expect(light.helpInformation()).toBe(full.helpInformation());
  });

  it('lists every top-level command the code registers', async () => {
    const full = await buildProgram(app(), () => true, false);
    const listed = NAMESPACES.flatMap((ns) => ns.commands.map((c) => c.name));
    expect(full.commands.map((c) => c.name())).toEqual(listed);
  });

  it.each([
    [['keys', 'list'], 'keys'],
    [['--db', 'x.db', '--json', 'orgs', 'get', 'a'], 'orgs'],
    [['help', 'quotas'], 'quotas'],
    [['--help'], undefined],
    [[], undefined],
    [['-y', 'keys', 'revoke', 'k'], 'keys'],
    [['--store-timeout-ms', '1000', 'usage', 'summary'], 'usage'],
  ])('finds the command that %j targets', (argv, want) => {
    expect(targetCommand(argv)).toBe(want);
  });
});
