// gatewayctl chat with a message: one request, the answer on stdout, usage on stderr, and the
// gateway's refusals as plain sentences with the right exit codes.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FakeUpstream } from '../fakes/upstream.js';
import { cli } from '../helpers/cli.js';
import { FAKE_KEY, type FakeGatewayState, gatewayError, quotaRefusal, startFakeGateway } from './chat-fake-gateway.js';

let fake: FakeUpstream;
let state: FakeGatewayState;
let url: string;

beforeAll(async () => {
  ({ fake, state, url } = await startFakeGateway());
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  Object.assign(state, { tokensLeft: 1000, refuseNext: null, chunkDelayMs: 0 });
});

const chat = (args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) =>
  cli(['chat', ...args], { stdin: opts.stdin, env: { GATEWAY_URL: url, GATEWAY_API_KEY: FAKE_KEY, GATEWAY_DATA_DIR: '/nonexistent-gw', ...opts.env } });

const chatPosts = () => fake.requests.filter((r) => r.method === 'POST');

describe('gatewayctl chat MESSAGE', () => {
  it('prints only the answer on stdout and tokens, cost and remaining quota on stderr', async () => {
    const r = await chat(['hello', 'there']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('The quick brown fox jumps over the lazy dog today\n');
    expect(r.stderr).toContain('mock/gpt-4o-mini');
    expect(r.stderr).toMatch(/7 in \+ 10 out = 17 tokens · \$0\.000027 · 983 tokens left today/);
    const [post] = chatPosts();
    expect(post?.body).toMatchObject({ model: 'mock/gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] });
    expect(post?.headers.authorization).toBe(`Bearer ${FAKE_KEY}`);
  });

  it('uses --model, --system and --max-tokens as given', async () => {
    const r = await chat(['--model', 'mock/echo', '--system', 'Be brief.', '--max-tokens', '5', 'hi']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('The quick brown fox jumps\n');
    expect(chatPosts()[0]?.body).toEqual({
      model: 'mock/echo',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
      max_tokens: 5,
    });
    expect(fake.requests.some((q) => q.path === '/v1/models')).toBe(false);
  });

  it('--stream asks for an SSE stream with usage and prints the same answer', async () => {
    const r = await chat(['--stream', 'hello']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('The quick brown fox jumps over the lazy dog today\n');
    expect(chatPosts()[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(r.stderr).toMatch(/6 in \+ 10 out = 16 tokens/);
    expect(r.stderr).toContain('984 tokens left today');
  });

  it('reads the message from stdin when none is given and stdin is not a terminal', async () => {
    const r = await chat([], { stdin: 'summarise this\n' });
    expect(r.code).toBe(0);
    expect(chatPosts()[0]?.body).toMatchObject({ messages: [{ role: 'user', content: 'summarise this' }] });
  });

  it('--json prints exactly one JSON document with content, usage and limits', async () => {
    const r = await chat(['--json', 'hello']);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({
      model: 'mock/gpt-4o-mini',
      content: 'The quick brown fox jumps over the lazy dog today',
      finish_reason: 'stop',
      usage: { prompt_tokens: 6, completion_tokens: 10, total_tokens: 16, cost_usd: 0.000026 },
      limits: [{ metric: 'tokens', window: 'day', limit: 1000, remaining: 984 }],
    });
  });

  it('exits 5 with a plain sentence and the retry time when the quota is spent (429)', async () => {
    state.refuseNext = quotaRefusal(90);
    const r = await chat(['hello']);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: daily token quota of key abcdefghijkl is spent \(1000 of 1000 tokens\)\. Try again in 1m 30s \(at \d\d:\d\d:\d\d UTC\)\.\n$/);
  });

  it('exits 5 and says how to continue when credits are used up (402)', async () => {
    state.refuseNext = gatewayError(402, 'insufficient_credits', 'prepaid credits of key abcdefghijkl are used up');
    const r = await chat(['hello']);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('error: prepaid credits of key abcdefghijkl are used up. Add credits or raise the budget to continue.\n');
  });

  it('exits 5 and points at the allowed models when the model is not allowed (403)', async () => {
    state.refuseNext = gatewayError(403, 'model_not_allowed', "key abcdefghijkl may not use model 'x/y'");
    const r = await chat(['--model', 'x/y', 'hello', '--json']);
    expect(r.code).toBe(5);
    expect(r.errorJson().error).toEqual({ code: 'model_not_allowed', message: expect.stringContaining('Pick a model this key may use') });
  });

  it('exits 5 when the gateway does not accept the key (401)', async () => {
    const r = await chat(['hello'], { env: { GATEWAY_API_KEY: 'gw_live_nope' } });
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('error: The gateway did not accept the API key: unknown API key.\n');
  });

  it('exits 6 with a hint when nothing listens at the URL', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await chat(['--url', `http://127.0.0.1:${port}`, 'hello']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(`Nothing is listening at http://127.0.0.1:${port}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 6 and ends the partial answer with a newline when the stream breaks off', async () => {
    state.refuseNext = { type: 'default', resetAfter: 4 };
    const r = await chat(['--stream', '--model', 'mock/echo', 'hello']);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('The quick brown\n');
    expect(r.stderr).toMatch(/^error: The connection to the gateway at http:\/\/127\.0\.0\.1:\d+ failed: .+\.\n$/);
  });

  it('exits 2 when no API key is configured anywhere', async () => {
    const r = await cli(['chat', 'hello'], { env: { GATEWAY_URL: url, GATEWAY_DATA_DIR: '/nonexistent-gw' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no API key: pass --api-key, set GATEWAY_API_KEY, or run 'gatewayctl demo'");
  });

  it('exits 2 without a message when it cannot prompt', async () => {
    const r = await chat([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no message');
  });

  it('exits 2 on a URL that is not http(s)', async () => {
    const r = await chat(['--url', 'ftp://x', 'hello']);
    expect(r.code).toBe(2);
  });
});
