// The one place that changes streamed bytes: usage chunks reshaped to what the client asked for.
import { upstreamError } from './errors.js';
import { CR, dataBytes, eventJson, formatSseData, isRecord, LF, NON_NULL_USAGE_RE, type SseEvent, SseFramer, toBuffer, ERROR_KEY_BYTES, USAGE_KEY_BYTES } from './sse-framer.js';

export interface SseRewriter {
  /**
   * Bytes to send now: views of the input for untouched events. `s` is the chunk as latin1 when
   * the caller has it; `from` > 0 says the chunk's first `from` bytes are whole events to pass
   * as they are, unframed (the framer must be at a boundary).
   */
  push(chunk: Uint8Array, s?: string, from?: number): Uint8Array[];
  end(): Uint8Array[];
}

/**
 * Makes usage chunks match what the client asked for (C.2). Without include_usage no chunk keeps
 * a usage (a usage-only chunk is dropped); with it, usage arrives on its own chunk with
 * `choices: []`. Events without a non-null usage are forwarded as views of the input.
 */
export interface SseRewriterOptions {
  includeUsage: boolean;
  /**
   * Sees every event as it is framed (the observer, fed from this one framing pass). With it,
   * every chunk is framed; without it, chunks without a usage or error key pass unframed.
   */
  observe?: (event: SseEvent) => void;
}

export function createSseRewriter(options: SseRewriterOptions): SseRewriter & { readonly framer: SseFramer } {
  const framer = new SseFramer();
  const observe = options.observe;
  let held: Buffer[] = []; // bytes of the open event from earlier chunks, sent once it is judged
  return {
    framer,
    push(chunk, s, from = 0) {
      const buf = toBuffer(chunk);
      // Most chunks are whole events without a usage or error key: they pass as they are, unframed.
      if (!observe && framer.atBoundary && endsWithEvent(buf) && !buf.includes(USAGE_KEY_BYTES) && !buf.includes(ERROR_KEY_BYTES)) return [buf];
      const out: Uint8Array[] = [];
      let runStart = 0; // first byte of buf neither emitted nor discarded
      let eventStart = from; // where the open event begins in buf (0 if it began earlier)
      framer.feed(buf, (event, end) => {
        observe?.(event);
        const replacement = rewriteEvent(event, options.includeUsage);
        if (replacement === null) {
          for (let i = 0; i < held.length; i++) out.push(held[i]!);
        } else {
          if (eventStart > runStart) out.push(buf.subarray(runStart, eventStart));
          if (replacement !== '') out.push(Buffer.from(replacement));
          runStart = end;
        }
        if (held.length > 0) held = [];
        eventStart = end;
      }, s, from);
      if (eventStart > runStart) out.push(buf.subarray(runStart, eventStart));
      if (eventStart < buf.length) held.push(buf.subarray(eventStart));
      return out;
    },
    end() {
      const last = framer.finish();
      if (last) observe?.(last);
      const replacement = last ? rewriteEvent(last, options.includeUsage) : null;
      const out: Uint8Array[] = replacement === null ? held : replacement === '' ? [] : [Buffer.from(replacement)];
      held = [];
      return out;
    },
  };
}

/** The chunk ends with a blank line (LF LF, or CR LF CR LF), so it closes its last event. */
function endsWithEvent(buf: Buffer): boolean {
  const n = buf.length;
  if (n < 2 || buf[n - 1] !== LF) return false;
  return buf[n - 2] === LF || (n >= 4 && buf[n - 2] === CR && buf[n - 3] === LF);
}

/** null keeps the event's bytes as they are, '' drops it, any other string replaces it. */
function rewriteEvent(event: SseEvent, includeUsage: boolean): string | null {
  // The observer, when there is one, has already looked for the keys (and parsed a usage event).
  const errorKey = event.errorKey ?? event.data.includes('"error"');
  // "usage": null (on every chunk of an OpenAI stream that asked for usage) needs no parse.
  const hasUsage = (event.usageKey ?? event.data.includes('"usage"')) && NON_NULL_USAGE_RE.test(dataBytes(event));
  if (!hasUsage && !errorKey) return null;
  const json = eventJson(event);
  if (!isRecord(json)) return null;
  let parsed = json;
  // An in-band error (OpenRouter's mid-stream failure: a number for code, no type or param)
  // reaches the client in OpenAI's shape, as every other error does. A new object: the parse
  // stays the upstream's for the observer.
  const shaped = errorKey && parsed.error != null ? openAiStreamError(parsed.error) : null;
  if (shaped) parsed = { ...parsed, error: shaped };
  const keep = shaped ? formatSseData(parsed) : null;
  if (!hasUsage || !isRecord(parsed.usage)) return keep;
  const error = parsed.error;
  const choices = Array.isArray(parsed.choices) ? parsed.choices : [];
  const informative = error != null || choices.some((c) => !isEmptyChoice(c));
  // The usual usage chunk (no choices, no error) for a client that did not ask: dropped.
  if (!includeUsage && !informative) return '';
  if (includeUsage && choices.length === 0 && error == null) return keep;
  const { usage, ...rest } = parsed;
  if (!includeUsage) return formatSseData(rest);
  const { error: _error, ...meta } = rest; // an error must reach the client once, never on the usage chunk
  const usageChunk = formatSseData({ ...meta, choices: [], usage });
  return informative ? formatSseData(rest) + usageChunk : usageChunk;
}

/**
 * An upstream's in-band stream error in OpenAI's shape ({message, type, param, code}, code a
 * string or null), or null when it already is one. What the upstream gave is kept (a string
 * message, type, code or param: an in-band error is written for the client, and OpenRouter masks
 * its 5xx messages itself); only what is missing or not a string is filled in: the code from
 * OpenRouter's metadata.error_type, the type from the status as for error answers (errors.ts).
 */
function openAiStreamError(e: unknown): Record<string, unknown> | null {
  const r = isRecord(e) ? e : { message: typeof e === 'string' ? e : undefined };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  if (str(r.message) !== undefined && str(r.type) !== undefined && (str(r.code) !== undefined || r.code === null) && (str(r.param) !== undefined || r.param === null)) {
    return null;
  }
  const metadata = isRecord(r.metadata) ? r.metadata : undefined;
  const status = typeof r.code === 'number' && r.code >= 400 && r.code <= 599 ? r.code : 502;
  const derived = upstreamError(status, '{}', {}).body.error;
  const message = str(r.message);
  return {
    message: message !== undefined && message !== '' ? message.slice(0, 1000) : 'The upstream failed in the middle of the stream.',
    type: str(r.type) ?? derived.type,
    param: str(r.param) ?? null,
    code: str(r.code) ?? str(metadata?.error_type) ?? derived.code,
  };
}

/** A choice that tells the client nothing (OpenRouter's usage carrier: empty delta, no finish). */
function isEmptyChoice(choice: unknown): boolean {
  if (!isRecord(choice)) return false;
  if (choice.finish_reason != null || choice.logprobs != null || choice.error != null) return false;
  if (choice.delta == null) return true;
  if (!isRecord(choice.delta)) return false;
  return Object.entries(choice.delta).every(
    ([k, v]) => k === 'role' || v === null || v === '' || (Array.isArray(v) && v.length === 0),
  );
}
