import { describe, expect, it } from 'vitest';
import {
  createSseObserver,
  createSseRewriter,
  createSseTap,
  formatSseError,
  SSE_DONE,
  type SseObservation,
} from '../../src/proxy/sse-usage.js';

// The real OpenRouter capture of protocols.md A.4, with the elided repeated fields restored.
const HEAD = '"id":"gen-1769532074","provider":"Liquid","model":"liquid/lfm-2.5-1.2b-instruct:free","object":"chat.completion.chunk","created":1769532074';
const choice = (content: string, finish: string | null) =>
  `"choices":[{"index":0,"delta":{"role":"assistant","content":"${content}"},"finish_reason":${finish ? `"${finish}"` : 'null'},"native_finish_reason":${finish ? `"${finish}"` : 'null'},"logprobs":null}]`;
const USAGE =
  '"usage":{"prompt_tokens":15,"completion_tokens":10,"total_tokens":25,"cost":0,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"cost_details":{"upstream_inference_cost":0,"upstream_inference_prompt_cost":0,"upstream_inference_completions_cost":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}';
const KEEP_ALIVE = ': OPENROUTER PROCESSING\n\n';
const CAPTURE = [
  KEEP_ALIVE,
  `data: {${HEAD},${choice('', null)},"system_fingerprint":""}\n\n`,
  `data: {${HEAD},${choice('Hello', null)},"system_fingerprint":""}\n\n`,
  KEEP_ALIVE,
  KEEP_ALIVE,
  `data: {${HEAD},${choice('', 'stop')},"system_fingerprint":""}\n\n`,
  `data: {${HEAD},${choice('', null)},${USAGE}}\n\n`,
  SSE_DONE,
].join('');

/** Every field of an observation as plain data (the delivered-text figures are getters, measured when read). */
function plain(s: Readonly<SseObservation>): SseObservation {
  return {
    usage: s.usage, done: s.done, error: s.error, events: s.events, comments: s.comments, deltas: s.deltas,
    deliveredChars: s.deliveredChars, deliveredBytes: s.deliveredBytes, id: s.id, model: s.model, atBoundary: s.atBoundary, truncated: s.truncated,
  };
}

function observe(parts: Array<string | Uint8Array>, end = true): SseObservation {
  const observer = createSseObserver();
  for (const p of parts) observer.push(typeof p === 'string' ? Buffer.from(p) : p);
  if (end) observer.end();
  return plain(observer.state);
}

function rewrite(parts: Array<string | Uint8Array>, includeUsage: boolean): string {
  const rewriter = createSseRewriter({ includeUsage });
  const out: Uint8Array[] = [];
  for (const p of parts) out.push(...rewriter.push(typeof p === 'string' ? Buffer.from(p) : p));
  out.push(...rewriter.end());
  return Buffer.concat(out).toString();
}

function splitAt(text: string, at: number): Buffer[] {
  const bytes = Buffer.from(text);
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

function dataEvents(stream: string): unknown[] {
  return stream
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice(6)));
}

const chunk = (body: string) => `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",${body}}\n\n`;

