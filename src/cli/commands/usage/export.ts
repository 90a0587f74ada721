// gatewayctl usage export: raw events as CSV or JSON lines, streamed page by page so memory
// stays constant, waiting for 'drain' when the file or pipe is slower than the store.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { UsageEvent } from '../../../shared/db/schema.js';
import { parseSince } from '../../../shared/duration.js';
import { GatewayError, usageError } from '../../../shared/errors.js';
import { formatMicros } from '../../../shared/money.js';
import { iterateUsageEvents } from '../../../shared/services/usage.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import type { TextSink } from '../../io.js';
import { choiceArg } from '../../parse.js';

const COLUMNS = [
  'request_id', 'ts', 'org_id', 'user_id', 'key_id', 'model', 'provider', 'prompt_tokens', 'completion_tokens',
  'total_tokens', 'cost_usd', 'status', 'error_code', 'latency_ms', 'ttfb_ms', 'stream', 'usage_source',
] as const;

/** cost_usd is an exact decimal string here: exports feed billing. */
function record(e: UsageEvent): Record<(typeof COLUMNS)[number], string | number | boolean | null> {
  return {
    request_id: e.requestId, ts: e.ts.toISOString(), org_id: e.orgId, user_id: e.userId, key_id: e.keyId, model: e.model,
    provider: e.provider, prompt_tokens: e.promptTokens, completion_tokens: e.completionTokens, total_tokens: e.totalTokens,
    cost_usd: formatMicros(e.costMicros), status: e.status, error_code: e.errorCode, latency_ms: e.latencyMs,
    ttfb_ms: e.ttfbMs, stream: e.stream, usage_source: e.usageSource,
  };
}

function csvCell(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatEvents(events: UsageEvent[], format: 'csv' | 'jsonl'): string {
  if (format === 'jsonl') return events.map((e) => `${JSON.stringify(record(e))}\n`).join('');
  return events.map((e) => `${COLUMNS.map((c) => csvCell(record(e)[c])).join(',')}\n`).join('');
}

type Drainable = TextSink & { once?: unknown };

async function write(sink: Drainable, chunk: string): Promise<void> {
  if (sink.write(chunk) === false && typeof sink.once === 'function') await once(sink as unknown as NodeJS.EventEmitter, 'drain');
}

/** A failure of the file or pipe, told apart from the store's (which the page reads throw). */
function cannotWrite(where: string) {
  return (err: unknown): never => {
    throw new GatewayError('internal_error', `cannot write ${where}: ${err instanceof Error ? err.message : String(err)}`);
  };
}

interface ExportFlags {
  since?: string;
  format: 'csv' | 'jsonl';
  out?: string;
  org?: string;
  key?: string;
  user?: string;
}

export function registerUsageExport(usage: Command, app: App): void {
  usage
    .command('export')
    .option('--since <when>', 'a duration such as 30d or an ISO date (default: everything)')
    .option('--format <format>', 'csv or jsonl', choiceArg(['csv', 'jsonl'] as const), 'csv')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--org <org>', 'only this org')
    .option('--key <key>', 'only this key')
    .option('--user <user>', 'only this user')
    .description('stream raw usage events, oldest first')
    .addHelpText('after', '\nExamples:\n  gatewayctl usage export --since 30d --out usage.csv\n  gatewayctl usage export --format jsonl | gzip > usage.jsonl.gz')
    .action(
      action(app, async ({ cmd, out }: Run, flags: ExportFlags) => {
        if (out.json && !flags.out) throw usageError('--json needs --out FILE (the export itself goes to the file)', 'out');
        const ctx = await app.services(cmd);
        const since = flags.since ? parseSince(flags.since, ctx.now().getTime()) : undefined;
        const pages = iterateUsageEvents(ctx, { org: flags.org, key: flags.key, user: flags.user, since });
        const path = flags.out ? resolve(app.io.cwd, flags.out) : null;
        const file = path ? createWriteStream(path, { flags: 'w', mode: 0o600 }) : null;
        const sink: Drainable = file ?? app.io.stdout;
        const failed = cannotWrite(path ?? 'stdout');
        let rows = 0;
        try {
          if (file) await once(file, 'open').catch(failed);
          if (flags.format === 'csv') await write(sink, `${COLUMNS.join(',')}\n`).catch(failed);
          for await (const page of pages) {
            await write(sink, formatEvents(page, flags.format)).catch(failed);
            rows += page.length;
            if (file && app.io.stdoutIsTTY) out.note(`exported ${rows} events…`);
          }
        } finally {
          if (file) {
            file.end();
            await once(file, 'close').catch(() => {});
          }
        }
        if (path) out.result({ file: path, format: flags.format, rows }, () => out.success(`${rows} events written to ${path}`));
      }),
    );
}
