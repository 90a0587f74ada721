// The one module that renders command results: a table (or lines) for people, or exactly one
// JSON document for scripts. Diagnostics go to stderr so stdout stays parseable.
import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import { GatewayError, isGatewayError } from '../shared/errors.js';
import type { TextSink } from './io.js';
import { DrizzleQueryError } from 'drizzle-orm/errors';

export interface OutputOptions {
  json: boolean;
  color: boolean;
  stdout: TextSink;
  stderr: TextSink;
}

export type Cell = string | number | boolean | null | undefined;

export class Output {
  readonly json: boolean;
  readonly c: ChalkInstance;
  private readonly stdout: TextSink;
  private readonly stderr: TextSink;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.c = new Chalk({ level: opts.color ? 1 : 0 });
    this.stdout = opts.stdout;
    this.stderr = opts.stderr;
  }

  /** The command's result: `data` as JSON with --json, else whatever `human` prints. */
  result(data: unknown, human: () => void): void {
    if (this.json) this.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else human();
  }

  line(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  /** Progress, warnings and other notes: always stderr. */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`${this.c.yellow('warning:')} ${text}\n`);
  }

  success(text: string): void {
    this.line(`${this.c.green('✔')} ${text}`);
  }

  table(head: string[], rows: Cell[][]): void {
    if (rows.length === 0) {
      this.line(this.c.dim('(none)'));
      return;
    }
    const t = new Table({ head: head.map((h) => this.c.bold(h)), style: { head: [], border: [] } });
    for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? this.c.dim('—') : String(c))));
    this.line(t.toString());
  }

  /** Key/value pairs, one per line, aligned. */
  fields(pairs: [string, Cell][]): void {
    const width = Math.max(...pairs.map(([k]) => k.length));
    for (const [k, v] of pairs) {
      const shown = v === null || v === undefined || v === '' ? this.c.dim('—') : String(v);
      this.line(`${this.c.bold(k.padEnd(width))}  ${shown}`);
    }
  }

  error(err: unknown): void {
    const { code, message } = describeError(err);
    if (this.json) this.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
    else this.stderr.write(`${this.c.red('error:')} ${message}\n`);
  }
}

export function describeError(err: unknown): { code: string; message: string } {
  if (isGatewayError(err)) return { code: err.code, message: err.message };
  if (err instanceof GatewayError) return { code: err.code, message: err.message };
  // drizzle's wrapper of a database error (Postgres) carries the statement and every parameter
  // in its message, key hashes and secrets' ciphertext among them, in front of the cause: the
  // cause is what the operator needs, and nothing else leaves.
  if (err instanceof DrizzleQueryError) {
    const cause = err.cause instanceof Error ? err.cause.message : 'no detail from the database';
    return { code: 'internal_error', message: `unexpected store error: ${cause}` };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal_error', message: `unexpected error: ${message}` };
}
