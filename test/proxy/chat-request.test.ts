// The in-place check of a chat request against the zod schema it stands in for: the same
// verdict on every body, and for an accepted body the same keys and values zod would have
// returned (zod rebuilds objects with its own keys first and drops own "__proto__" keys; the
// places that serialize the parsed request re-shape it through zod, tested there).
import { describe, expect, it } from 'vitest';
import { chatRequestSchema, fitsChatRequest, parseChatRequest } from '../../src/proxy/chat-request.js';
import { rng } from '../cli/usage-fixtures.js';

const ABSENT = Symbol('absent');

// Values every field is tried with: right and wrong types, edges of each range.
const anyValue = [
  ABSENT, null, true, false, 0, 1, -1, 1.5, 2, 128, 129, 2 ** 53, 2 ** 53 - 1, 1e300, -0, '', 'x', 'a'.repeat(256), 'a'.repeat(257), '😀'.repeat(256), '😀'.repeat(257), 'a\ud800'.repeat(129),
  [], [1], {}, { include_usage: true }, { include_usage: 'yes' }, { include_usage: null },
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function contentPart(r: () => number): unknown {
  const v = r();
  if (v < 0.5) return { type: 'text', text: pick(r, ['hi', '', 'é']) };
  if (v < 0.7) return { type: 'image_url', image_url: { url: 'data:' } };
  if (v < 0.8) return { type: pick(r, anyValue.filter((x) => x !== ABSENT)), text: 'x' };
  if (v < 0.9) return { type: 'text', text: pick(r, [ABSENT, 1, null, 'ok']) };
  return pick(r, [null, 'text', 3, []]);
}

function message(r: () => number): unknown {
  if (r() < 0.05) return pick(r, [null, 'user', 1, []]);
  const m: Record<string, unknown> = {};
  const role = r() < 0.85 ? pick(r, ['user', 'assistant', 'system', 'tool']) : pick(r, anyValue);
  if (role !== ABSENT) m.role = role;
  const c = r();
  if (c < 0.5) m.content = pick(r, ['hello', '', 'héllo 😀']);
  else if (c < 0.7) m.content = Array.from({ length: Math.floor(r() * 3) }, () => contentPart(r));
  else if (c < 0.8) m.content = null;
  else if (c < 0.9) {
    const v = pick(r, anyValue);
    if (v !== ABSENT) m.content = v;
  }
  for (const k of ['name', 'tool_call_id'] as const) {
    if (r() < 0.15) {
      const v = r() < 0.6 ? 'n' : pick(r, anyValue);
      if (v !== ABSENT) m[k] = v;
    }
  }
  if (r() < 0.1) m.tool_calls = [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }];
  return m;
}

/** The same object with its keys in a random order, at every level. */
function shuffled(r: () => number, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffled(r, x));
  if (typeof v !== 'object' || v === null) return v;
  const entries = Object.entries(v).map(([k, x]) => [k, shuffled(r, x)] as const);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return Object.fromEntries(entries);
}

function request(r: () => number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const set = (k: string, good: () => unknown, pGood: number, pAbsent: number) => {
    const v = r();
    if (v < pAbsent) return;
    const value = v < pAbsent + pGood ? good() : pick(r, anyValue);
    if (value !== ABSENT) body[k] = value;
  };
  set('model', () => pick(r, ['openai/gpt-4o', 'm', 'a'.repeat(256), 'a\u0000b', 'tab\tmodel', 'del\u007f']), 0.85, 0.03);
  set('messages', () => Array.from({ length: Math.floor(r() * 4) }, () => message(r)), 0.85, 0.03);
  set('stream', () => r() < 0.5, 0.5, 0.4);
  set('stream_options', () => ({ include_usage: pick(r, [true, false, null]) }), 0.5, 0.7);
  set('max_tokens', () => 1 + Math.floor(r() * 1000), 0.5, 0.4);
  set('max_completion_tokens', () => 1 + Math.floor(r() * 1000), 0.5, 0.7);
  set('n', () => 1 + Math.floor(r() * 128), 0.5, 0.7);
  if (r() < 0.3) body.temperature = pick(r, [0, 0.7, 'hot', null]);
  if (r() < 0.1) body.tools = [{ type: 'function', function: { name: 'f' } }];
  return body;
}

