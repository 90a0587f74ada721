// A lean OpenAI-compatible upstream for the benchmark: fixed JSON, or 10 SSE events with usage.
// Runs in its own process so its CPU time is not counted against the proxies.
// BENCH_SSE_EVENTS (10): content events per stream; BENCH_SSE_WRITES: 'two' (default: the first
// event at once, the rest in one write on the next turn of the loop) or 'each' (one write per
// event, a turn of the loop between them, as a model streams its tokens); BENCH_SSE_GAP_MS (0):
// with 'each', that long between events instead of a turn of the loop (a model's pace).
import { createServer } from 'node:http';

const usage = { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22, cost: 0.000032 };
const json = JSON.stringify({
  id: 'gen-bench', object: 'chat.completion', created: 1, model: 'bench/model',
  choices: [{ index: 0, message: { role: 'assistant', content: 'The quick brown fox jumps over the lazy dog today' }, finish_reason: 'stop' }],
  usage,
});
const chunk = (content, extra = {}) =>
  `data: ${JSON.stringify({ id: 'gen-bench', object: 'chat.completion.chunk', created: 1, model: 'bench/model', choices: [{ index: 0, delta: { content }, finish_reason: null }], ...extra })}\n\n`;
const words = 'The quick brown fox jumps over the lazy dog today'.split(' ');
const EVENTS = Number(process.env.BENCH_SSE_EVENTS ?? words.length);
const EACH = process.env.BENCH_SSE_WRITES === 'each';
const GAP_MS = Number(process.env.BENCH_SSE_GAP_MS ?? 0);
const later = GAP_MS > 0 ? (f) => setTimeout(f, GAP_MS) : setImmediate;
const sse = [...Array.from({ length: EVENTS }, (_, i) => chunk(`${words[i % words.length]} `)), `data: ${JSON.stringify({ id: 'gen-bench', object: 'chat.completion.chunk', created: 1, model: 'bench/model', choices: [], usage })}\n\n`, 'data: [DONE]\n\n'];

const server = createServer((req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    const stream = Buffer.concat(parts).includes('"stream":true');
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    // First event at once (time to first byte), the rest on the next turn of the loop, as a model would.
    res.write(sse[0]);
    if (!EACH) return void setImmediate(() => res.end(sse.slice(1).join('')));
    let i = 1;
    const next = () => {
      if (i === sse.length - 1) return void res.end(sse[i]);
      res.write(sse[i++]);
      later(next);
    };
    later(next);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
