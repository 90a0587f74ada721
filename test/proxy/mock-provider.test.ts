import { describe, expect, it } from 'vitest';
import {
  countPromptTokens,
  countTokensApprox,
  MOCK_MODELS,
  type MockChatRequest,
  mockChatCompletion,
  mockChatCompletionStream,
  mockModelCatalog,
  splitIntoDeltas,
} from '../../src/proxy/mock-provider.js';
import { createSseObserver } from '../../src/proxy/sse-usage.js';
import { parseChatRequest } from '../../src/proxy/chat-request.js';
import { ClientAbort } from '../../src/proxy/client-abort.js';
import { createMockAdapter } from '../../src/proxy/upstream/mock.js';
import type { SnapshotOrg } from '../../src/shared/snapshot/types.js';

const NOW = () => 1_769_532_074_000;
const request = (over: Partial<MockChatRequest> = {}): MockChatRequest => ({
  model: 'mock/gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Explain how the gateway counts tokens for every streamed answer please' },
  ],
  ...over,
});

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

interface ChunkJson {
  id: string;
  created: number;
  choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cost: number };
}

function parseEvents(chunks: Buffer[]): { events: ChunkJson[]; done: boolean } {
  const texts = chunks.map((c) => c.toString());
  expect(texts.every((t) => t.startsWith('data: ') && t.endsWith('\n\n'))).toBe(true);
  const done = texts.at(-1) === 'data: [DONE]\n\n';
  const events = texts.filter((t) => t !== 'data: [DONE]\n\n').map((t) => JSON.parse(t.slice(6)) as ChunkJson);
  return { events, done };
}

describe('countTokensApprox', () => {
  it('is one token per 4 UTF-8 bytes, rounded up', () => {
    expect(countTokensApprox('')).toBe(0);
    expect(countTokensApprox('abcd')).toBe(1);
    expect(countTokensApprox('abcde')).toBe(2);
    expect(countTokensApprox('世界')).toBe(2); // 6 bytes
    expect(countTokensApprox('🎉')).toBe(1); // 4 bytes
  });

  it('counts a prompt as the text of each message plus 4 per message plus 3', () => {
    expect(countPromptTokens([{ role: 'user', content: 'abcdefgh' }])).toBe(2 + 4 + 3);
    expect(countPromptTokens([{ role: 'user', content: [{ type: 'text', text: 'abcd' }, { type: 'image_url' }] }])).toBe(1 + 4 + 3);
    expect(countPromptTokens([])).toBe(3);
  });
});

describe('mockChatCompletion', () => {
  it('answers the same request with the same response', () => {
    const a = mockChatCompletion(request(), { now: NOW });
    const b = mockChatCompletion(request(), { now: NOW });
    expect(a).toEqual(b);
    expect(a.id).toMatch(/^chatcmpl-mock-[0-9a-f]{24}$/);
    expect(mockChatCompletion(request({ messages: [{ role: 'user', content: 'other' }] }), { now: NOW }).id).not.toBe(a.id);
  });

  it('has the OpenAI/OpenRouter shape with usage derived from the texts', () => {
    const res = mockChatCompletion(request(), { now: NOW });
    expect(res).toMatchObject({ object: 'chat.completion', created: 1_769_532_074, model: 'mock/gpt-4o-mini', provider: 'Mock' });
    const choice = res.choices[0];
    expect(choice?.message.role).toBe('assistant');
    expect(choice?.finish_reason).toBe('stop');
    expect(choice?.message.content).toMatch(/^Mock reply to: Explain how the gateway counts tokens for every\.\.\. /);
    expect(res.usage.prompt_tokens).toBe(countPromptTokens(request().messages));
    expect(res.usage.completion_tokens).toBe(countTokensApprox(choice?.message.content ?? ''));
    expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens + res.usage.completion_tokens);
    expect(res.usage.cost).toBe(0);
  });

  it('computes cost exactly from the per-token price strings', () => {
    const res = mockChatCompletion(request(), { price: { prompt: '0.00000015', completion: '0.0000006' } });
    const { prompt_tokens: p, completion_tokens: c } = res.usage;
    const expectedNanoUsd = p * 150 + c * 600; // exact integers, then one division
    expect(res.usage.cost).toBe(expectedNanoUsd / 1e9);
  });

  it('never exceeds max_tokens and reports finish_reason length when it cuts', () => {
    for (const max of [0, 1, 3, 7]) {
      const res = mockChatCompletion(request({ max_tokens: max }));
      expect(res.usage.completion_tokens).toBeLessThanOrEqual(max);
      expect(res.choices[0]?.finish_reason).toBe('length');
    }
    const capped = mockChatCompletion(request({ max_tokens: 50, max_completion_tokens: 2 }));
    expect(capped.usage.completion_tokens).toBeLessThanOrEqual(2);
    const roomy = mockChatCompletion(request({ max_tokens: 10_000 }));
    expect(roomy.choices[0]?.finish_reason).toBe('stop');
  });

  it('does not split a multi-byte character when it truncates', () => {
    const res = mockChatCompletion({ model: 'mock/echo', messages: [{ role: 'user', content: '世界世界世界' }], max_tokens: 2 });
    expect(res.choices[0]?.message.content).toBe('世界');
    expect(res.usage.completion_tokens).toBe(2);
  });

  it('echoes the last user message on mock/echo', () => {
    const res = mockChatCompletion({
      model: 'mock/echo',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ignored' },
        { role: 'user', content: [{ type: 'text', text: 'echo me ' }, { type: 'text', text: 'back' }] },
      ],
    });
    expect(res.choices[0]?.message.content).toBe('echo me back');
  });

  it('answers an empty conversation', () => {
    const res = mockChatCompletion({ model: 'mock/llama-3-8b', messages: [] });
    expect(res.choices[0]?.message.content).toMatch(/^Mock reply\. /);
    expect(res.usage.prompt_tokens).toBe(3);
  });
});

