// Benchmark (a script, not a test): the streaming relay's SSE tap in isolation, CPU time per
// stream for three shapes of the same kind of stream (OpenRouter's: content chunks, then a
// usage-only chunk and [DONE]), the client not asking for usage (so the usage chunk is dropped):
// - bench: the proxy benchmark's upstream (first event alone, the other 11 in one chunk);
// - events: those 12 events one chunk each;
// - long: 200 content events one chunk each, then usage and [DONE] (a real model's stream).
// Each stream is pushed through a fresh tap, ended, and its usage, error and end read, as the
// relay does; the cost of making the input buffers is measured apart and taken off.
//
//   npx tsx test/bench/sse-tap-bench.ts
import { createSseTap } from '../../src/proxy/sse-usage.js';

const usage = { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22, cost: 0.000032 };
const event = (body: object) => `data: ${JSON.stringify({ id: 'gen-bench', object: 'chat.completion.chunk', created: 1, model: 'bench/model', ...body })}\n\n`;
const content = (text: string) => event({ choices: [{ index: 0, delta: { content: text }, finish_reason: null }] });
const words = 'The quick brown fox jumps over the lazy dog today'.split(' ');
const tail = [event({ choices: [], usage }), 'data: [DONE]\n\n'];
const shapes: Record<string, { parts: string[]; streams: number }> = {
  bench: { parts: [content(`${words[0]} `), [...words.slice(1).map((w) => content(`${w} `)), ...tail].join('')], streams: 200_000 },
  events: { parts: [...words.map((w) => content(`${w} `)), ...tail], streams: 200_000 },
  long: { parts: [...Array.from({ length: 200 }, (_, i) => content(`${words[i % words.length]} `)), ...tail], streams: 10_000 },
};

let sink = 0;
function relay(parts: readonly string[], n: number): void {
  for (let i = 0; i < n; i++) {
    const tap = createSseTap({ includeUsage: false });
    for (const p of parts) sink += tap.push(Buffer.from(p, 'latin1')).length;
    sink += tap.end().length;
    const s = tap.state;
    sink += (s.usage?.completionTokens ?? 0) + (s.error ? 1 : 0) + (s.truncated && !s.done ? 1 : 0);
  }
}
function inputs(parts: readonly string[], n: number): void {
  for (let i = 0; i < n; i++) for (const p of parts) sink += Buffer.from(p, 'latin1').length;
}
const cpu = (f: () => void) => {
  const t = process.cpuUsage();
  f();
  const u = process.cpuUsage(t);
  return u.user + u.system;
};

console.log('SSE tap, CPU µs per stream (median of 5 rounds)');
for (const [name, { parts, streams }] of Object.entries(shapes)) {
  relay(parts, streams / 4);
  inputs(parts, streams / 4);
  const rounds = Array.from({ length: 5 }, () => (cpu(() => relay(parts, streams)) - cpu(() => inputs(parts, streams))) / streams).sort((a, b) => a - b);
  const events = parts.join('').split('\n\n').length - 1;
  console.log(`  ${name.padEnd(7)} ${String(parts.length).padStart(3)} chunks, ${String(events).padStart(3)} events  ${rounds[2]!.toFixed(2).padStart(6)} µs  (${rounds[0]!.toFixed(2)}–${rounds[4]!.toFixed(2)})`);
}
if (sink === 0) console.log('');
