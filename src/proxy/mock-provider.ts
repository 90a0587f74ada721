// The built-in `mock` upstream (DESIGN §7): it answers with no network so a fresh install works
// end to end, and deterministically (everything but `created` is a function of the request) so
// tests and demos can predict ids, text and usage. The wire shapes copy OpenRouter (A.3, A.4):
// the mock always streams a usage chunk with `choices: []`, and the proxy strips it for clients
// that did not ask, exactly as it must for OpenRouter.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MOCK_MODELS, type MockPrice } from '../shared/mock-catalog.js';
import { formatSseData, SSE_DONE } from './sse-usage.js';

// The catalog lives in src/shared so gatewayctl (models refresh on a mock org) can read it too.
export { MOCK_MODELS, type MockModel, type MockPrice } from '../shared/mock-catalog.js';

export interface MockMessage {
  role: string;
  content?: unknown; // a string or OpenAI content parts; only text parts count
}

export interface MockChatRequest {
  model: string;
  messages: readonly MockMessage[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
}

export interface MockOptions {
  price?: MockPrice; // without one the cost is 0
  chunkDelayMs?: number; // pause between SSE chunks, for demos of streaming
  now?: () => number; // clock for `created` (ms); the one input that is not the request
  signal?: AbortSignal; // stops a stream between chunks (client gone)
}

export interface MockUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
  is_byok: false;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export type MockFinishReason = 'stop' | 'length';

export interface MockCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  provider: 'Mock';
  system_fingerprint: string;
  choices: Array<{
    index: 0;
    message: { role: 'assistant'; content: string; refusal: null };
    logprobs: null;
    finish_reason: MockFinishReason;
    native_finish_reason: MockFinishReason;
  }>;
  usage: MockUsage;
}

const ECHO_MODEL = 'mock/echo';
const WORDS_PER_DELTA = 3;
const VOCAB = [
  'gateway', 'token', 'stream', 'quota', 'model', 'request', 'answer', 'budget', 'latency', 'cache',
  'upstream', 'limit', 'usage', 'window', 'credit', 'policy', 'route', 'chunk', 'proxy', 'signal',
  'the', 'a', 'of', 'and', 'with', 'for', 'every', 'steady', 'quick', 'careful', 'simple', 'exact',
];

/**
 * A tokenizer-free estimate: one token per 4 UTF-8 bytes, rounded up. English averages about
 * 4 characters a token under OpenAI's tokenizers, and counting bytes keeps CJK and emoji from
 * looking cheap. The proxy may use the same rule to estimate prompts before admission.
 */
export function countTokensApprox(text: string): number {
  return Math.ceil(Buffer.byteLength(text) / 4);
}

/** Prompt tokens: each message's text plus 4 for its role framing, plus 3 priming the reply (OpenAI's cookbook rule). */
export function countPromptTokens(messages: readonly MockMessage[]): number {
  return messages.reduce((sum, m) => sum + countTokensApprox(messageText(m.content)) + 4, 3);
}

export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) =>
      typeof part === 'object' && part !== null && 'text' in part && typeof part.text === 'string' ? part.text : '',
    )
    .join('');
}

interface MockPlan {
  id: string;
  created: number;
  model: string;
  text: string;
  finishReason: MockFinishReason;
  usage: MockUsage;
}

function plan(req: MockChatRequest, options: MockOptions): MockPlan {
  const limit = completionLimit(req);
  const digest = createHash('sha256').update(JSON.stringify([req.model, req.messages, limit])).digest();
  const prompt = lastUserText(req.messages);
  const full = req.model === ECHO_MODEL ? prompt : composeReply(prompt, digest);
  const text = limit === null ? full : truncateToBytes(full, limit * 4);
  const promptTokens = countPromptTokens(req.messages);
  const completionTokens = countTokensApprox(text);
  return {
    id: `chatcmpl-mock-${digest.toString('hex', 0, 12)}`,
    created: Math.floor((options.now?.() ?? Date.now()) / 1000),
    model: req.model,
    text,
    finishReason: text.length < full.length ? 'length' : 'stop',
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      cost: costUsd(promptTokens, completionTokens, options.price),
      is_byok: false,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    },
  };
}

/** The tighter of max_tokens and max_completion_tokens; null when neither caps the reply. */
function completionLimit(req: MockChatRequest): number | null {
  const caps = [req.max_tokens, req.max_completion_tokens].filter(
    (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  );
  return caps.length === 0 ? null : Math.floor(Math.min(...caps));
}

function lastUserText(messages: readonly MockMessage[]): string {
  const last = [...messages].reverse().find((m) => m.role === 'user') ?? messages.at(-1);
  return last ? messageText(last.content) : '';
}

/** "Mock reply to: <first words>..." padded with words picked by the request hash. */
function composeReply(prompt: string, digest: Buffer): string {
  const words = prompt.split(/\s+/).filter(Boolean);
  const quoted = words.slice(0, 8).join(' ') + (words.length > 8 ? '...' : '');
  const parts = [quoted ? `Mock reply to: ${quoted}` : 'Mock reply.'];
  const targetTokens = 16 + (digest.readUInt16BE(0) % 48);
  let state = digest.readUInt32BE(4) || 1;
  while (countTokensApprox(parts.join(' ')) < targetTokens) {
    // xorshift32: a tiny seeded generator, so the padding is stable across Node versions.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    parts.push(VOCAB[(state >>> 0) % VOCAB.length] ?? 'token');
  }
  return `${parts.join(' ')}.`;
}

/** The longest prefix that fits in maxBytes of UTF-8, never splitting a character. */
function truncateToBytes(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes > maxBytes) break;
    end += ch.length;
  }
  return text.slice(0, end);
}

