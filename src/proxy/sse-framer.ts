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
export const ERROR_KEY_BYTES = Buffer.from('"error"');
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
  /** The data lines joined by LF (the SSE rule), as bytes (a latin1 string: one character per byte). */
  data: string;
  /** How many data lines the event had (0: none, so no data at all; 1 with data '' is an empty data line). */
  dataLines: number;
  /** The data parsed as JSON (undefined when it is not JSON), or UNPARSED: see eventJson. */
  json: unknown;
  /** Whether the data holds a `"usage"` key, once someone has looked (null until then). */
  usageKey: boolean | null;
  /** Whether the data holds an `"error"` key, once someone has looked (null until then). */
  errorKey: boolean | null;
}

/** Marks an event whose data has not been parsed yet. */
export const UNPARSED: unique symbol = Symbol('unparsed');

/** An event's data as JSON (undefined when it is not JSON), parsed at most once per event. */
export function eventJson(event: SseEvent): unknown {
  if (event.json === UNPARSED) {
    try {
      event.json = JSON.parse(dataText(event));
    } catch {
      event.json = undefined;
    }
  }
  return event.json;
}

/** Splits bytes into events. */
export class SseFramer {
  comments = 0;
  /** An unfinished line from earlier chunks, as bytes. */
  private carry = '';
  private name = '';
  // The data so far as one string, not a list of lines: an array per event (and the backing
  // store its first push allocated) was most of what framing allocated.
  private data = '';
  private dataLines = 0;
  private lines = 0;

  get atBoundary(): boolean {
    return this.carry === '' && this.lines === 0;
  }

  /**
   * Calls onEvent for each event the chunk completes, with the offset just past its blank line.
   * `s` is the chunk as latin1 when the caller has it already; framing starts at `from` (the
   * bytes before it are whole events the caller has dealt with, so the framer must be at a
   * boundary when `from` > 0).
   */
  feed(buf: Buffer, onEvent: (event: SseEvent, end: number) => void, s: string = buf.toString('latin1'), from = 0): void {
    let start = from;
    for (let lf = s.indexOf('\n', start); lf !== -1; lf = s.indexOf('\n', start)) {
      let event: SseEvent | null;
      if (this.carry !== '') {
        const line = this.carry + s.slice(start, lf);
        this.carry = '';
        event = this.lineAt(line, 0, line.length);
      } else event = this.lineAt(s, start, lf);
      start = lf + 1;
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
      ended = this.lineAt(line, 0, line.length);
    }
    return ended ?? (this.lines > 0 ? this.take() : null);
  }

  /**
   * The line s[start, end) (its LF excluded; a CR before it is dropped here). Works on offsets
   * into the chunk, so a data line costs one slice (its value), not two.
   */
  private lineAt(s: string, start: number, end: number): SseEvent | null {
    const stop = end > start && s.charCodeAt(end - 1) === CR ? end - 1 : end;
    if (stop === start) return this.take();
    this.lines++;
    const c = s.charCodeAt(start);
    if (c === COLON) this.comments++;
    else if (isField(s, start, stop, 'data')) {
      const value = fieldValue(s, start + 4, stop);
      this.data = this.dataLines++ === 0 ? value : `${this.data}\n${value}`;
    }
    else if (isField(s, start, stop, 'event')) this.name = latin1ToText(fieldValue(s, start + 5, stop));
    return null;
  }

  private take(): SseEvent {
    const event: SseEvent = { name: this.name, data: this.data, dataLines: this.dataLines, json: UNPARSED, usageKey: null, errorKey: null };
    this.name = '';
    this.data = '';
    this.dataLines = 0;
    this.lines = 0;
    return event;
  }
}

/** Whether the line s[start, stop) is the field `field`: its name, then a colon or nothing. */
function isField(s: string, start: number, stop: number, field: string): boolean {
  const after = start + field.length;
  return after <= stop && s.startsWith(field, start) && (after === stop || s.charCodeAt(after) === COLON);
}

/** The value after `field:` (`nameEnd` is where the name ends), minus the single optional space the SSE spec allows. */
function fieldValue(s: string, nameEnd: number, stop: number): string {
  const from = nameEnd + 1;
  if (from >= stop) return '';
  return s.slice(s.charCodeAt(from) === 0x20 ? from + 1 : from, stop);
}

const NON_ASCII = /[\x80-\xff]/; // a latin1 string holds bytes: above 0x7f is not ASCII

/** UTF-8 bytes held in a latin1 string, decoded (ASCII-only strings are already their text). */
export function latin1ToText(bytes: string): string {
  return NON_ASCII.test(bytes) ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
}

/** An event's data lines as bytes, joined by LF (the SSE rule for multi-line data). */
export function dataBytes(event: SseEvent): string {
  return event.data;
}

/** An event's data as text (UTF-8 decoded). */
export function dataText(event: SseEvent): string {
  return latin1ToText(dataBytes(event));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
