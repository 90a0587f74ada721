// SSE framing shared by the observer (sse-usage.ts) and the rewriter (sse-rewriter.ts). Each
// chunk is read once as a latin1 string: one character per byte, so string indices are byte
// offsets, a UTF-8 character split across chunks stays intact byte for byte, and the scanning
// runs on V8's string search instead of a native call per Buffer.indexOf (which, with the
// views it made, was most of the framing time). Lines split on LF; CR before LF is stripped.
// Event data stays in this byte form ("binary" strings); dataText() decodes UTF-8 when a
// caller needs the real text (to parse JSON), which is a few events per stream.

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
  /** The data lines, as bytes (latin1 strings: one character per byte). */
  data: string[];
}

/** Splits bytes into events. */
export class SseFramer {
  comments = 0;
  /** An unfinished line from earlier chunks, as bytes. */
  private carry = '';
  private name = '';
  private data: string[] = [];
  private lines = 0;

  get atBoundary(): boolean {
    return this.carry === '' && this.lines === 0;
  }

  /** Calls onEvent for each event the chunk completes, with the offset just past its blank line. */
  feed(buf: Buffer, onEvent: (event: SseEvent, end: number) => void): void {
    const s = buf.toString('latin1');
    let start = 0;
    for (let lf = s.indexOf('\n'); lf !== -1; lf = s.indexOf('\n', start)) {
      let line = s.slice(start, lf);
      if (this.carry !== '') {
        line = this.carry + line;
        this.carry = '';
      }
      start = lf + 1;
      const event = this.line(line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line);
      if (event) onEvent(event, start);
    }
    if (start < s.length) this.carry += s.slice(start);
  }

  /** At EOF: the unterminated last event, if any. */
  finish(): SseEvent | null {
    let ended: SseEvent | null = null;
    if (this.carry !== '') {
      const line = this.carry;
      this.carry = '';
      ended = this.line(line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line);
    }
    return ended ?? (this.lines > 0 ? this.take() : null);
  }

  private line(line: string): SseEvent | null {
    if (line.length === 0) return this.take();
    this.lines++;
    const c = line.charCodeAt(0);
    if (c === COLON) this.comments++;
    else if (isField(line, 'data')) this.data.push(fieldValue(line, 4));
    else if (isField(line, 'event')) this.name = latin1ToText(fieldValue(line, 5));
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

function isField(line: string, field: string): boolean {
  return line.startsWith(field) && (line.length === field.length || line.charCodeAt(field.length) === COLON);
}

/** The value after `field:`, minus the single optional space the SSE spec allows. */
function fieldValue(line: string, nameLength: number): string {
  const start = nameLength + 1;
  return line.slice(line.charCodeAt(start) === 0x20 ? start + 1 : start);
}

/** UTF-8 bytes held in a latin1 string, decoded (ASCII-only strings are already their text). */
export function latin1ToText(bytes: string): string {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes.charCodeAt(i) > 0x7f) return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return bytes;
}

/** An event's data lines as bytes, joined by LF (the SSE rule for multi-line data). */
export function dataBytes(event: SseEvent): string {
  return event.data.length === 1 ? event.data[0]! : event.data.join('\n');
}

/** An event's data as text (UTF-8 decoded). */
export function dataText(event: SseEvent): string {
  return latin1ToText(dataBytes(event));
}

/** Parses at most once, and only when some question needs the whole chunk. */
export function lazyParse(text: () => string): () => unknown {
  let done = false;
  let value: unknown;
  return () => {
    if (!done) {
      done = true;
      try {
        value = JSON.parse(text());
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
