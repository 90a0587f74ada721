import type { Command } from 'commander';
import { usageError } from '../../../shared/errors.js';
import { FAILURE_MODES, type OrgInput, PROVIDERS } from '../../../shared/services/orgs.js';
import type { App } from '../../app.js';
import { readAll } from '../../io.js';
import { choiceArg, positiveIntArg } from '../../parse.js';

export interface OrgFlags {
  provider?: string;
  baseUrl?: string;
  upstreamKeyEnv?: string;
  upstreamKeyStdin?: boolean;
  failureMode?: string;
  unknownModels?: string;
  defaultMaxTokens?: number;
  httpReferer?: string;
  appTitle?: string;
  name?: string;
}

export function addOrgOptions(cmd: Command): Command {
  return cmd
    .option('--provider <provider>', `upstream: ${PROVIDERS.join('|')}`, choiceArg(PROVIDERS))
    .option('--base-url <url>', 'upstream base URL (required for openai-compatible)')
    .option('--upstream-key-env <VAR>', 'read the upstream API key from this environment variable')
    .option('--upstream-key-stdin', 'read the upstream API key from standard input')
    .option('--failure-mode <mode>', 'when the store or Redis is unreachable: closed (503) or open (serve)', choiceArg(FAILURE_MODES))
    .option('--unknown-models <policy>', 'models without a price: refuse, or free (nothing reserved for cost; billed what the upstream reports, else zero)', choiceArg(['refuse', 'free'] as const))
    .option('--default-max-tokens <n>', 'completion cap reserved when a request gives no max_tokens', positiveIntArg)
    .option('--http-referer <url>', 'HTTP-Referer sent to OpenRouter for attribution')
    .option('--app-title <title>', 'X-Title sent to OpenRouter for attribution');
}

export async function orgInput(app: App, flags: OrgFlags): Promise<OrgInput> {
  const input: OrgInput = {
    provider: flags.provider,
    baseUrl: flags.baseUrl,
    failureMode: flags.failureMode,
    unknownModelPolicy: flags.unknownModels,
    defaultMaxTokens: flags.defaultMaxTokens,
    httpReferer: flags.httpReferer,
    appTitle: flags.appTitle,
    name: flags.name,
  };
  if (flags.upstreamKeyEnv && flags.upstreamKeyStdin) throw usageError('use either --upstream-key-env or --upstream-key-stdin');
  if (flags.upstreamKeyEnv) {
    const v = app.io.env[flags.upstreamKeyEnv];
    if (!v) throw usageError(`environment variable ${flags.upstreamKeyEnv} is empty or unset`, 'upstream_key_env');
    input.upstreamKey = v.trim();
  }
  if (flags.upstreamKeyStdin) {
    const v = (await readAll(app.io.stdin)).trim();
    if (!v) throw usageError('no upstream key on standard input', 'upstream_key_stdin');
    input.upstreamKey = v;
  }
  for (const k of Object.keys(input) as (keyof OrgInput)[]) if (input[k] === undefined) delete input[k];
  return input;
}
