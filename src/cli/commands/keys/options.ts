import type { Command } from 'commander';
import { parseDuration, parseTimestamp } from '../../../shared/duration.js';
import { usageError } from '../../../shared/errors.js';
import { KEY_ENVS, KEY_TYPES } from '../../../shared/keys.js';
import { usdToMicros } from '../../../shared/money.js';
import type { KeyInput } from '../../../shared/services/keys.js';
import { type LimitFlags, limitsFromFlags } from '../../../shared/services/limits.js';
import { choiceArg, intArg, listArg, usdArg } from '../../parse.js';

export interface KeyFlags extends LimitFlags {
  org?: string;
  name?: string;
  type?: string;
  user?: string;
  parent?: string;
  env?: string;
  models?: string[];
  expiresIn?: string;
  expiresAt?: string;
  ip?: string[];
  referrer?: string[];
  budget?: string;
  credits?: string;
  metadata?: string;
  status?: string;
}

/** The limit flags shared by keys create/update, limits set and quotas set. */
export function addLimitOptions(cmd: Command): Command {
  return cmd
    .option('--max-requests <n>', 'lifetime request cap (0 removes)', intArg)
    .option('--daily-tokens <n>', 'tokens per UTC day (0 removes)', intArg)
    .option('--monthly-tokens <n>', 'tokens per UTC month (0 removes)', intArg)
    .option('--rpm <n>', 'requests per minute', intArg)
    .option('--rph <n>', 'requests per hour', intArg)
    .option('--rpd <n>', 'requests per UTC day', intArg)
    .option('--tpm <n>', 'tokens per minute', intArg)
    .option('--tph <n>', 'tokens per hour', intArg)
    .option('--tpd <n>', 'tokens per UTC day (same as --daily-tokens)', intArg)
    .option('--budget <usd>', 'cost budget in USD (0 removes)', usdArg)
    .option('--budget-period <period>', 'budget window: day, month or total (default month)', choiceArg(['day', 'month', 'total'] as const));
}

export function addKeyOptions(cmd: Command): Command {
  return addLimitOptions(
    cmd
      .option('--name <name>', 'a label for people')
      .option('--user <user>', 'bind the key to a user (id, username or email)')
      .option('--models <list>', 'allowed models or patterns, comma-separated (default: all the org allows)', listArg)
      .option('--expires-in <duration>', 'expire after a duration such as 30d or 12h')
      .option('--expires-at <iso>', 'expire at an ISO-8601 time')
      .option('--ip <cidrs>', 'IP allow-list: CIDRs or addresses, comma-separated (IPv4 and IPv6)', listArg)
      .option('--referrer <hosts>', 'referrer allow-list: hosts such as app.example.com or *.example.com', listArg)
      .option('--credits <usd>', 'prepaid credits to add to the key, in USD', usdArg)
      .option('--metadata <json>', 'a JSON object stored with the key'),
  );
}

export function addCreateOnlyOptions(cmd: Command): Command {
  return cmd
    .option('--org <org>', 'the org (id or name)')
    .option('--type <type>', `key type: ${KEY_TYPES.join('|')} (default user, or org without --user)`, choiceArg(KEY_TYPES))
    .option('--parent <key>', 'parent key: the new key can never exceed it')
    .option('--env <env>', `environment tag: ${KEY_ENVS.join('|')} (default live)`, choiceArg(KEY_ENVS));
}

function parseMetadata(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw usageError('--metadata must be a JSON object', 'metadata');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw usageError('--metadata must be a JSON object', 'metadata');
  return value as Record<string, unknown>;
}

export function keyInput(flags: KeyFlags, now: Date): KeyInput {
  if (flags.expiresIn && flags.expiresAt) throw usageError('use either --expires-in or --expires-at');
  const input: KeyInput = {
    name: flags.name,
    type: flags.type,
    user: flags.user,
    parent: flags.parent,
    env: flags.env,
    models: flags.models,
    ip: flags.ip,
    referrers: flags.referrer,
    status: flags.status,
    limits: limitsFromFlags({ ...flags, budgetUsd: flags.budget }),
  };
  if (flags.expiresIn) input.expiresAt = new Date(now.getTime() + parseDuration(flags.expiresIn, 'expires-in'));
  if (flags.expiresAt) input.expiresAt = parseTimestamp(flags.expiresAt, 'expires-at', ', or --expires-in with a duration such as 30d');
  if (flags.credits) {
    const micros = usdToMicros(flags.credits);
    if (micros <= 0) throw usageError('--credits must be positive', 'credits');
    input.creditsMicros = micros;
  }
  if (flags.metadata) input.metadata = parseMetadata(flags.metadata);
  for (const k of Object.keys(input) as (keyof KeyInput)[]) if (input[k] === undefined) delete input[k];
  return input;
}
