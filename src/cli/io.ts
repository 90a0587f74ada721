// What a run of gatewayctl talks to. bin/gatewayctl passes the real process streams; tests
// pass buffers, so every command runs in-process through run(argv).

export interface TextSink {
  write(chunk: string): unknown;
}

export interface CliIO {
  stdout: TextSink;
  stderr: TextSink;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Whether stdin and stdout are a terminal a person can answer prompts on. */
  interactive: boolean;
  /** Whether stdout is a terminal (colours, spinners). */
  stdoutIsTTY: boolean;
}

export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    stdoutIsTTY: Boolean(process.stdout.isTTY),
  };
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  return text;
}
