// Wraps a command's body: builds its Output, runs it, and turns a thrown error into the one
// error line (or JSON) and its exit code. Commands return nothing; they print through Output.
import type { Command } from 'commander';
import { isGatewayError } from '../shared/errors.js';
import type { App } from './app.js';
import type { Output } from './output.js';
import type { Prompter } from './prompt.js';

export interface Run {
  app: App;
  cmd: Command;
  out: Output;
  prompt: Prompter;
}

export class CommandFailed extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

type Body<A extends unknown[]> = (run: Run, ...args: A) => Promise<void>;

/** commander passes (…positional args, options, command); we hand bodies (run, …positional, options). */
export function action<A extends unknown[]>(app: App, body: Body<A>) {
  return async (...raw: unknown[]): Promise<void> => {
    const cmd = raw[raw.length - 1] as Command;
    const args = raw.slice(0, -1) as A;
    const out = app.output(cmd);
    try {
      await app.authorize(cmd, args);
      await body({ app, cmd, out, prompt: app.prompter(cmd) }, ...args);
    } catch (caught) {
      const err = app.explain(caught);
      out.error(err);
      throw new CommandFailed(isGatewayError(err) ? err.exitCode : 1);
    }
  };
}
