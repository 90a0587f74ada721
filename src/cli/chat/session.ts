// One conversation: its messages, model and running totals. It prints nothing; the one-shot
// command and the interactive loop decide what a person sees.
import type { ChatMessage, ChatReply, GatewayClient, StreamHooks } from './client.js';

export interface SessionOptions {
  model: string;
  system?: string;
  maxTokens?: number;
}

export interface SessionTotals {
  turns: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export class ChatSession {
  model: string;
  system: string | undefined;
  readonly maxTokens: number | undefined;
  private history: ChatMessage[] = [];
  private sum: SessionTotals = { turns: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };

  constructor(
    private readonly client: GatewayClient,
    opts: SessionOptions,
  ) {
    this.model = opts.model;
    this.system = opts.system;
    this.maxTokens = opts.maxTokens;
  }

  get messages(): readonly ChatMessage[] {
    return this.history;
  }

  get totals(): Readonly<SessionTotals> {
    return this.sum;
  }

  /**
   * Sends `text` with the conversation so far. The exchange joins the history only when an
   * answer came back (a refusal leaves the conversation as it was, so the user can retry); an
   * interrupted answer keeps what was shown, since the user saw it.
   */
  async ask(text: string, hooks?: StreamHooks): Promise<ChatReply> {
    const user: ChatMessage = { role: 'user', content: text };
    const messages: ChatMessage[] = [...(this.system ? [{ role: 'system' as const, content: this.system }] : []), ...this.history, user];
    const req = { model: this.model, messages, maxTokens: this.maxTokens };
    const reply = hooks ? await this.client.stream(req, hooks) : await this.client.complete(req);
    if (!reply.interrupted || reply.content) {
      this.history.push(user, { role: 'assistant', content: reply.content });
    }
    this.sum.turns += 1;
    this.sum.promptTokens += reply.usage?.promptTokens ?? 0;
    this.sum.completionTokens += reply.usage?.completionTokens ?? 0;
    this.sum.costUsd += reply.gatewayUsage?.costUsd ?? reply.usage?.costUsd ?? 0;
    return reply;
  }

  reset(): void {
    this.history = [];
  }
}
