// SSE framing shared by the observer (sse-usage.ts) and the rewriter (sse-rewriter.ts): bytes are
// split on LF at the byte level (0x0A never occurs inside a multi-byte UTF-8 sequence), CR before
// LF is stripped, and lines stay views of the input until their event completes.

export const LF = 0x0a;
export const CR = 0x0d;
export const COLON = 0x3a;
export const USAGE_KEY_BYTES = Buffer.from('"usage"');
// "usage" whose value is not null (OpenAI sends "usage":null on every chunk); the lookahead
// cannot be satisfied by backtracking into the whitespace.
export const NON_NULL_USAGE_RE = /"usage"[ \t\r\n]*:(?=[ \t\r\n]*(?!null)[^ \t\r\n])/;

export function formatSseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

export function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export interface SseEvent {
  name: string;
  data: Buffer[];
}

/** Splits bytes into events. Lines stay views of the input; only a line spanning chunks is copied. */
export class SseFramer {
  comments = 0;
  private pieces: Buffer[] = [];
  private name = '';
  private data: Buffer[] = [];
  private lines = 0;

  get atBoundary(): boolean {
    return this.pieces.length === 0 && this.lines === 0;
  }

  /** Calls onEvent for each event the chunk completes, with the offset just past its blank line. */
  feed(buf: Buffer, onEvent: (event: SseEvent, end: number) => void): void {
    let start = 0;
    for (let lf = buf.indexOf(LF); lf !== -1; lf = buf.indexOf(LF, start)) {
      const event = this.line(this.join(buf.subarray(start, lf)));
      start = lf + 1;
      if (event) onEvent(event, start);
    }
    if (start < buf.length) this.pieces.push(buf.subarray(start));
  }

  /** At EOF: the unterminated last event, if any. */
  finish(): SseEvent | null {
    const ended = this.pieces.length > 0 ? this.line(this.join(Buffer.alloc(0))) : null;
    return ended ?? (this.lines > 0 ? this.take() : null);
  }

  private join(tail: Buffer): Buffer {
    let line = tail;
    if (this.pieces.length > 0) {
      this.pieces.push(tail);
      line = Buffer.concat(this.pieces);
      this.pieces = [];
    }
    return line.at(-1) === CR ? line.subarray(0, -1) : line;
  }

  private line(line: Buffer): SseEvent | null {
    if (line.length === 0) return this.take();
    this.lines++;
    if (line[0] === COLON) this.comments++;
    else if (isField(line, 'data')) this.data.push(fieldValue(line, 4));
    else if (isField(line, 'event')) this.name = fieldValue(line, 5).toString();
    return null;
  }

  private take(): SseEvent {
    const event = { name: this.name, data: this.data };
    this.name = '';
    this.data = [];
    this.lines = 0;
    return event;
  }
}

function isField(line: Buffer, field: string): boolean {
  if (line.length < field.length) return false;
  for (let i = 0; i < field.length; i++) if (line[i] !== field.charCodeAt(i)) return false;
  return line.length === field.length || line[field.length] === COLON;
}

/** The value after `field:`, minus the single optional space the SSE spec allows. */
function fieldValue(line: Buffer, nameLength: number): Buffer {
  const start = nameLength + 1;
  return line.subarray(line[start] === 0x20 ? start + 1 : start);
}

export function dataText(event: SseEvent): string {
  return event.data.map((b) => b.toString('utf8')).join('\n');
}

/** Parses at most once, and only when some question needs the whole chunk. */
export function lazyParse(text: string): () => unknown {
  let done = false;
  let value: unknown;
  return () => {
    if (!done) {
      done = true;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
    }
    return value;
  };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
