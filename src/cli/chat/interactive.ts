// The interactive chat: a prompt loop that keeps the conversation, streams each answer, and
// shows tokens, cost and what is left after every turn. Refusals are printed as sentences and
// the session goes on; Ctrl-C during an answer ends that answer, at the prompt it ends the chat.
import { input, select } from '@inquirer/prompts';
import type { ChalkInstance } from 'chalk';
import type { TextSink } from '../io.js';
import { describeError } from '../output.js';
import type { GatewayClient } from './client.js';
import { promptTheme } from './prompt-theme.js';
import { usageLine, usageReportLines } from './render.js';
import type { ChatSession } from './session.js';
import { startSpinner } from './spinner.js';

/** Subscribes to Ctrl-C while an answer streams; returns the unsubscribe function. */
export type InterruptSource = (handler: () => void) => () => void;

export interface ReplDeps {
  client: GatewayClient;
  session: ChatSession;
  stdout: TextSink;
  stderr: TextSink;
  c: ChalkInstance;
  /** Where @inquirer/prompts reads keys and draws. */
  promptContext: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream };
  onInterrupt: InterruptSource;
  spinners: boolean;
  stream: boolean;
}

const HELP = [
  ['/model [name]', 'switch model (pick from the models this key may use)'],
  ['/models', 'list the models this key may use'],
  ['/usage', "this key's usage and what is left of its limits and credits"],
  ['/system [text]', 'set (or clear) the system prompt; the conversation is kept'],
  ['/reset', 'forget the conversation'],
  ['/exit', 'leave (also Ctrl-C or Ctrl-D at the prompt)'],
] as const;

export class ChatRepl {
  private current: AbortController | null = null;

  constructor(private readonly d: ReplDeps) {}

  async run(): Promise<void> {
    const { c, session } = this.d;
    this.note(`${c.bold('gateway chat')} · ${this.d.client.baseUrl} · model ${c.cyan(session.model)}`);
    this.note(c.dim('Type a message, or /help for commands. Ctrl-C stops an answer; /exit leaves.'));
    const off = this.d.onInterrupt(() => this.current?.abort());
    try {
      for (;;) {
        const line = await this.ask();
        if (line === null) break;
        const text = line.trim();
        if (!text) continue;
        if (text.startsWith('/')) {
          if ((await this.command(text)) === 'exit') break;
        } else {
          await this.turn(text);
        }
      }
    } finally {
      off();
    }
    const t = session.totals;
    this.note(c.dim(`bye · ${t.turns} turn(s), ${t.promptTokens + t.completionTokens} tokens`));
  }

  private note(text: string): void {
    this.d.stderr.write(`${text}\n`);
  }

  private async ask(): Promise<string | null> {
    try {
      return await input({ message: '', theme: promptTheme(this.d.c, 'you ›') }, this.d.promptContext);
    } catch (err) {
      if (isPromptExit(err)) return null;
      throw err;
    }
  }

  private async turn(text: string): Promise<void> {
    const { c, session, stdout } = this.d;
    const controller = new AbortController();
    this.current = controller;
    const spinner = startSpinner(this.d.stderr, this.d.spinners, c.dim(`${session.model} is thinking…`));
    let started = false;
    const onDelta = (delta: string) => {
      if (!started) {
        spinner.stop();
        started = true;
      }
      stdout.write(delta);
    };
    try {
      const reply = await session.ask(text, this.d.stream ? { onDelta, signal: controller.signal } : undefined);
      spinner.stop();
      if (!this.d.stream) stdout.write(reply.content);
      stdout.write('\n');
      // A streamed answer carries no gateway_usage; ask the gateway what is left now.
      const report = reply.gatewayUsage ? null : await this.d.client.usageAfter(reply);
      this.note(usageLine(c, reply, report));
    } catch (err) {
      spinner.stop();
      if (started) stdout.write('\n');
      this.note(c.red(describeError(err).message));
    } finally {
      this.current = null;
    }
  }

  private async command(text: string): Promise<'exit' | undefined> {
    const [name = '', ...rest] = text.split(/\s+/);
    const arg = rest.join(' ').trim();
    const { c, session } = this.d;
    try {
      switch (name) {
        case '/exit':
        case '/quit':
          return 'exit';
        case '/help':
          for (const [cmd, what] of HELP) this.note(`  ${c.bold(cmd.padEnd(15))} ${what}`);
          return;
        case '/reset':
          session.reset();
          this.note(c.green('Conversation cleared.'));
          return;
        case '/system':
          session.system = arg || undefined;
          this.note(arg ? c.green('System prompt set.') : c.green('System prompt cleared.'));
          return;
        case '/models':
          for (const m of await this.models()) this.note(`  ${m === session.model ? c.cyan(`${m} (current)`) : m}`);
          return;
        case '/model':
          await this.switchModel(arg);
          return;
        case '/usage':
          for (const l of usageReportLines(c, await this.withSpinner('asking the gateway…', () => this.d.client.usage()))) this.note(l);
          return;
        default:
          this.note(c.yellow(`Unknown command ${name}. Type /help for the list.`));
          return;
      }
    } catch (err) {
      this.note(c.red(describeError(err).message));
    }
  }

  private async switchModel(arg: string): Promise<void> {
    const { c, session } = this.d;
    const models = await this.models();
    if (models.length === 0) {
      this.note(c.yellow('This key may use no model.'));
      return;
    }
    let next = arg;
    if (!next) {
      try {
        next = await select(
          { message: 'model', choices: models.map((value) => ({ value })), default: session.model, theme: promptTheme(c, '?') },
          this.d.promptContext,
        );
      } catch (err) {
        if (isPromptExit(err)) return;
        throw err;
      }
    } else if (!models.includes(next)) {
      this.note(c.yellow(`This key may not use '${next}'. It may use: ${models.join(', ')}.`));
      return;
    }
    session.model = next;
    this.note(c.green(`Model: ${next}`));
  }

  private models(): Promise<string[]> {
    return this.withSpinner('fetching models…', () => this.d.client.listModels());
  }

  private async withSpinner<T>(text: string, fn: () => Promise<T>): Promise<T> {
    const spinner = startSpinner(this.d.stderr, this.d.spinners, this.d.c.dim(text));
    try {
      return await fn();
    } finally {
      spinner.stop();
    }
  }
}

/** Ctrl-C or Ctrl-D at an @inquirer prompt: the person wants out, not an error. */
function isPromptExit(err: unknown): boolean {
  return err instanceof Error && (err.name === 'ExitPromptError' || err.name === 'AbortPromptError');
}