describe('createSseObserver', () => {
  it('reports usage, [DONE], keep-alives and delivered text of the real OpenRouter capture', () => {
    const state = observe([CAPTURE]);
    expect(state.usage).toMatchObject({ promptTokens: 15, completionTokens: 10, totalTokens: 25, cost: 0 });
    expect(state.usage?.costText).toBeUndefined(); // the number decides alone
    expect(state.done).toBe(true);
    expect(state.error).toBeNull();
    expect(state.comments).toBe(3);
    expect(state.events).toBe(4);
    expect(state.deltas).toBe(1);
    expect(state.deliveredChars).toBe(5);
    expect(state.model).toBe('liquid/lfm-2.5-1.2b-instruct:free');
    expect(state.id).toBe('gen-1769532074');
    expect(state.truncated).toBe(false);
  });

  it('gives the same observation whichever byte the stream is split at', () => {
    const whole = observe([CAPTURE]);
    const bytes = Buffer.byteLength(CAPTURE);
    for (let at = 0; at <= bytes; at++) expect(observe(splitAt(CAPTURE, at))).toEqual(whole);
  });

  it('survives a stream delivered one byte at a time', () => {
    const bytes = Buffer.from(CAPTURE);
    const parts = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    expect(observe(parts)).toEqual(observe([CAPTURE]));
  });

  it('takes usage from a chunk with empty choices (the documented shape)', () => {
    const state = observe([chunk('"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"cost":0.0000123}'), SSE_DONE]);
    expect(state.usage).toMatchObject({ promptTokens: 3, completionTokens: 4, totalTokens: 7, cost: 0.0000123 });
  });

  it('keeps the exact literal of cost where the number alone cannot decide it (near a half micro-dollar), exponent included, and ignores nested cost fields', () => {
    const usage = (cost: string) => `"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost_details":{"cost":5},"cost":${cost}}`;
    for (const [literal, kept] of [
      ['3.25e-5', true], // 32.5 micro-dollars
      ['0.00003249999999999999999', true], // the same double as 0.0000325; the text rounds down
      ['0.0000325000001', true], // within 1e-6 of the half
      ['0.000032500002', false], // 2e-6 past it: the number decides
      ['1.5e-7', false],
      ['1234.5678905', true], // past 1e9 micro-dollars: the text decides
    ] as const) {
      const state = observe([chunk(`"choices":[],${usage(literal)}`)]);
      expect(state.usage?.cost, literal).toBe(Number(literal));
      expect(state.usage?.costText, literal).toBe(kept ? literal : undefined);
    }
  });

  it('ignores "usage":null on ordinary OpenAI chunks and keeps the last real usage', () => {
    const state = observe([
      chunk('"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null'),
      chunk('"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}'),
      chunk('"choices":[],"usage":null'),
    ]);
    expect(state.usage).toMatchObject({ promptTokens: 2, completionTokens: 1, totalTokens: 3 });
    expect(state.usage?.cost).toBeUndefined();
  });

  it('handles CRLF line endings', () => {
    const crlf = CAPTURE.replaceAll('\n', '\r\n');
    const whole = observe([CAPTURE]);
    expect(observe([crlf])).toEqual(whole);
    const bytes = Buffer.byteLength(crlf);
    for (let at = 0; at <= bytes; at += 7) expect(observe(splitAt(crlf, at))).toEqual(whole);
  });

  it('treats EOF without [DONE] as the end and says the stream was not completed', () => {
    const cut = CAPTURE.slice(0, CAPTURE.indexOf('data: [DONE]'));
    const state = observe([cut]);
    expect(state.done).toBe(false);
    expect(state.usage?.totalTokens).toBe(25);
    expect(state.truncated).toBe(false);
  });

  it('examines an unterminated last event at EOF and flags the stream as truncated', () => {
    const state = observe([chunk('"choices":[{"index":0,"delta":{"content":"abc"}}]'), 'data: {"choices":[{"delta":{"content":"de']);
    expect(state.deliveredChars).toBe(3);
    expect(state.truncated).toBe(true);
  });

  it('reports a mid-stream error chunk with a numeric code', () => {
    const err =
      'data: {"id":"gen-abc123","object":"chat.completion.chunk","created":1234567890,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded","provider_code":"rate_limited"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"x"}]}\n\n';
    const state = observe([chunk('"choices":[{"index":0,"delta":{"content":"partial"}}]'), err]);
    expect(state.error).toEqual({
      message: 'Rate limit exceeded',
      code: 429,
      type: 'rate_limit_exceeded',
      metadata: { error_type: 'rate_limit_exceeded', provider_code: 'rate_limited' },
    });
    expect(state.done).toBe(false);
    expect(state.deliveredChars).toBe(7);
  });

  it('reports a mid-stream error chunk with a string code and empty choices', () => {
    const state = observe([chunk('"error":{"code":"server_error","message":"Provider disconnected"},"choices":[]')]);
    expect(state.error).toEqual({ message: 'Provider disconnected', code: 'server_error', type: null });
  });

  it('does not mistake the word error in content, or finish_reason "error" alone, for an error chunk', () => {
    const state = observe([chunk('"choices":[{"index":0,"delta":{"content":"an \\"error\\" here"},"finish_reason":"error"}]')]);
    expect(state.error).toBeNull();
    expect(state.deliveredChars).toBe('an "error" here'.length);
  });

  it('reports an `event: error` SSE event', () => {
    const state = observe(['event: error\ndata: {"message":"boom","type":"server_error","code":null}\n\n']);
    expect(state.error).toMatchObject({ message: 'boom', type: 'server_error', code: null });
  });

  it('counts multi-byte UTF-8 text split inside a character', () => {
    const text = 'héllo 世界 🎉';
    const stream = chunk(`"choices":[{"index":0,"delta":{"content":"${text}"}}]`);
    const whole = observe([stream]);
    expect(whole.deliveredChars).toBe(text.length);
    expect(whole.deliveredBytes).toBe(Buffer.byteLength(text));
    const start = Buffer.from(stream).indexOf(Buffer.from('世'));
    for (let at = start; at < start + 12; at++) expect(observe(splitAt(stream, at))).toEqual(whole);
  });

  it('counts escaped text, reasoning (delta.reasoning and delta.reasoning_content alike) and tool-call arguments as delivered', () => {
    const state = observe([
      chunk('"choices":[{"index":0,"delta":{"content":"a\\nb\\u00e9"}}]'),
      chunk('"choices":[{"index":0,"delta":{"reasoning":"think"}}]'),
      chunk('"choices":[{"index":0,"delta":{"reasoning_content":"ponder"}}]'),
      chunk('"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"q\\":1}"}}]}}]'),
      chunk('"choices":[{"index":0,"delta":{"content":null}}]'),
    ]);
    expect(state.deliveredChars).toBe(4 + 5 + 6 + 7);
    expect(state.deliveredBytes).toBe(5 + 5 + 6 + 7);
    expect(state.deltas).toBe(4);
  });

  it('measures delivered text exactly on long streams (measured in batches) and when read midway', () => {
    const observer = createSseObserver();
    let chars = 0;
    for (let i = 0; i < 3000; i++) {
      const text = `w${i} ü`.repeat(8); // 3,000 events of ~120 bytes: far past the 4 KB kept unmeasured
      chars += text.length;
      observer.push(Buffer.from(chunk(`"choices":[{"index":0,"delta":{"content":"${text}"}}]`)));
      if (i === 1500) expect(observer.state.deltas).toBe(1501);
    }
    observer.end();
    expect(observer.state.deltas).toBe(3000);
    expect(observer.state.deliveredChars).toBe(chars);
    expect(observer.state.deliveredBytes).toBe(chars + 3000 * 8); // each ü is 2 bytes
  });

  it('reports event boundaries so the proxy can cut the stream between events', () => {
    const observer = createSseObserver();
    const first = chunk('"choices":[]');
    const r1 = observer.push(Buffer.from(first + 'data: {"par'));
    expect(r1).toEqual({ events: 1, boundary: Buffer.byteLength(first) });
    expect(observer.state.atBoundary).toBe(false);
    const r2 = observer.push(Buffer.from('tial":1}\n'));
    expect(r2).toEqual({ events: 0, boundary: -1 });
    const r3 = observer.push(Buffer.from(`\n${KEEP_ALIVE}`));
    expect(r3).toEqual({ events: 2, boundary: 1 + KEEP_ALIVE.length });
    expect(observer.state.atBoundary).toBe(true);
  });
});

