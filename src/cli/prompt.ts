// Asking a person for missing input (the prompt library loads only when a prompt is shown). Scripts never see a prompt: with --json, --yes, CI=true
// or no terminal, a missing answer is a usage error (exit 2) that names the flag to pass.
import { GatewayError, usageError } from '../shared/errors.js';
import type { CliIO } from './io.js';

export interface PromptPolicy {
  interactive: boolean;
  json: boolean;
  yes: boolean;
  ci: boolean;
}

export class Prompter {
  readonly canPrompt: boolean;
  private readonly yes: boolean;
  private readonly context: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream } | undefined;

  constructor(policy: PromptPolicy, io: CliIO) {
    this.canPrompt = policy.interactive && !policy.json && !policy.yes && !policy.ci;
    this.yes = policy.yes;
    const out = io.stderr as unknown as NodeJS.WritableStream;
    this.context = typeof (out as { on?: unknown }).on === 'function' ? { input: io.stdin, output: out } : undefined;
  }

  private need(flag: string, what: string): never {
    throw usageError(`missing ${what}: pass ${flag}`, flag.replace(/^--/, ''));
  }

  async text(flag: string, message: string, validate?: (v: string) => true | string): Promise<string> {
    if (!this.canPrompt) this.need(flag, message.toLowerCase());
    const { input } = await import('@inquirer/prompts');
    return input({ message, validate: validate ?? ((v) => (v.trim() ? true : 'required')) }, this.context);
  }

  async secret(flag: string, message: string): Promise<string> {
    if (!this.canPrompt) this.need(flag, message.toLowerCase());
    const { password } = await import('@inquirer/prompts');
    return password({ message, mask: '*' }, this.context);
  }

  async choose<T extends string>(flag: string, message: string, choices: readonly T[]): Promise<T> {
    if (!this.canPrompt) this.need(flag, message.toLowerCase());
    const { select } = await import('@inquirer/prompts');
    return select({ message, choices: choices.map((value) => ({ value })) }, this.context);
  }

  /** Destructive actions: --yes confirms; a person is asked; a script without --yes is refused. */
  async confirmDestructive(what: string): Promise<void> {
    if (this.yes) return;
    if (!this.canPrompt) throw usageError(`refusing to ${what} without --yes`, 'yes');
    const { confirm } = await import('@inquirer/prompts');
    const ok = await confirm({ message: `Really ${what}?`, default: false }, this.context);
    if (!ok) throw new GatewayError('aborted', 'aborted: nothing was changed');
  }
}
