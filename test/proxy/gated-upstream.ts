// Review helper (not a test): an OpenAI-compatible upstream whose streams pause at a gate the
// test opens, so the configuration can be changed at a known point in the middle of a stream.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openRouterModel } from '../fakes/upstream.js';

export const M = 'openai/gpt-4o-mini';

export interface Gated {
  url: string;
  /** Streams that have sent their first part and wait at the gate. */
  waiting(): number;
  /** Lets every waiting stream (and held JSON reply) go on. */
  open(): void;
  close(): Promise<void>;
}

const chunk = (text: string) =>
  `data: ${JSON.stringify({ id: 'gen-r1', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
const usageChunk = (prompt: number, completion: number) =>
  `data: ${JSON.stringify({ id: 'gen-r1', object: 'chat.completion.chunk', created: 1, model: M, choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } })}\n\n`;
const finishChunk = `data: ${JSON.stringify({ id: 'gen-r1', object: 'chat.completion.chunk', created: 1, model: M, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`;

/** 20 bytes of text an event: the stream watch counts 20 tokens of bound per event. */
export const PIECE = 'x'.repeat(19) + ' ';

/**
 * Streams (stream: true): one 20-byte event, the gate, then `after` more (default 10), a finish
 * chunk and usage {prompt 10, completion 55}. JSON: usage from the message when it reads
 * `burn P C` (after the gate when it reads `hold`), else {10, 5}.
 */
export async function startGated(opts: { after?: number } = {}): Promise<Gated> {
  let waiting = 0;
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => (release = r));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(parts).toString('utf8');
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: [openRouterModel(M, '0', '0.000001')], total_count: 1, links: { next: null } }));
        return;
      }
      const body = JSON.parse(raw) as { stream?: boolean; messages: { content: string }[] };
      const text = body.messages.map((m) => m.content).join(' ');
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk(PIECE));
        waiting++;
        await gate;
        waiting--;
        for (let i = 0; i < (opts.after ?? 10); i++) res.write(chunk(PIECE));
        res.write(finishChunk);
        res.write(usageChunk(10, 55));
        res.end('data: [DONE]\n\n');
        return;
      }
      if (text.includes('hold')) {
        waiting++;
        await gate;
        waiting--;
      }
      const m = /burn (\d+) (\d+)/.exec(text);
      const [p, c] = m ? [Number(m[1]), Number(m[2])] : [10, 5];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'gen-r1', object: 'chat.completion', created: 1, model: M,
          choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'ok' } }],
          usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    waiting: () => waiting,
    open: () => {
      const r = release;
      gate = new Promise<void>((x) => (release = x));
      r();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
