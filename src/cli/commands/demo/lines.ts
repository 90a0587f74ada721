// What `gatewayctl demo` prints: the seeded orgs, users and keys, then the exact lines to try.
import { basename, isAbsolute, relative } from 'node:path';
import type { DemoSeed } from '../../../shared/services/demo.js';
import { limitView } from '../../../shared/services/limits.js';
import type { Output } from '../../output.js';

/**
 * How a person re-types this program: `bin/gatewayctl` when run from a clone, else `gatewayctl`
 * (installed on PATH, or anything we cannot tell apart).
 */
export function selfCommand(cwd: string, argv1: string | undefined = process.argv[1]): string {
  if (!argv1 || basename(argv1) !== 'gatewayctl') return 'gatewayctl';
  const rel = relative(cwd, argv1);
  if (!rel || rel.startsWith('..') || isAbsolute(rel)) return 'gatewayctl';
  return rel.includes('/') ? rel : `./${rel}`;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function curlLine(url: string, key: string, model: string, text = 'hello'): string {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: text }] });
  return `curl -s ${url}/v1/chat/completions -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" -d ${shellQuote(body)}`;
}

export interface TryLine {
  line: string;
  why: string;
}

export function tryLines(self: string, url: string, seed: DemoSeed): TryLine[] {
  const alice = seed.keys.find((k) => k.name === 'alice') ?? seed.keys[0]!;
  return [
    { line: curlLine(url, alice.plaintext, 'mock/gpt-4o-mini'), why: 'plain HTTP, as alice' },
    { line: `${self} chat "hello"`, why: "one answer; tokens, cost and what is left on stderr (alice's key)" },
    { line: `${self} chat`, why: 'an interactive session: /model, /usage, /reset, /exit' },
    { line: `${self} chat --as bob`, why: "bob's 1,500 tokens a day run out after a few turns (429)" },
    { line: `${self} chat --as carol`, why: "carol's 5 requests a minute and prepaid credits (another org)" },
  ];
}

export function demoJson(seed: DemoSeed, url: string, keyFile: string, lines: TryLine[]) {
  return {
    url,
    key_file: keyFile,
    orgs: seed.orgs.map((o) => ({ id: o.org.id, name: o.org.name, provider: o.org.provider, models: o.models, created: o.created })),
    users: seed.users.map((u) => ({ id: u.user.id, username: u.user.username, org_id: u.user.orgId, created: u.created })),
    keys: seed.keys.map((k) => ({
      name: k.name,
      id: k.key.id,
      key: k.plaintext,
      org: k.org.name,
      user: k.user.username,
      models: k.key.models,
      limits: k.limits.map(limitView),
      action: k.action,
      story: k.story,
    })),
    models_priced: seed.modelsPriced,
    try: lines.map((l) => l.line),
  };
}

export function printSeed(out: Output, seed: DemoSeed, keyFile: string): void {
  const c = out.c;
  const verb = (created: boolean) => (created ? c.green('created') : c.dim('reused'));
  for (const o of seed.orgs) out.line(`${c.bold('org')}   ${o.org.name.padEnd(12)} ${verb(o.created)}  mock provider · models ${o.models.join(', ')}`);
  for (const u of seed.users) out.line(`${c.bold('user')}  ${u.user.username.padEnd(12)} ${verb(u.created)}`);
  out.line('');
  for (const k of seed.keys) {
    out.line(`${c.bold(k.name.padEnd(6))} ${k.key.id} (${k.org.name}) ${k.action === 'created' ? c.green('created') : c.yellow('rotated')} — ${k.story}`);
    out.line(`       ${c.bold(k.plaintext)}`);
  }
  out.line('');
  out.line(c.dim(`Keys are saved for 'chat' in ${keyFile} (mode 0600). Re-running 'demo' rotates them: old ones stop working.`));
}

export function printTryLines(out: Output, lines: TryLine[], serving: boolean): void {
  const c = out.c;
  out.line('');
  out.line(c.bold(serving ? 'Try it (in another terminal, same directory):' : 'Start the gateway, then try it:'));
  for (const l of lines) {
    out.line(`  ${l.line}`);
    out.line(c.dim(`      ${l.why}`));
  }
  out.line('');
}
