// The README quickstart, run exactly as written on a clean clone (test/scripts/quickstart-check.sh).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('README quickstart', () => {
  it('installs, serves the demo, answers chat "hello", the printed curl line and an interactive chat, and stops on Ctrl-C', { timeout: 900_000 }, () => {
    const env: NodeJS.ProcessEnv = { ...process.env, QUICKSTART_PORT: process.env.QUICKSTART_PORT ?? '18080' };
    delete env.QUICKSTART_REUSE_MODULES;
    const r = spawnSync('bash', ['test/scripts/quickstart-check.sh'], { env, encoding: 'utf8', timeout: 880_000 });
    if (r.status !== 0) console.error(r.stdout, r.stderr);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('quickstart-check OK');
  });
});