describe('createSseRewriter', () => {
  it('drops the usage-only chunk and usage fields for a client that did not ask for usage', () => {
    const out = rewrite([CAPTURE], false);
    expect(out).not.toContain('"usage"');
    const events = dataEvents(out);
    expect(events).toHaveLength(3);
    expect(out.endsWith(SSE_DONE)).toBe(true);
    expect(out.match(/OPENROUTER PROCESSING/g)).toHaveLength(3);
  });

  it('gives a client that asked for usage one OpenAI-shaped usage chunk with choices: []', () => {
    const out = rewrite([CAPTURE], true);
    const events = dataEvents(out) as Array<{ choices: unknown[]; usage?: { total_tokens: number; cost: number } }>;
    expect(events).toHaveLength(4);
    const last = events.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ total_tokens: 25, cost: 0 });
    expect(events.slice(0, -1).every((e) => e.usage === undefined)).toBe(true);
    expect(out.endsWith(SSE_DONE)).toBe(true);
  });

  it('splits a usage chunk whose choices carry content into a content chunk and a usage chunk', () => {
    const input = chunk('"choices":[{"index":0,"delta":{"content":"end"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}');
    const withUsage = dataEvents(rewrite([input], true)) as Array<Record<string, unknown>>;
    expect(withUsage).toHaveLength(2);
    expect(withUsage[0]).not.toHaveProperty('usage');
    expect(withUsage[0]?.choices).toHaveLength(1);
    expect(withUsage[1]).toMatchObject({ id: 'c1', choices: [], usage: { total_tokens: 2 } });
    const without = dataEvents(rewrite([input], false)) as Array<Record<string, unknown>>;
    expect(without).toHaveLength(1);
    expect(without[0]).not.toHaveProperty('usage');
    expect(without[0]?.choices).toHaveLength(1);
  });

  it('forwards an already OpenAI-shaped usage chunk untouched when usage was asked for', () => {
    const input = chunk('"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}') + SSE_DONE;
    expect(rewrite([input], true)).toBe(input);
  });

  it('returns the very input bytes (zero-copy views) for events it does not change', () => {
    const rewriter = createSseRewriter({ includeUsage: false });
    const input = Buffer.from(KEEP_ALIVE + chunk('"choices":[{"index":0,"delta":{"content":"x"}}],"usage":null'));
    const out = rewriter.push(input);
    expect(out).toHaveLength(1);
    expect(out[0]?.buffer).toBe(input.buffer);
    expect(Buffer.from(out[0] ?? []).equals(input)).toBe(true);
  });

  it('gives the same output whichever byte the stream is split at, CRLF included', () => {
    for (const includeUsage of [false, true]) {
      const crlf = CAPTURE.replaceAll('\n', '\r\n');
      const expected = rewrite([crlf], includeUsage);
      for (let at = 0; at <= Buffer.byteLength(crlf); at++) expect(rewrite(splitAt(crlf, at), includeUsage)).toBe(expected);
    }
  });

  it('rewrites an unterminated usage chunk at EOF and passes other trailing bytes through', () => {
    const usageOnly = 'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
    expect(rewrite([chunk('"choices":[]'), usageOnly], false)).toBe(chunk('"choices":[]'));
    expect(rewrite(['data: {"choices":[{"delta":{"content":"x'], false)).toBe('data: {"choices":[{"delta":{"content":"x');
  });

  it('passes non-JSON data through untouched', () => {
    const input = 'data: "usage": not json\n\n';
    expect(rewrite([input], false)).toBe(input);
  });

  it("reshapes an in-band error to OpenAI's shape, and leaves one already in it, and a choice's own error, byte for byte", () => {
    const openRouter = chunk('"error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]');
    const out = rewrite([openRouter], false);
    const parsed = JSON.parse(out.slice(6)) as { error: unknown; choices: unknown };
    expect(parsed.error).toEqual({ message: 'Rate limit exceeded', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' });
    expect(parsed.choices).toEqual([{ index: 0, delta: { content: '' }, finish_reason: 'error' }]);
    const stringCode = rewrite([chunk('"error":{"code":"server_error","message":"boom"},"choices":[]')], false);
    expect(JSON.parse(stringCode.slice(6)).error).toEqual({ message: 'boom', type: 'upstream_error', param: null, code: 'server_error' });
    const shaped = chunk('"error":{"message":"m","type":"t","param":null,"code":"c"},"choices":[]');
    expect(rewrite([shaped], false)).toBe(shaped);
    const nested = chunk('"choices":[{"index":0,"error":{"code":500},"delta":{},"finish_reason":"error"}]');
    expect(rewrite([nested], false)).toBe(nested);
  });
});

