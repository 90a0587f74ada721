// The built-in mock provider's model catalog. It lives in src/shared because both programs need it:
// the proxy answers with these models, and `gatewayctl models refresh` loads them for a mock org
// (the CLI never imports src/proxy).

/** USD per token as decimal strings, OpenRouter's /models form. */
export interface MockPrice {
  prompt: string;
  completion: string;
}

export interface MockModel {
  id: string;
  name: string;
  description: string;
  contextLength: number;
  maxCompletionTokens: number;
  pricing: MockPrice;
}

export const MOCK_MODELS: readonly MockModel[] = [
  {
    id: 'mock/gpt-4o-mini',
    name: 'Mock: GPT-4o mini',
    description: 'Deterministic offline stand-in priced like gpt-4o-mini.',
    contextLength: 128_000,
    maxCompletionTokens: 16_384,
    pricing: { prompt: '0.00000015', completion: '0.0000006' },
  },
  {
    id: 'mock/llama-3-8b',
    name: 'Mock: Llama 3 8B',
    description: 'Deterministic offline stand-in for a small open model.',
    contextLength: 8_192,
    maxCompletionTokens: 4_096,
    pricing: { prompt: '0.00000003', completion: '0.00000006' },
  },
  {
    id: 'mock/echo',
    name: 'Mock: Echo',
    description: 'Replies with the last user message, verbatim. Free.',
    contextLength: 32_768,
    maxCompletionTokens: 32_768,
    pricing: { prompt: '0', completion: '0' },
  },
];
