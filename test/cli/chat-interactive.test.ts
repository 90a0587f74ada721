// The interactive chat in a real pseudo-terminal (tmux): a multi-turn conversation that streams,
// a model switch, Ctrl-C during an answer, a quota refusal, /usage, and a clean exit.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeUpstream } from '../fakes/upstream.js';
import { tempDir } from '../helpers/cli.js';
import { FAKE_KEY, type FakeGatewayState, quotaRefusal, startFakeGateway } from './chat-fake-gateway.js';
import { bundleCli, Tmux } from './chat-tmux.js';

let fake: FakeUpstream;
let state: FakeGatewayState;
let url: string;
let bundle: string;

beforeAll(async () => {
  ({ fake, state, url } = await startFakeGateway());
  bundle = await bundleCli();
});
afterAll(async () => {
  await fake.close();
  rmSync(bundle, { force: true });
});

const posts = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions');
const PROMPT = 'you ›';

describe('gatewayctl chat (interactive, in a terminal)', () => {
  it('keeps a streamed multi-turn conversation, switches model, survives Ctrl-C and a quota refusal', async () => {
    const tmux = new Tmux();
    try {
      tmux.start([process.execPath, bundle, 'chat'], { GATEWAY_URL: url, GATEWAY_API_KEY: FAKE_KEY, NO_COLOR: '1' }, tempDir());
      await tmux.waitFor(PROMPT);
      expect(tmux.screen()).toContain('model mock/gpt-4o-mini');

      // Turn 1 streams: part of the answer is on screen before the rest has arrived.
      state.chunkDelayMs = 250;
      tmux.type('hello there');
      const midway = await tmux.waitFor((s) => s.includes('The quick'));
      expect(midway).not.toContain('lazy dog today');
      await tmux.waitFor('tokens left today');
      expect(tmux.screen()).toMatch(/mock\/gpt-4o-mini · 7 in \+ 10 out = 17 tokens · .*983 tokens left today/);

      // Turn 2 carries the conversation so far.
      state.chunkDelayMs = 0;
      tmux.type('and again');
      await tmux.waitFor((s) => s.split('tokens left today').length === 3);
      expect(posts()[1]?.body).toMatchObject({
        model: 'mock/gpt-4o-mini',
        stream: true,
        messages: [
          { role: 'user', content: 'hello there' },
          { role: 'assistant', content: 'The quick brown fox jumps over the lazy dog today' },
          { role: 'user', content: 'and again' },
        ],
      });

      // /model offers the key's models; pick the second one.
      tmux.type('/model');
      await tmux.waitFor('mock/llama-3-8b');
      tmux.keys('Down');
      tmux.keys('Enter');
      await tmux.waitFor('Model: mock/echo');
      tmux.type('/model mock/nope');
      await tmux.waitFor("This key may not use 'mock/nope'");
      tmux.type('third');
      await tmux.waitFor((s) => s.split('tokens left today').length === 4);
      expect(posts()[2]?.body).toMatchObject({ model: 'mock/echo' });
      expect(tmux.screen()).toMatch(/mock\/echo · /);

      // Ctrl-C during an answer stops that answer, not the session.
      state.chunkDelayMs = 400;
      const prompts = tmux.count(PROMPT);
      const answers = tmux.count('The quick');
      tmux.type('a slow one');
      await tmux.waitFor((s) => s.split('The quick').length - 1 > answers);
      tmux.keys('C-c');
      await tmux.waitFor('interrupted');
      await tmux.waitFor((s) => s.split(PROMPT).length - 1 > prompts);
      state.chunkDelayMs = 0;

      // A quota refusal is a sentence with the reset time; the session goes on.
      state.refuseNext = quotaRefusal(3600);
      tmux.type('one more');
      await tmux.waitFor(/daily token quota of key abcdefghijkl is spent \(1000 of 1000 tokens\)\. Try again in 1h \(at \d\d:\d\d:\d\d UTC\)\./);
      expect(tmux.screen()).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);

      // The refused turn did not join the conversation.
      tmux.type('after the refusal');
      await tmux.waitFor((s) => s.split('tokens left today').length === 6);
      const last = posts().at(-1)?.body as { messages: { content: string }[] };
      expect(last.messages.map((m) => m.content)).not.toContain('one more');
      expect(last.messages.map((m) => m.content)).toContain('a slow one');

      tmux.type('/usage');
      await tmux.waitFor(/key:abcdefghijkl tokens\/day\s+used \d+ of 1,000 tokens/);

      tmux.type('/reset');
      await tmux.waitFor('Conversation cleared.');

      // NO_COLOR: not one colour code on the screen.
      expect(tmux.screen(true)).not.toContain('\u001b[');

      tmux.type('/exit');
      await tmux.waitFor('bye · ');
      expect(await tmux.waitForExit()).toBe(0);
    } finally {
      tmux.kill();
    }
  }, 120_000);
});
