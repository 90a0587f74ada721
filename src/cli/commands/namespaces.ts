// The top-level commands and where their code lives. gatewayctl loads only the namespace a run
// uses (most of start-up is importing command code and what it pulls in); the others are
// registered as light entries that carry just what `gatewayctl --help` shows.
// test/cli/namespaces.test.ts keeps `term` and `description` equal to the real registrations.
import type { Command } from 'commander';
import type { App } from '../app.js';

type Register = (program: Command, app: App) => void;

export interface Namespace {
  /** The top-level command names the module registers, with their help line. */
  commands: { name: string; term: string; description: string }[];
  load: () => Promise<Register>;
}

const one = (name: string, term: string, description: string) => [{ name, term, description }];

export const NAMESPACES: Namespace[] = [
  {
    commands: one('init', 'init', 'create the store, run its migrations and create the master key (safe to re-run)'),
    load: async () => (await import('./init.js')).registerInit,
  },
  {
    commands: [
      {
        name: 'login',
        term: 'login [options]',
        description: 'sign in to the Keycloak realm (KEYCLOAK_URL, KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET)',
      },
      { name: 'logout', term: 'logout [options]', description: 'sign out: end the session at Keycloak and delete the local tokens' },
      { name: 'whoami', term: 'whoami', description: 'who gatewayctl acts as: user, roles and org' },
    ],
    load: async () => (await import('./auth/index.js')).registerAuth,
  },
  { commands: one('db', 'db', 'store maintenance: migrations'), load: async () => (await import('./db/index.js')).registerDb },
  {
    commands: one('orgs', 'orgs', 'organizations and their upstream provider'),
    load: async () => (await import('./orgs/index.js')).registerOrgs,
  },
  {
    commands: one('keys', 'keys', 'API keys: org, admin and user keys with their policy and limits'),
    load: async () => (await import('./keys/index.js')).registerKeys,
  },
  {
    commands: one('demo', 'demo [options]', 'seed a demo (2 orgs, 3 users, 3 keys on the built-in mock provider) and print how to call it'),
    load: async () => (await import('./demo/index.js')).registerDemo,
  },
  {
    commands: one('chat', 'chat [options] [message...]', 'talk to the gateway with an API key: one message, or an interactive session'),
    load: async () => (await import('./chat/index.js')).registerChat,
  },
  {
    commands: one('users', 'users', 'local users (the embedded directory): org, roles, groups and status'),
    load: async () => (await import('./users/index.js')).registerUsers,
  },
  {
    commands: one('quotas', 'quotas', 'daily and monthly token quotas per key (UTC windows)'),
    load: async () => (await import('./quotas/index.js')).registerQuotas,
  },
  {
    commands: one('limits', 'limits', 'rate limits, token limits and cost budgets on a scope: key:<id>, user:<user> or org:<org>'),
    load: async () => (await import('./limits/index.js')).registerLimits,
  },
  {
    commands: one('credits', 'credits', 'prepaid credits: a ledger of top-ups and charges per org, user or key'),
    load: async () => (await import('./credits/index.js')).registerCredits,
  },
  {
    commands: one('models', 'models', 'model catalog and prices (USD per 1M tokens)'),
    load: async () => (await import('./models/index.js')).registerModels,
  },
  {
    commands: one('usage', 'usage', 'usage: summaries from the daily rollups, raw event export and pruning'),
    load: async () => (await import('./usage/index.js')).registerUsage,
  },
  {
    commands: one('stats', 'stats', 'orgs, users, keys by status, requests/tokens/cost today and this month (UTC), top keys and models'),
    load: async () => (await import('./stats/index.js')).registerStats,
  },
  {
    commands: one('audit', 'audit', 'the audit log of every change'),
    load: async () => (await import('./audit/index.js')).registerAudit,
  },
];

/** Global options that take a value, so their value is not mistaken for the command name. */
const VALUE_OPTIONS = new Set(['--db', '--store-timeout-ms']);

/** The top-level command a run of argv targets (through `help <command>` too), or undefined. */
export function targetCommand(argv: readonly string[]): string | undefined {
  const positional: string[] = [];
  for (let i = 0; i < argv.length && positional.length < 2; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) positional.push(a);
  }
  return positional[0] === 'help' ? positional[1] : positional[0];
}

/**
 * Registers every namespace: fully (code loaded) when `load` says so, else as a light entry
 * whose help line is shown through `terms` (see buildProgram's configureHelp).
 */
export async function registerNamespaces(program: Command, app: App, shouldLoad: (ns: Namespace) => boolean, terms: Map<string, string>): Promise<void> {
  for (const ns of NAMESPACES) {
    if (shouldLoad(ns)) {
      (await ns.load())(program, app);
      continue;
    }
    for (const c of ns.commands) {
      program.command(c.name).description(c.description);
      terms.set(c.name, c.term);
    }
  }
}
