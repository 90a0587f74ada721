// End to end with the real proxy: `gatewayctl demo --serve` in a fresh directory, the printed
// curl line, a one-shot `chat`, and an interactive `chat --as bob` in tmux that streams, switches
// model and runs into bob's daily quota. Both programs run from bundles of the current sources.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { bundleProgram, Tmux } from './chat-tmux.js';

const run = promisify(execFile);
let cliBundle: string;
let proxyBundle: string;
let dir: string;
let demo: ChildProcess;
let demoOut = '';
let demoExit: Promise<number | null>;

/** A clean environment: nothing from the test runner's GATEWAY_* or CI leaks in. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, USER: 'tester', ...extra };
}

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; demo output:\n${demoOut}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  [cliBundle, proxyBundle] = await Promise.all([bundleProgram('src/cli/main.ts', 'run'), bundleProgram('src/proxy/cli.ts', 'runCli')]);
  dir = tempDir('gw-demo-');
  demo = spawn(process.execPath, [cliBundle, 'demo', '--serve', '--port', '0'], { cwd: dir, env: cleanEnv({ GATEWAY_PROXY_BIN: proxyBundle }) });
  demo.stdout?.on('data', (c: Buffer) => (demoOut += c.toString()));
  demo.stderr?.on('data', (c: Buffer) => (demoOut += c.toString()));
  demoExit = new Promise((resolve) => demo.once('exit', (code) => resolve(code)));
  await until(() => /listening on http[\s\S]*curl -s/.test(demoOut) && demoOut.includes('--as carol'), 'the proxy and the lines to try', 60_000);
}, 90_000);

afterAll(async () => {
  if (demo.exitCode === null) demo.kill('SIGKILL');
  rmSync(cliBundle, { force: true });
  rmSync(proxyBundle, { force: true });
});

const gatewayctl = (args: string[]) => run(process.execPath, [cliBundle, ...args], { cwd: dir, env: cleanEnv() });

describe('gatewayctl demo --serve with the real proxy', () => {
  it('sends one real request through the gateway as soon as it listens and shows it', () => {
    expect(demoOut).toMatch(/A first request through the gateway:\n.*→ POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
    expect(demoOut).toMatch(/← 200 +"Mock reply to: Say hello to the gateway/);
    expect(demoOut).toMatch(/\d+ prompt \+ \d+ completion = \d+ tokens +cost \$0\.\d{6} +\(request req_[0-9a-f]+\)/);
  });

  it('the printed curl line gets an answer with the gateway usage', async () => {
    const curl = /^\s+(curl -s .+)$/m.exec(demoOut)?.[1];
    expect(curl).toBeDefined();
    const { stdout } = await run('sh', ['-c', curl!]);
    const body = JSON.parse(stdout) as { choices: { message: { content: string } }[]; gateway_usage: { total_tokens: number } };
    expect(body.choices[0]?.message.content).toMatch(/\S/);
    expect(body.gateway_usage.total_tokens).toBeGreaterThan(0);
  });

  it('chat "hello" answers on stdout and reports tokens, cost and what is left on stderr', { timeout: 60_000 }, async () => {
    const { stdout, stderr } = await gatewayctl(['chat', '--model', 'mock/gpt-4o-mini', 'hello']);
    expect(stdout).toMatch(/^Mock reply to: hello\b.*\n$/);
    expect(stderr).toMatch(/mock\/gpt-4o-mini · \d+ in \+ \d+ out = \d+ tokens · \$0\.\d+ · [\d,]+ tokens left today/);
  });

  it('an interactive session as bob keeps the conversation, switches model and is refused when the quota is spent', async () => {
    const tmux = new Tmux();
    try {
      tmux.start([process.execPath, cliBundle, 'chat', '--as', 'bob'], cleanEnv({ NO_COLOR: '1' }), dir);
      await tmux.waitFor('you ›');
      expect(tmux.screen()).toContain('model mock/gpt-4o-mini');
      tmux.type('first question');
      await tmux.waitFor(/Mock reply to: first question .*\nmock\/gpt-4o-mini · \d+ in \+ \d+ out = \d+ tokens · \$0\.\d+ · [\d,]+ tokens left today/);

      tmux.type('/model');
      await tmux.waitFor('mock/echo');
      tmux.keys('Up');
      tmux.keys('Enter');
      await tmux.waitFor('Model: mock/echo');
      tmux.type('echo this');
      await tmux.waitFor(/\necho this\nmock\/echo · \d+ in \+ \d+ out = \d+ tokens · \$0 · [\d,]+ tokens left today/);
      tmux.type('/model mock/gpt-4o-mini');
      await tmux.waitFor('Model: mock/gpt-4o-mini');

      // 1,500 tokens a day; each turn reserves a bound on the prompt plus 256: a few turns, then a 429.
      for (let turn = 1; turn <= 20; turn++) {
        const answers = tmux.count('mock/gpt-4o-mini · ');
        tmux.type(`question number ${turn}`);
        const screen = await tmux.waitFor((s) => s.split('mock/gpt-4o-mini · ').length - 1 > answers || s.includes('Try again in'));
        if (screen.includes('Try again in')) break;
      }
      expect(tmux.screen()).toMatch(/Quota[^\n]*key:\w+[^\n]*1500 tokens[^\n]*Try again in [\dhms ]+ \(at \d\d:\d\d:\d\d UTC\)\./);

      tmux.type('/usage');
      await tmux.waitFor(/tokens\/day\s+used [\d,]+ of 1,500 tokens/);
      tmux.type('/exit');
      expect(await tmux.waitForExit()).toBe(0);
    } finally {
      tmux.kill();
    }
  }, 150_000);

  it('Ctrl-C (SIGINT) stops the proxy cleanly and demo exits 0', async () => {
    demo.kill('SIGINT');
    expect(await demoExit).toBe(0);
    expect(demoOut).toContain('gateway-proxy stopped');
  });
});
