// A fake of the gateway's client-facing API for the chat tests, built on the scriptable fake
// upstream: GET /v1/models, GET /v1/usage and POST /v1/chat/completions, with the gateway's
// error shape, gateway_usage and x-ratelimit-* headers. Tests steer refusals per request.
import { defaultReply, type FakeReply, type FakeRequest, type FakeUpstream, openRouterModel, startFakeUpstream } from '../fakes/upstream.js';

export const FAKE_KEY = 'gw_live_abcdefghijkl_secretsecretsecretsecretsecretsecretsec';

export interface FakeGatewayState {
  /** Tokens left of a 1,000-token daily quota; each answer subtracts its total. */
  tokensLeft: number;
  /** When set, the next chat completion is refused with this reply. */
  refuseNext: FakeReply | null;
  chunkDelayMs: number;
}

export function gatewayError(status: number, code: string, message: string, headers: Record<string, string> = {}): FakeReply {
  return { type: 'json', status, body: { error: { message, type: 'gateway_error', param: null, code } }, headers };
}

export function quotaRefusal(retryAfterSec: number): FakeReply {
  return gatewayError(429, 'quota_exceeded', 'daily token quota of key abcdefghijkl is spent (1000 of 1000 tokens)', {
    'retry-after': String(retryAfterSec),
    'x-ratelimit-remaining-tokens': '0',
    'x-ratelimit-limit-tokens': '1000',
  });
}

function limits(state: FakeGatewayState) {
  return [{ scope: 'key:abcdefghijkl', metric: 'tokens', window: 'day', max: 1000, used: 1000 - state.tokensLeft, remaining: state.tokensLeft, resets_at: '2030-01-02T00:00:00.000Z' }];
}

function answer(req: FakeRequest, state: FakeGatewayState): FakeReply {
  const reply = defaultReply(req.body, { chunkDelayMs: state.chunkDelayMs });
  const headers = { 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': String(state.tokensLeft), 'x-ratelimit-reset-tokens': '5h0m0s' };
  if (reply.type === 'json') {
    const body = reply.body as { usage: { total_tokens: number; cost: number } };
    state.tokensLeft = Math.max(0, state.tokensLeft - body.usage.total_tokens);
    return { ...reply, headers, body: { ...body, gateway_usage: { cost_usd: body.usage.cost, limits: limits(state), credits: [] } } };
  }
  const usage = reply.items.flatMap((i) => ('data' in i && (i.data as { usage?: { total_tokens: number } }).usage ? [(i.data as { usage: { total_tokens: number } }).usage] : []))[0];
  state.tokensLeft = Math.max(0, state.tokensLeft - (usage?.total_tokens ?? 0));
  return { ...reply, headers };
}

export async function startFakeGateway(): Promise<{ fake: FakeUpstream; state: FakeGatewayState; url: string }> {
  const fake = await startFakeUpstream({
    prefix: '/v1',
    models: [openRouterModel('mock/gpt-4o-mini'), openRouterModel('mock/echo'), openRouterModel('mock/llama-3-8b')],
  });
  const state: FakeGatewayState = { tokensLeft: 1000, refuseNext: null, chunkDelayMs: 0 };
  fake.script((req) => {
    if (req.headers.authorization !== `Bearer ${FAKE_KEY}`) return gatewayError(401, 'invalid_api_key', 'unknown API key');
    if (req.method === 'GET' && req.path === '/v1/usage') {
      return { type: 'json', body: { key_id: 'abcdefghijkl', usage: { requests: fake.requests.filter((r) => r.method === 'POST').length }, limits: limits(state), credits: [] } };
    }
    if (req.method === 'POST' && req.path === '/v1/chat/completions') {
      if (state.refuseNext) {
        const refusal = state.refuseNext;
        state.refuseNext = null;
        return refusal;
      }
      return answer(req, state);
    }
    return undefined;
  });
  return { fake, state, url: fake.url.replace(/\/v1$/, '') };
}