describe('createSseTap (the relay: one framing pass for both)', () => {
  const streams = {
    capture: CAPTURE,
    crlf: CAPTURE.replaceAll('\n', '\r\n'),
    unterminated: `${chunk('"choices":[{"index":0,"delta":{"content":"héllo ✓"}}]')}data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
    error: `${chunk('"choices":[{"index":0,"delta":{"content":"a"}}]')}event: error\ndata: {"error":{"message":"boom","code":502}}\n\n`,
  };
  it.each(Object.entries(streams))('observes and rewrites exactly as the observer and the rewriter do apart (%s), wherever the stream is split', (_name, text) => {
    for (const includeUsage of [false, true]) {
      for (let at = 0; at <= Buffer.byteLength(text); at++) {
        const parts = splitAt(text, at);
        const tap = createSseTap({ includeUsage });
        const out: Uint8Array[] = [];
        for (const p of parts) out.push(...tap.push(p));
        out.push(...tap.end());
        expect(Buffer.concat(out).toString()).toBe(rewrite(parts, includeUsage));
        expect(plain(tap.state)).toEqual(observe(parts));
      }
    }
  });
});

describe('formatSseError', () => {
  it('produces an OpenAI error event the SDK recognises', () => {
    const event = formatSseError({ message: 'Quota exhausted', type: 'rate_limit_error', code: 'quota_exceeded' });
    expect(event).toBe('data: {"error":{"message":"Quota exhausted","type":"rate_limit_error","param":null,"code":"quota_exceeded"}}\n\n');
    expect(observe([event]).error).toMatchObject({ message: 'Quota exhausted', code: 'quota_exceeded', type: 'rate_limit_error' });
    expect(SSE_DONE).toBe('data: [DONE]\n\n');
  });
});

// A reference observer that parses every event with JSON.parse and walks it: what the scanning
// observer must agree with on valid JSON (it reads usage, errors, identity and delivered text
// without building most events).
interface Reference {
  events: number;
  deltas: number;
  deliveredChars: number;
  deliveredBytes: number;
  id: string | null;
  model: string | null;
  done: boolean;
  usage: unknown;
  error: unknown;
}

function referenceObservation(events: Array<{ name?: string; data: string }>): Reference {
  const state: Reference = { events: 0, deltas: 0, deliveredChars: 0, deliveredBytes: 0, id: null, model: null, done: false, usage: null, error: null };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const text = (v: unknown, acc: { chars: number; bytes: number }) => {
    if (Array.isArray(v)) for (const x of v) text(x, acc);
    else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (['content', 'reasoning', 'reasoning_content', 'refusal', 'arguments'].includes(k) && typeof x === 'string') {
          acc.chars += x.length;
          acc.bytes += Buffer.byteLength(x);
        } else text(x, acc);
      }
    }
  };
  for (const e of events) {
    if (e.data === '[DONE]') {
      state.done = true;
      continue;
    }
    state.events++;
    const parsed: unknown = JSON.parse(e.data);
    if (state.events === 1 && isObj(parsed)) {
      if (typeof parsed.id === 'string') state.id = parsed.id;
      if (typeof parsed.model === 'string') state.model = parsed.model;
    }
    const acc = { chars: 0, bytes: 0 };
    text(parsed, acc);
    if (acc.chars > 0) {
      state.deltas++;
      state.deliveredChars += acc.chars;
      state.deliveredBytes += acc.bytes;
    }
    if (isObj(parsed) && isObj(parsed.usage)) {
      const u = parsed.usage;
      state.usage = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, totalTokens: u.total_tokens, cost: u.cost };
    }
    if (isObj(parsed) && isObj(parsed.error)) state.error = { message: parsed.error.message, code: parsed.error.code };
  }
  return state;
}

describe('the first chunk\'s id and model (read by a scan)', () => {
  it.each([
    ['{"id":"x","model":"m"}'],
    ['[{"id":"x","model":"m"}]'],
    ['{"id":"a","model":"m1","id":"b","model":"m2"}'],
    ['{"id":"a","id":5,"model":"m"}'],
    ['{"\\u0069d":"x","mod\\u0065l":"m"}'],
    ['{"choices":[{"id":"inner"}],"meta":{"model":"inner"},"model":"outer"}'],
    ['  {"id":"h\\u00e9 \\"q\\"","model":"日本"}'],
    ['"just a string"'],
  ])('gives what JSON.parse gives for %s', (data) => {
    const state = observe([`data: ${data}\n\n`]);
    const parsed = JSON.parse(data) as unknown;
    const obj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    expect(state.id).toBe(typeof obj.id === 'string' ? obj.id : null);
    expect(state.model).toBe(typeof obj.model === 'string' ? obj.model : null);
  });

  it('reads nothing from an error event whose data is not a JSON object', () => {
    const state = observe(['event: error\ndata: overloaded {"id":"x","model":"m"}\n\n']);
    expect(state.id).toBeNull();
    expect(state.model).toBeNull();
  });
});

describe('the scanning observer against a reference that parses every event', () => {
  // A small deterministic PRNG, so a failure names a reproducible seed.
  const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const ALPHABET = ['a', 'b', ' ', '"', '\\', '\n', '\t', 'é', '世', '🎉', '"usage":1', '"error"', '"content":"x"', 'data: ', '\u2028', '\u0001', '}', '{', ':', ','];

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('agrees on 300 random streams, split at random points (seed %i)', (seed) => {
    const rnd = prng(seed);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const str = () => Array.from({ length: Math.floor(rnd() * 6) }, () => pick(ALPHABET)).join('');
    for (let s = 0; s < 300; s++) {
      const events: Array<{ name?: string; data: string }> = [];
      const n = 1 + Math.floor(rnd() * 6);
      for (let i = 0; i < n; i++) {
        const obj: Record<string, unknown> = { id: str(), object: 'chat.completion.chunk', model: str() };
        const kind = rnd();
        const delta: Record<string, unknown> = {};
        if (rnd() < 0.7) delta.content = rnd() < 0.1 ? null : str();
        if (rnd() < 0.2) delta.reasoning = str();
        if (rnd() < 0.1) delta.reasoning_content = str();
        if (rnd() < 0.15) delta.tool_calls = [{ index: 0, function: { name: str(), arguments: str() } }];
        if (rnd() < 0.1) delta.refusal = str();
        obj.choices = kind < 0.15 ? [] : [{ index: 0, delta, finish_reason: rnd() < 0.2 ? 'error' : null }];
        if (rnd() < 0.3) obj.usage = null;
        if (rnd() < 0.15) obj.usage = { prompt_tokens: Math.floor(rnd() * 100), completion_tokens: Math.floor(rnd() * 100), total_tokens: 7, cost: rnd() < 0.5 ? 0.000032 : 1.5e-7 };
        if (rnd() < 0.08) obj.error = { message: str(), code: rnd() < 0.5 ? 429 : 'server_error', metadata: { content: str() } };
        if (rnd() < 0.1) obj.system_fingerprint = str();
        // Compact, spaced, or pretty-printed over several data lines.
        const style = rnd();
        const json = style < 0.6 ? JSON.stringify(obj) : style < 0.8 ? JSON.stringify(obj).replaceAll('":', '" : ') : JSON.stringify(obj, null, 1);
        events.push({ data: json });
      }
      if (rnd() < 0.7) events.push({ data: '[DONE]' });
      const eol = rnd() < 0.2 ? '\r\n' : '\n';
      const wire = events.map((e) => `${e.data.split('\n').map((l) => `data: ${l}`).join(eol)}${eol}${eol}`).join(rnd() < 0.2 ? `: keep-alive${eol}${eol}` : '');
      const bytes = Buffer.from(wire);
      const cuts = [Math.floor(rnd() * bytes.length), Math.floor(rnd() * bytes.length)].sort((a, b) => a - b);
      const parts = [bytes.subarray(0, cuts[0]), bytes.subarray(cuts[0], cuts[1]), bytes.subarray(cuts[1])];
      const want = referenceObservation(events);
      for (const includeUsage of [false, true]) {
        const tap = createSseTap({ includeUsage });
        const out: Uint8Array[] = [];
        for (const p of parts) out.push(...tap.push(p));
        out.push(...tap.end());
        const got = tap.state;
        const context = `seed ${seed} stream ${s}: ${wire}`;
        expect({ events: got.events, deltas: got.deltas, deliveredChars: got.deliveredChars, deliveredBytes: got.deliveredBytes, id: got.id, model: got.model, done: got.done }, context).toEqual({
          events: want.events, deltas: want.deltas, deliveredChars: want.deliveredChars, deliveredBytes: want.deliveredBytes, id: want.id, model: want.model, done: want.done,
        });
        expect(got.usage && { promptTokens: got.usage.promptTokens, completionTokens: got.usage.completionTokens, totalTokens: got.usage.totalTokens, cost: got.usage.cost }, context).toEqual(want.usage);
        expect(got.error && { message: got.error.message, code: got.error.code }, context).toEqual(want.error);
        // The tap's shortcut (the observer's key scan and parse, shared) rewrites exactly as the rewriter alone.
        expect(Buffer.concat(out).toString(), context).toBe(rewrite(parts, includeUsage));
      }
    }
  });
});

describe('quiet runs: the tap frames whole events without usage or error only when asked', () => {
  const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const ALPHABET = ['a', ' ', '"', '\\', 'é', '🎉', 'usage', 'error', 'event', '"usage"', '"error"', 'null', ':', '\t'];

  /** One SSE event as it goes on the wire (a blank line included), of many shapes, some not quiet. */
  function randomEvent(rnd: () => number, eol: string): string {
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const str = () => Array.from({ length: Math.floor(rnd() * 5) }, () => pick(ALPHABET)).join('');
    const obj: Record<string, unknown> = { id: str(), model: str(), choices: [{ index: 0, delta: { content: str() }, finish_reason: rnd() < 0.1 ? 'error' : null }] };
    const k = rnd();
    let json = JSON.stringify(obj);
    if (k < 0.1) json = json.replace(/}$/, ',"usage":null}');
    else if (k < 0.15) json = json.replace(/}$/, ', "usage" :\tnull}');
    else if (k < 0.2) json = json.replace(/}$/, ',"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"cost":0.0000325}}');
    else if (k < 0.23) json = json.replace(/}$/, ',"error":{"message":"boom","code":502}}');
    const lines = rnd() < 0.1 ? json.replace('","', '",\n"').split('\n') : [json]; // multi-line data now and then
    const kind = rnd();
    if (kind < 0.1) return `: keep-alive${eol}${eol}`;
    if (kind < 0.13) return `event: error${eol}data: ${str()}${eol}${eol}`;
    if (kind < 0.16) return `event: ping${eol}data: {}${eol}${eol}`;
    if (kind < 0.18) return `id: 7${eol}data: ${json}${eol}${eol}`;
    if (kind < 0.2) return `data: [DONE]${eol}${eol}`;
    if (kind < 0.21) return `data: {"choices":[]}${eol}${eol}${eol}`; // an extra blank line
    return `${lines.map((l) => `data: ${l}`).join(eol)}${eol}${eol}`;
  }

  it.each([1, 2, 3, 4, 5, 6])('observe and rewrite as the eager observer and the rewriter do, chunked by whole events or anywhere, read midway or not (seed %i)', (seed) => {
    const rnd = prng(seed);
    for (let s = 0; s < 300; s++) {
      const eol = rnd() < 0.15 ? '\r\n' : '\n';
      const events = Array.from({ length: 1 + Math.floor(rnd() * 10) }, () => randomEvent(rnd, eol));
      // Chunks: mostly whole events grouped at random (what upstreams send), sometimes cut anywhere.
      const parts: Buffer[] = [];
      let pending = '';
      for (const e of events) {
        pending += e;
        if (rnd() < 0.6) {
          parts.push(Buffer.from(pending));
          pending = '';
        }
      }
      if (pending !== '') parts.push(Buffer.from(pending));
      if (rnd() < 0.3) {
        const all = Buffer.concat(parts);
        const at = Math.floor(rnd() * all.length);
        parts.splice(0, parts.length, all.subarray(0, at), all.subarray(at));
      }
      if (rnd() < 0.2) parts.push(Buffer.from(`data: {"choices":[{"delta":{"content":"tail"}}]}`)); // cut mid-event at EOF
      const readMidway = rnd() < 0.4;
      for (const includeUsage of [false, true]) {
        const context = `seed ${seed} stream ${s}: ${JSON.stringify(Buffer.concat(parts).toString())}`;
        const tap = createSseTap({ includeUsage });
        const observer = createSseObserver();
        const out: Uint8Array[] = [];
        for (const p of parts) {
          out.push(...tap.push(p));
          observer.push(p);
          if (readMidway && rnd() < 0.5) {
            const field = pickField(rnd);
            expect(tap.state[field], `${context} (midway: ${field})`).toEqual(observer.state[field]);
          }
        }
        out.push(...tap.end());
        observer.end();
        expect(plain(tap.state), context).toEqual(plain(observer.state));
        expect(Buffer.concat(out).toString(), context).toBe(rewrite(parts, includeUsage));
      }
    }
  });

  const FIELDS = ['events', 'comments', 'done', 'deltas', 'deliveredBytes', 'id', 'model', 'usage', 'error'] as const;
  function pickField(rnd: () => number): (typeof FIELDS)[number] {
    return FIELDS[Math.floor(rnd() * FIELDS.length)]!;
  }

  it('keeps at most 4 KB of quiet text waiting (then measures it and lets it go), and measures long streams exactly', () => {
    const tap = createSseTap({ includeUsage: false });
    const waiting = tap.state as unknown as { quietSize: number; unmeasuredSize: number };
    let chars = 0;
    let most = 0;
    for (let i = 0; i < 2000; i++) {
      const text = `w${i} ü`.repeat(3);
      chars += text.length;
      tap.push(Buffer.from(chunk(`"choices":[{"index":0,"delta":{"content":"${text}"}}]`)));
      most = Math.max(most, waiting.quietSize + waiting.unmeasuredSize);
    }
    tap.push(Buffer.from(`${chunk('"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}')}${SSE_DONE}`));
    tap.end();
    expect(most).toBeGreaterThan(3000);
    expect(most).toBeLessThanOrEqual(4096);
    expect(tap.state.usage?.completionTokens).toBe(2);
    expect(plain(tap.state)).toMatchObject({ events: 2001, deltas: 2000, deliveredChars: chars, deliveredBytes: chars + 2000 * 3, done: true });
  });

  it('passes a whole quiet chunk as the very input buffer, and frames it once something is read', () => {
    const tap = createSseTap({ includeUsage: false });
    const first = Buffer.from(`${chunk('"choices":[{"index":0,"delta":{"content":"hé"}}],"usage":null')}: ping\n\n`);
    const out = tap.push(first);
    expect(out).toEqual([first]);
    expect(out[0]).toBe(first);
    const rest = Buffer.from(`${chunk('"choices":[{"index":0,"delta":{"content":"llo"}}]')}${chunk('"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}')}${SSE_DONE}`);
    const sent = Buffer.concat(tap.push(rest)).toString();
    expect(sent).toBe(`${chunk('"choices":[{"index":0,"delta":{"content":"llo"}}]')}${SSE_DONE}`); // the usage chunk dropped
    tap.end();
    expect(tap.state.usage?.completionTokens).toBe(2);
    expect(plain(tap.state)).toMatchObject({ events: 3, comments: 1, done: true, deltas: 2, deliveredChars: 5, deliveredBytes: 6, id: 'c1', model: 'm' });
  });
});
