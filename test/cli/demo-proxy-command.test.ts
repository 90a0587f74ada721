import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { proxyCommand } from '../../src/cli/commands/demo/serve.js';
import { tempDir } from '../helpers/cli.js';

describe('demo --serve finds gateway-proxy', () => {
  it('uses GATEWAY_PROXY_BIN when set', () => {
    expect(proxyCommand({ proxy_bin: '/opt/gw/gateway-proxy' }, '/usr/bin/node')).toEqual({ command: '/opt/gw/gateway-proxy', args: [], path: '/opt/gw/gateway-proxy' });
  });

  it('uses the gateway-proxy beside a standalone gatewayctl executable', () => {
    const dir = tempDir();
    const sibling = join(dir, 'gateway-proxy');
    writeFileSync(sibling, '');
    chmodSync(sibling, 0o755);
    expect(proxyCommand({}, join(dir, 'gatewayctl'))).toEqual({ command: sibling, args: [], path: sibling });
  });

  it("runs the package's bin/gateway-proxy under node otherwise", () => {
    const cmd = proxyCommand({}, '/usr/bin/node');
    expect(cmd.command).toBe('/usr/bin/node');
    expect(cmd.args[0]).toMatch(/bin\/gateway-proxy$/);
  });
});