describe('mockChatCompletionStream', () => {
  it('streams role, content deltas, finish, a usage chunk with empty choices, then [DONE]', async () => {
    const json = mockChatCompletion(request(), { now: NOW });
    const { events, done } = parseEvents(await collect(mockChatCompletionStream(request(), { now: NOW })));
    expect(done).toBe(true);
    expect(events[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const finish = events.at(-2);
    expect(finish?.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    const usage = events.at(-1);
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage).toEqual(json.usage);
    const text = events.map((e) => e.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(json.choices[0]?.message.content);
    expect(events.every((e) => e.id === json.id && e.created === json.created)).toBe(true);
    expect(events.length - 3).toBeGreaterThan(1);
  });

  it('is understood by the proxy SSE observer', async () => {
    const observer = createSseObserver();
    for (const c of await collect(mockChatCompletionStream(request({ max_tokens: 5 })))) observer.push(c);
    observer.end();
    const json = mockChatCompletion(request({ max_tokens: 5 }));
    expect(observer.state.done).toBe(true);
    expect(observer.state.usage?.completionTokens).toBe(json.usage.completion_tokens);
    expect(observer.state.deliveredBytes).toBe(Buffer.byteLength(json.choices[0]?.message.content ?? ''));
  });

  it('reports finish_reason length on the finish chunk when max_tokens cuts the reply', async () => {
    const { events } = parseEvents(await collect(mockChatCompletionStream(request({ max_tokens: 3 }))));
    expect(events.at(-2)?.choices[0]?.finish_reason).toBe('length');
    expect(events.at(-1)?.usage?.completion_tokens).toBeLessThanOrEqual(3);
  });

  it('waits chunkDelayMs between chunks and stops quietly on abort', async () => {
    const started = Date.now();
    const chunks = await collect(mockChatCompletionStream(request({ max_tokens: 4 }), { chunkDelayMs: 20 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(20 * (chunks.length - 1) - 5);

    const controller = new AbortController();
    const got: Buffer[] = [];
    for await (const c of mockChatCompletionStream(request(), { chunkDelayMs: 5, signal: controller.signal })) {
      got.push(c);
      if (got.length === 2) controller.abort();
    }
    expect(got).toHaveLength(2);
  });
});

describe('splitIntoDeltas', () => {
  it('cuts every few words and concatenates back to the exact text', () => {
    const text = '  one two three\nfour  five six seven ';
    const deltas = splitIntoDeltas(text, 3);
    expect(deltas.join('')).toBe(text);
    expect(deltas).toEqual(['  one two three\n', 'four  five six ', 'seven ']);
    expect(splitIntoDeltas('')).toEqual([]);
  });
});

describe('MOCK_MODELS', () => {
  it('lists the mock models with OpenRouter-style per-token prices', () => {
    expect(MOCK_MODELS.map((m) => m.id)).toEqual(['mock/gpt-4o-mini', 'mock/llama-3-8b', 'mock/echo']);
    for (const m of MOCK_MODELS) {
      expect(m.pricing.prompt).toMatch(/^\d+(\.\d+)?$/);
      expect(m.contextLength).toBeGreaterThan(0);
    }
    const catalog = mockModelCatalog();
    expect(catalog.data[0]).toMatchObject({ id: 'mock/gpt-4o-mini', pricing: { prompt: '0.00000015', completion: '0.0000006' } });
  });
});

describe('the mock adapter', () => {
  it('answers a request the same whatever order its keys were written in', async () => {
    const adapter = createMockAdapter();
    const answer = async (text: string) => {
      const raw = Buffer.from(text);
      const parsed = parseChatRequest(raw);
      const org = { provider: 'mock' } as unknown as SnapshotOrg;
      const up = await adapter.chatWhole({ org, raw, parsed, stream: false, price: undefined, signal: new ClientAbort(), requestId: 'r' });
      return JSON.parse(up.body.toString('utf8')) as { id: string; choices: unknown; usage: unknown };
    };
    const a = await answer('{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"Tell me a story"}]}');
    const b = await answer('{"messages":[{"content":"Tell me a story","role":"user","__proto__":{}}],"model":"mock/gpt-4o-mini"}');
    expect(b.id).toBe(a.id);
    expect(b.choices).toEqual(a.choices);
    expect(b.usage).toEqual(a.usage);
  });
});
