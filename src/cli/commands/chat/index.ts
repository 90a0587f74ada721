import type { Command } from 'commander';
import { GatewayError, usageError } from '../../../shared/errors.js';
import { action, type Run } from '../../action.js';
import type { App } from '../../app.js';
import { type ChatReply, GatewayClient } from '../../chat/client.js';
import { ChatRepl, type InterruptSource } from '../../chat/interactive.js';
import { usageLine } from '../../chat/render.js';
import { ChatSession } from '../../chat/session.js';
import { startSpinner } from '../../chat/spinner.js';
import { readAll } from '../../io.js';
import { positiveIntArg } from '../../parse.js';
import { type ChatFlags, DEFAULT_GATEWAY_URL, resolveTarget } from './settings.js';

const EXAMPLES = `
Examples:
  gatewayctl chat "hello"                         one answer on stdout; tokens, cost and what is left on stderr
  gatewayctl chat --stream "write a haiku"        print the answer as it arrives
  echo "summarise this" | gatewayctl chat         the message from stdin
  gatewayctl chat                                 an interactive session (on a terminal)
  gatewayctl chat --as bob                        use a demo user's key (see 'gatewayctl demo')
  gatewayctl chat --url https://gw.example.com --api-key "$KEY" --model openai/gpt-4o-mini --json "ping"

Interactive commands: /model [name], /models, /usage, /system [text], /reset, /help, /exit.
Ctrl-C stops the answer being streamed; at the prompt it ends the session.`;

const onSigint: InterruptSource = (handler) => {
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
};

export function registerChat(program: Command, app: App): void {
  program
    .command('chat')
    .argument('[message...]', 'the message; omit it for an interactive session (or pipe it on stdin)')
    .description('talk to the gateway with an API key: one message, or an interactive session')
    .option('--url <url>', `gateway URL (env GATEWAY_URL; default ${DEFAULT_GATEWAY_URL}, or the demo's)`)
    .option('--api-key <key>', "API key (env GATEWAY_API_KEY; default: the demo key from 'gatewayctl demo')")
    .option('--as <demo-user>', 'use the key of this demo user: alice, bob or carol')
    .option('--model <model>', "model (default: the demo's choice for a demo key, else the first model the key may use)")
    .option('--stream', 'stream the answer as it arrives (interactive sessions always do)')
    .option('--no-stream', 'wait for whole answers, also in an interactive session')
    .option('--system <text>', 'system prompt')
    .option('--max-tokens <n>', 'cap on answer tokens per turn', positiveIntArg)
    .addHelpText('after', EXAMPLES)
    .action(
      action(app, async (run: Run, words: string[], flags: ChatFlags) => {
        const target = resolveTarget(app, flags);
        const client = new GatewayClient({ url: target.url, apiKey: target.apiKey });
        try {
          let message = words.join(' ').trim();
          if (!message && !app.io.interactive && !stdinIsTTY(app.io.stdin)) message = (await readAll(app.io.stdin)).trim();
          const chosen = { ...flags, model: flags.model ?? target.model };
          if (message) return await oneShot(run, client, message, chosen);
          if (!run.prompt.canPrompt) {
            throw usageError('no message: pass MESSAGE, pipe it on stdin, or run in a terminal (without --json, CI=true) for an interactive session');
          }
          await interactive(run, client, chosen, target.keySource);
        } finally {
          await client.close();
        }
      }),
    );
}

/** A terminal on stdin with stdout piped: nobody is going to pipe a message in. */
function stdinIsTTY(stdin: NodeJS.ReadableStream): boolean {
  return Boolean((stdin as { isTTY?: boolean }).isTTY);
}

async function pickModel(run: Run, client: GatewayClient, flags: ChatFlags): Promise<string> {
  if (flags.model) return flags.model;
  const spinner = startSpinner(run.app.io.stderr, run.app.io.interactive && !run.out.json, run.out.c.dim('fetching models…'));
  const models = await client.listModels().finally(() => spinner.stop());
  if (!models[0]) throw new GatewayError('forbidden', 'This key may use no model: ask an admin to allow one (keys update --models, orgs models add).');
  return models[0];
}

async function oneShot(run: Run, client: GatewayClient, message: string, flags: ChatFlags): Promise<void> {
  const { out, app } = run;
  const session = new ChatSession(client, { model: await pickModel(run, client, flags), system: flags.system, maxTokens: flags.maxTokens });
  const streaming = Boolean(flags.stream) && !out.json;
  const spinner = startSpinner(app.io.stderr, app.io.interactive && !out.json, out.c.dim(`${session.model} is thinking…`));
  let printed = false;
  const onDelta = (d: string) => {
    spinner.stop();
    printed = true;
    app.io.stdout.write(d);
  };
  let reply: ChatReply;
  try {
    reply = await session.ask(message, streaming ? { onDelta } : undefined);
  } catch (err) {
    // End a broken-off answer's line so the error (stderr) does not run into it.
    if (printed) app.io.stdout.write('\n');
    throw err;
  } finally {
    spinner.stop();
  }
  // A streamed answer carries no gateway_usage: ask the gateway what is left (best effort).
  const report = !out.json && !reply.gatewayUsage ? await client.usageAfter(reply) : null;
  out.result(replyJson(reply), () => {
    app.io.stdout.write(streaming ? '\n' : `${reply.content}\n`);
    out.note(usageLine(out.c, reply, report));
  });
}

async function interactive(run: Run, client: GatewayClient, flags: ChatFlags, keySource: string): Promise<void> {
  const { app, out } = run;
  const model = await pickModel(run, client, flags);
  const session = new ChatSession(client, { model, system: flags.system, maxTokens: flags.maxTokens });
  out.note(out.c.dim(`key: ${keySource}`));
  await new ChatRepl({
    client,
    session,
    stdout: app.io.stdout,
    stderr: app.io.stderr,
    c: out.c,
    promptContext: { input: app.io.stdin, output: app.io.stderr as unknown as NodeJS.WritableStream },
    onInterrupt: onSigint,
    spinners: app.io.interactive,
    stream: flags.stream !== false,
  }).run();
}

/** The --json document: one per answer, snake_case like every other command. */
function replyJson(r: ChatReply) {
  return {
    model: r.model,
    content: r.content,
    finish_reason: r.finishReason,
    usage: r.usage
      ? { prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.totalTokens, cost_usd: r.gatewayUsage?.costUsd ?? r.usage.costUsd }
      : null,
    limits: (r.gatewayUsage?.limits ?? []).map((l) => ({ scope: l.scope, metric: l.metric, window: l.window, limit: l.limit, used: l.used, remaining: l.remaining, resets_at: l.resetsAt })),
    credits: (r.gatewayUsage?.credits ?? []).map((c) => ({ scope: c.scope, balance_usd: c.balanceUsd })),
    rate_limit: {
      remaining_requests: r.rateLimit.remainingRequests,
      remaining_tokens: r.rateLimit.remainingTokens,
      reset_requests: r.rateLimit.resetRequests,
      reset_tokens: r.rateLimit.resetTokens,
    },
  };
}
