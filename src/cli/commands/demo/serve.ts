// `demo --serve`: runs gateway-proxy in the foreground as a child process (src/cli never imports
// src/proxy). The child gets its own process group, so a Ctrl-C reaches it exactly once, through
// us; its stdout is passed through line by line so we can tell when it is listening.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../../../shared/errors.js';
import type { TextSink } from '../../io.js';

export interface ProxyCommand {
  command: string;
  args: string[];
  /** What to tell a person when it is missing. */
  path: string;
}

/**
 * How to start gateway-proxy. GATEWAY_PROXY_BIN names an executable (a standalone build ships
 * one next to gatewayctl); otherwise the package's own bin/gateway-proxy script runs under
 * this Node. This file sits four levels below the package root both in src/ and in dist/.
 */
export function proxyCommand(env: Record<string, string>, execPath: string = process.execPath): ProxyCommand {
  if (env.proxy_bin) return { command: env.proxy_bin, args: [], path: env.proxy_bin };
  // A standalone gatewayctl executable ships gateway-proxy beside itself.
  const sibling = join(dirname(execPath), 'gateway-proxy');
  if (basename(execPath) === 'gatewayctl' && existsSync(sibling)) return { command: sibling, args: [], path: sibling };
  const script = fileURLToPath(new URL('../../../../bin/gateway-proxy', import.meta.url));
  return { command: process.execPath, args: [script], path: script };
}

export interface ServeOptions {
  proxy: ProxyCommand;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: TextSink;
  /** Called once with the URL from the proxy's "listening on URL" line. */
  onListening: (url: string) => void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Runs the proxy until it exits; resolves with its exit code (0 when stopped by a signal we forwarded). */
export async function serveProxy(opts: ServeOptions): Promise<number> {
  if (!existsSync(opts.proxy.path) && opts.proxy.command === process.execPath) {
    throw new GatewayError('unavailable', `gateway-proxy not found at ${opts.proxy.path}: is the package complete? (run 'npm run build' in a clone)`);
  }
  const child = spawn(opts.proxy.command, [...opts.proxy.args, ...opts.args], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  let stopping: NodeJS.Signals | null = null;
  const forward = (sig: NodeJS.Signals) => {
    stopping = sig;
    child.kill(sig);
  };
  const killOnExit = () => child.kill('SIGTERM');
  for (const sig of SIGNALS) process.on(sig, forward);
  process.on('exit', killOnExit);
  try {
    pipeLines(child, opts.stdout, opts.onListening);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', (err) => reject(new GatewayError('unavailable', `could not start gateway-proxy (${opts.proxy.path}): ${err.message}`, { cause: err })));
      child.once('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    if (stopping && (signal === stopping || code === 0 || code === 130 || code === 143)) return 0;
    if (code === 0) return 0;
    throw new GatewayError('unavailable', `gateway-proxy stopped ${signal ? `by ${signal}` : `with exit code ${code}`}`);
  } finally {
    for (const sig of SIGNALS) process.off(sig, forward);
    process.off('exit', killOnExit);
  }
}

function pipeLines(child: ChildProcess, out: TextSink, onListening: (url: string) => void): void {
  let buffer = '';
  let told = false;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl + 1);
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      out.write(line);
      const m = /listening on (https?:\/\/\S+)/.exec(line);
      if (m && !told) {
        told = true;
        onListening(m[1]!);
      }
    }
  });
  child.stdout?.on('end', () => {
    if (buffer) out.write(buffer);
  });
}
