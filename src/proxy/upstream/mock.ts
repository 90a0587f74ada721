// The built-in mock provider behind the same interface as a network upstream: no socket, a
// deterministic answer priced with the gateway's own price for the model.
import { Readable } from 'node:stream';
import type { SnapshotPrice } from '../../shared/snapshot/types.js';
import { type MockChatRequest, type MockPrice, MOCK_MODELS, mockChatCompletion, mockChatCompletionStream } from '../mock-provider.js';
import { chatRequestSchema } from '../chat-request.js';
import type { UpstreamAdapter, UpstreamCall, UpstreamResponse, UpstreamWhole } from './types.js';

/** micro-dollars per million tokens → USD per token as an exact decimal string. */
export function microsPerMToUsdPerToken(micros: number): string {
  const digits = String(Math.round(micros)).padStart(13, '0');
  const frac = digits.slice(-12).replace(/0+$/, '');
  return frac ? `${digits.slice(0, -12)}.${frac}` : digits.slice(0, -12);
}

function mockPrice(model: string, price: SnapshotPrice | undefined): MockPrice | undefined {
  if (price) return { prompt: microsPerMToUsdPerToken(price.prompt), completion: microsPerMToUsdPerToken(price.completion) };
  return MOCK_MODELS.find((m) => m.id === model)?.pricing;
}

/**
 * The request as the schema shapes it (its keys first, in its order; no own `__proto__` keys):
 * the mock derives its reply from a hash of the serialized messages, which must not depend on
 * the order a client wrote its keys in. The proxy's hot path keeps JSON.parse's object.
 */
const schemaShaped = (call: UpstreamCall) => chatRequestSchema.parse(call.parsed);

async function* once(body: Buffer): AsyncGenerator<Buffer> {
  yield body;
}

export function createMockAdapter(opts: { chunkDelayMs?: number } = {}): UpstreamAdapter {
  return {
    provider: 'mock',
    async chat(call): Promise<UpstreamResponse> {
      const req = schemaShaped(call) as unknown as MockChatRequest;
      const price = mockPrice(call.parsed.model, call.price);
      const headers = { 'content-type': call.stream ? 'text/event-stream' : 'application/json' };
      if (call.stream) {
        const body = Readable.from(mockChatCompletionStream(req, { price, signal: call.signal.toAbortSignal(), chunkDelayMs: opts.chunkDelayMs }));
        return { status: 200, headers, body, discard: () => void body.destroy() };
      }
      const body = Buffer.from(JSON.stringify(mockChatCompletion(req, { price })));
      return { status: 200, headers, body: once(body), discard: () => {} };
    },
    async chatWhole(call): Promise<UpstreamWhole> {
      const req = schemaShaped(call) as unknown as MockChatRequest;
      const body = Buffer.from(JSON.stringify(mockChatCompletion(req, { price: mockPrice(call.parsed.model, call.price) })));
      return { status: 200, headers: { 'content-type': 'application/json' }, contentType: 'application/json', body, headersAt: performance.now() };
    },
  };
}