const COST_SCALE = 18; // attodollars: every realistic per-token price string is exact at this scale

function decimalToScaled(value: string): bigint {
  const m = /^(\d*)(?:\.(\d*))?$/.exec(value.trim());
  if (!m || (m[1] === '' && !m[2])) throw new RangeError(`price '${value}' is not a plain decimal`);
  const frac = (m[2] ?? '').slice(0, COST_SCALE).padEnd(COST_SCALE, '0');
  return BigInt((m[1] || '0') + frac);
}

/** Exact decimal product, so the cost a test expects is the shortest double of the true value. */
function costUsd(promptTokens: number, completionTokens: number, price: MockPrice | undefined): number {
  if (!price) return 0;
  const total =
    BigInt(promptTokens) * decimalToScaled(price.prompt) + BigInt(completionTokens) * decimalToScaled(price.completion);
  const digits = total.toString().padStart(COST_SCALE + 1, '0');
  return Number(`${digits.slice(0, -COST_SCALE)}.${digits.slice(-COST_SCALE)}`);
}

export function mockChatCompletion(req: MockChatRequest, options: MockOptions = {}): MockCompletion {
  const p = plan(req, options);
  return {
    id: p.id,
    object: 'chat.completion',
    created: p.created,
    model: p.model,
    provider: 'Mock',
    system_fingerprint: 'fp_mock',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: p.text, refusal: null },
        logprobs: null,
        finish_reason: p.finishReason,
        native_finish_reason: p.finishReason,
      },
    ],
    usage: p.usage,
  };
}

/** Cuts text before every WORDS_PER_DELTA-th word, so the deltas concatenate to the text exactly. */
export function splitIntoDeltas(text: string, wordsPerDelta = WORDS_PER_DELTA): string[] {
  const starts = [...text.matchAll(/\S+/g)].map((m) => m.index);
  const cuts = starts.filter((_, i) => i > 0 && i % wordsPerDelta === 0);
  const deltas: string[] = [];
  let from = 0;
  for (const cut of cuts) {
    deltas.push(text.slice(from, cut));
    from = cut;
  }
  if (from < text.length) deltas.push(text.slice(from));
  return deltas;
}

/**
 * The SSE bytes OpenAI would send (role chunk, content deltas, finish chunk), then OpenRouter's
 * usage chunk with `choices: []`, then `[DONE]`: one event per Buffer. Readable.from() turns it
 * into a stream. An abort between chunks ends it quietly: nobody is listening any more.
 */
export async function* mockChatCompletionStream(
  req: MockChatRequest,
  options: MockOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const p = plan(req, options);
  const base = { id: p.id, object: 'chat.completion.chunk', created: p.created, model: p.model, provider: 'Mock', system_fingerprint: 'fp_mock' };
  const choice = (delta: Record<string, string>, finish: MockFinishReason | null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish, native_finish_reason: finish }],
  });
  const events: string[] = [
    formatSseData(choice({ role: 'assistant', content: '' }, null)),
    ...splitIntoDeltas(p.text).map((content) => formatSseData(choice({ content }, null))),
    formatSseData(choice({}, p.finishReason)),
    formatSseData({ ...base, choices: [], usage: p.usage }),
    SSE_DONE,
  ];
  for (const [i, event] of events.entries()) {
    if (options.signal?.aborted) return;
    if (i > 0 && options.chunkDelayMs) {
      try {
        await sleep(options.chunkDelayMs, undefined, options.signal ? { signal: options.signal } : undefined);
      } catch {
        return;
      }
    }
    yield Buffer.from(event);
  }
}

/** MOCK_MODELS as OpenRouter's GET /models answers (A.6), so the model sync path is exercised too. */
export function mockModelCatalog(createdUnix = 1_700_000_000): { data: Array<Record<string, unknown>> } {
  return {
    data: MOCK_MODELS.map((m) => ({
      id: m.id,
      canonical_slug: m.id,
      hugging_face_id: null,
      name: m.name,
      created: createdUnix,
      description: m.description,
      context_length: m.contextLength,
      architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'Other', instruct_type: null },
      pricing: { prompt: m.pricing.prompt, completion: m.pricing.completion, request: '0', image: '0' },
      top_provider: { context_length: m.contextLength, max_completion_tokens: m.maxCompletionTokens, is_moderated: false },
      per_request_limits: null,
      supported_parameters: ['max_tokens', 'max_completion_tokens'],
      default_parameters: null,
      supported_voices: null,
      links: { details: `/api/v1/models/${m.id}/endpoints` },
    })),
  };
}