describe('fitsChatRequest', () => {
  it('gives the zod schema’s verdict on 20,000 random bodies, keys in any order, and accepts only what zod returns with the same keys and values', () => {
    let accepted = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const r = rng(seed);
      const body = JSON.parse(JSON.stringify(shuffled(r, request(r)))) as Record<string, unknown>;
      const zod = chatRequestSchema.safeParse(body);
      const fast = fitsChatRequest(body);
      if (fast !== zod.success) throw new Error(`seed ${seed}: fitsChatRequest says ${fast}, zod says ${zod.success} for ${JSON.stringify(body)}`);
      if (fast) {
        accepted++;
        expect(zod.data).toStrictEqual(body);
      }
    }
    // Both verdicts are well represented, or the comparison proves little.
    expect(accepted).toBeGreaterThan(2_000);
    expect(accepted).toBeLessThan(18_000);
  });

  it('accepts what zod accepts at the edges of each range and refuses one past them', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const cases: Array<[Record<string, unknown>, boolean]> = [
      [{ ...base, model: 'a'.repeat(256) }, true],
      [{ ...base, model: 'a'.repeat(257) }, false],
      [{ ...base, model: '😀'.repeat(256) }, true],
      [{ ...base, model: `${'😀'.repeat(256)}\ud800` }, false],
      [{ ...base, model: '' }, false],
      [{ ...base, model: 'openai/gpt-4o\u0000' }, false],
      [{ ...base, model: '\u001fm' }, false],
      [{ ...base, model: 'm\u007f' }, false],
      [{ ...base, model: 'm\u0080 ü/模型 🚀' }, true],
      [{ ...base, messages: [] }, false],
      [{ ...base, n: 128 }, true],
      [{ ...base, n: 129 }, false],
      [{ ...base, n: 0 }, false],
      [{ ...base, max_tokens: 2 ** 53 - 1 }, true],
      [{ ...base, max_tokens: 2 ** 53 }, false],
      [{ ...base, max_tokens: 1.5 }, false],
      [{ ...base, max_tokens: null, n: null, stream: null, stream_options: null }, true],
      [{ ...base, messages: [{ role: '', content: 'x' }] }, false],
      [{ ...base, messages: [{ role: 'user', content: [{ type: 'text' }] }] }, true],
      [{ ...base, messages: [{ role: 'user', content: [{ text: 'x' }] }] }, false],
      [{ ...base, messages: [{ role: 'user', name: null }] }, false],
    ];
    for (const [body, ok] of cases) {
      expect(chatRequestSchema.safeParse(body).success, JSON.stringify(body)).toBe(ok);
      expect(fitsChatRequest(body), JSON.stringify(body)).toBe(ok);
    }
  });

  it('gives zod’s verdict on bodies with own "__proto__" keys at every level', () => {
    const texts = [
      '{"__proto__":{"x":1},"model":"m","messages":[{"role":"user","content":"hi"}]}',
      '{"model":"m","messages":[{"__proto__":null,"role":"user","content":"hi"}]}',
      '{"model":"m","messages":[{"role":"user","content":[{"__proto__":[],"type":"text","text":"a"}]}]}',
      '{"model":"m","messages":[{"role":"user"}],"stream_options":{"__proto__":{"include_usage":"no"},"include_usage":true}}',
      '{"model":"m","messages":[{"role":"user"}],"__proto__":{"model":""}}',
      '{"model":"m","messages":{"__proto__":[]}}',
    ];
    for (const text of texts) {
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(fitsChatRequest(body), text).toBe(chatRequestSchema.safeParse(body).success);
    }
  });

  it('leaves the error message to zod: a refused body names the offending field', () => {
    expect(() => parseChatRequest(Buffer.from('{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-1}'))).toThrow(/max_tokens/);
    expect(() => parseChatRequest(Buffer.from('{"messages":[{"role":"user","content":"x"}]}'))).toThrow(/'model' is required/);
  });

  it('calls a field of the wrong type invalid, not missing', () => {
    const msg = (body: string) => {
      try {
        parseChatRequest(Buffer.from(body));
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    const m = '"messages":[{"role":"user","content":"x"}]';
    expect(msg(`{"model":5,${m}}`)).toMatch(/^Invalid value for 'model': /);
    expect(msg(`{"model":"m",${m},"max_tokens":1.5}`)).toMatch(/^Invalid value for 'max_tokens': /);
    expect(msg(`{"model":"m",${m},"max_tokens":"10"}`)).toMatch(/^Invalid value for 'max_tokens': /);
    expect(msg(`{"model":"m",${m},"stream":"true"}`)).toMatch(/^Invalid value for 'stream': /);
    expect(msg(`{"model":"m",${m},"stream_options":"x"}`)).toMatch(/^Invalid value for 'stream_options': /);
    expect(msg('{"model":"m","messages":[{"content":"x"}]}')).toMatch(/^'messages\.0\.role' is required/);
  });
});
