// Reads an OpenAI-style SSE body into events as bytes arrive. `: comment` lines are keep-alives;
// a stream may end without [DONE]; usage may ride on a chunk with or without choices.
import { StringDecoder } from 'node:string_decoder';
import { type GatewayUsage, isRecord, parseGatewayUsage, parseTokenUsage, type TokenUsage } from './replies.js';

export interface SseEvent {
  delta?: string;
  finishReason?: string;
  usage?: TokenUsage;
  gatewayUsage?: GatewayUsage;
  model?: string;
  /** An error event sent mid-stream: the answer is incomplete. */
  error?: unknown;
}

export async function* readSse(body: AsyncIterable<Buffer | string>): AsyncGenerator<SseEvent> {
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      if (line === '') {
        const event = data.join('\n');
        data = [];
        if (event === '[DONE]') return;
        if (event) yield parseChunk(event);
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
  const rest = [...data, buffer.startsWith('data:') ? buffer.slice(5).trim() : ''].filter(Boolean).join('\n');
  if (rest && rest !== '[DONE]') yield parseChunk(rest);
}

function parseChunk(text: string): SseEvent {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { error: { message: `the gateway sent an event that is not JSON: ${text.slice(0, 80)}` } };
  }
  if (!isRecord(json)) return {};
  const event: SseEvent = {};
  if (json.error !== undefined && json.error !== null) event.error = json.error;
  if (typeof json.model === 'string') event.model = json.model;
  const choice = Array.isArray(json.choices) && isRecord(json.choices[0]) ? json.choices[0] : null;
  if (choice) {
    const delta = isRecord(choice.delta) ? choice.delta : {};
    if (typeof delta.content === 'string' && delta.content) event.delta = delta.content;
    if (typeof choice.finish_reason === 'string') event.finishReason = choice.finish_reason;
    if (choice.finish_reason === 'error' && !event.error) event.error = { message: 'the upstream failed mid-answer' };
  }
  const usage = parseTokenUsage(json.usage);
  if (usage) event.usage = usage;
  const gatewayUsage = parseGatewayUsage(json.gateway_usage);
  if (gatewayUsage) event.gatewayUsage = gatewayUsage;
  return event;
}
