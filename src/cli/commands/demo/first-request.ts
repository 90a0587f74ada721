// `demo --serve` sends one real request through the gateway as soon as it listens, so the first
// thing a newcomer sees is a key being checked, a quota charged and an answer coming back.
import type { DemoSeed } from '../../../shared/services/demo.js';
import { GatewayClient } from '../../chat/client.js';
import type { Output } from '../../output.js';

export async function showFirstRequest(out: Output, url: string, seed: DemoSeed): Promise<void> {
  const alice = seed.keys.find((k) => k.name === 'alice') ?? seed.keys[0];
  if (!alice) return;
  const c = out.c;
  const client = new GatewayClient({ url, apiKey: alice.plaintext, timeoutMs: 10_000 });
  const model = alice.chatModel;
  out.line(c.bold('A first request through the gateway:'));
  out.line(`  ${c.cyan('→')} POST ${url}/v1/chat/completions  key ${alice.key.id} (alice)  model ${model}  "Say hello to the gateway"`);
  try {
    const reply = await client.complete({ model, messages: [{ role: 'user', content: 'Say hello to the gateway' }], maxTokens: 40 });
    const u = reply.usage;
    out.line(`  ${c.green('←')} 200  ${JSON.stringify(reply.content.length > 90 ? `${reply.content.slice(0, 87)}...` : reply.content)}`);
    if (u) {
      const cost = u.costUsd === null ? '' : `  cost $${u.costUsd.toFixed(6)}`;
      out.line(`    ${u.promptTokens} prompt + ${u.completionTokens} completion = ${u.totalTokens} tokens${cost}  (request ${reply.requestId ?? '?'})`);
    }
    const left = reply.rateLimit;
    if (left.remainingTokens !== null) out.line(c.dim(`    alice has ${left.remainingTokens} tokens left in her tightest window; the event is in the usage log.`));
  } catch (err) {
    out.warn(`the first request failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await client.close();
  }
  out.line('');
}
