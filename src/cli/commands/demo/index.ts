import { dirname } from 'node:path';
import type { Command } from 'commander';
import { migrate } from '../../../shared/db/migrate.js';
import { usageError } from '../../../shared/errors.js';
import { ensureMasterKey } from '../../../shared/master-key.js';
import { type DemoSeed, seedDemo } from '../../../shared/services/demo.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { demoKeysPath, writeDemoKeys } from '../../chat/demo-keys.js';
import { startSpinner } from '../../chat/spinner.js';
import { intArg } from '../../parse.js';
import { demoJson, printSeed, printTryLines, selfCommand, tryLines } from './lines.js';
import { showFirstRequest } from './first-request.js';
import { proxyCommand, serveProxy } from './serve.js';

interface DemoFlags {
  serve?: boolean;
  host?: string;
  port?: number;
}

const EXAMPLES = `
Examples:
  gatewayctl demo --serve        seed, then serve the gateway on http://127.0.0.1:8080 until Ctrl-C
  gatewayctl demo                seed only, print the keys and the lines to try
  gatewayctl demo --json         the same as one JSON document (keys included)

Re-running is safe: the demo orgs and users are reused, and the three demo keys are rotated
(same ids, limits and history; the previous secrets stop working). The current keys are kept
for 'gatewayctl chat' in <data dir>/demo-keys.json, mode 0600.`;

export function registerDemo(program: Command, app: App): void {
  program
    .command('demo')
    .description('seed a demo (2 orgs, 3 users, 3 keys on the built-in mock provider) and print how to call it')
    .option('--serve', 'then run gateway-proxy in the foreground on the same store (Ctrl-C stops it)')
    .option('--host <host>', 'address the proxy listens on (env GATEWAY_HOST; default 127.0.0.1)')
    .option('--port <port>', 'port the proxy listens on (env GATEWAY_PORT; default 8080; 0 picks a free one)', intArg)
    .addHelpText('after', EXAMPLES)
    .action(action(app, (run: Run, flags: DemoFlags) => demo(run, flags)));
}

async function demo(run: Run, flags: DemoFlags): Promise<void> {
  const { app, cmd, out } = run;
  if (flags.serve && out.json) throw usageError('--serve prints the proxy log on stdout: use it without --json', 'serve');
  const host = flags.host ?? app.env.gateway.host ?? '127.0.0.1';
  const port = flags.port ?? (app.env.gateway.port ? intArg(app.env.gateway.port) : 8080);
  const seed = await seedStore(run);
  const keyFile = demoKeysPath(app.dataDir());
  const self = selfCommand(app.io.cwd);
  const save = (url: string) =>
    writeDemoKeys(keyFile, {
      url,
      default: 'alice',
      keys: Object.fromEntries(seed.keys.map((k) => [k.name, { id: k.key.id, key: k.plaintext, org: k.org.name, user: k.user.username, model: k.chatModel, story: k.story }])),
    });
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  save(url);
  out.result(demoJson(seed, url, keyFile, tryLines(self, url, seed)), () => {
    printSeed(out, seed, keyFile);
    if (!flags.serve) {
      const db = cmd.optsWithGlobals<{ db?: string }>().db;
      const proxy = self === 'gatewayctl' ? 'gateway-proxy' : `${dirname(self)}/gateway-proxy`;
      out.line(`Start the gateway on the same store: ${out.c.bold(`${proxy}${db ? ` --db ${db}` : ''}`)}`);
      printTryLines(out, tryLines(self, url, seed), false);
    }
  });
  if (!flags.serve) return;
  out.note(out.c.dim('starting gateway-proxy…'));
  await serveProxy({
    proxy: proxyCommand(app.env.gateway),
    args: ['--db', app.dbUrl(cmd), '--host', host, '--port', String(port)],
    env: app.io.env,
    cwd: app.io.cwd,
    stdout: app.io.stdout,
    onListening: (listening) => {
      const base = listening.replace(/\/+$/, '');
      if (base !== url) save(base);
      void showFirstRequest(out, base, seed).then(() => printTryLines(out, tryLines(self, base, seed), true));
    },
  });
}

/** What `init` does (store, migrations, master key), then the seed; all idempotent. */
async function seedStore({ app, cmd, out }: Run): Promise<DemoSeed> {
  const spinner = startSpinner(app.io.stderr, app.io.interactive && !out.json, out.c.dim('seeding the demo…'));
  try {
    ensureMasterKey(app.masterKeySource());
    const store = await app.openStore(cmd, true);
    await migrate(store);
    const seed = await seedDemo(await app.services(cmd));
    // The proxy opens the store itself; close ours so SQLite has one writer while it serves.
    await app.close();
    return seed;
  } finally {
    spinner.stop();
  }
}
