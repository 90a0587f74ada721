// Edits of a request body in its own bytes: one member's value of the top-level object is found
// by scanning the JSON text (strings and nesting skipped), so everything else reaches the upstream
// exactly as the client sent it. Re-serializing through JSON.parse/stringify changed what it
// touched: an int64 `seed` lost its last digits, `1.0` became `1`, keys were reordered.

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

function skipWs(b: Buffer, i: number): number {
  while (i < b.length && WS.has(b[i]!)) i++;
  return i;
}

/** The index just past the string that opens at `i` (a quote), or -1. */
function skipString(b: Buffer, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    const c = b[j]!;
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/** The index just past the JSON value that starts at `i`, or -1 if there is none. */
function skipValue(b: Buffer, i: number): number {
  const c = b[i];
  if (c === 0x22) return skipString(b, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < b.length; j++) {
      const d = b[j]!;
      if (d === 0x22) {
        j = skipString(b, j) - 1;
        if (j < 0) return -1;
      } else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  while (j < b.length && !WS.has(b[j]!) && b[j] !== 0x2c && b[j] !== 0x7d && b[j] !== 0x5d) j++;
  return j > i ? j : -1;
}

export interface Member {
  /** Where the member's value starts and ends (exclusive). */
  start: number;
  end: number;
}

/**
 * The members of the object that starts at `open` (a `{`), by decoded key, each with its value's
 * span; null if the text is not a well-formed object there or a key repeats (which one a parser
 * keeps differs between parsers, so such a body is not edited in place).
 */
export function objectMembers(b: Buffer, open: number): Map<string, Member> | null {
  if (b[open] !== 0x7b) return null;
  const out = new Map<string, Member>();
  let i = skipWs(b, open + 1);
  if (b[i] === 0x7d) return out;
  for (;;) {
    if (b[i] !== 0x22) return null;
    const keyEnd = skipString(b, i);
    if (keyEnd < 0) return null;
    let key: string;
    try {
      key = JSON.parse(b.toString('utf8', i, keyEnd)) as string;
    } catch {
      return null;
    }
    i = skipWs(b, keyEnd);
    if (b[i] !== 0x3a) return null;
    const start = skipWs(b, i + 1);
    const end = skipValue(b, start);
    if (end < 0 || out.has(key)) return null;
    out.set(key, { start, end });
    i = skipWs(b, end);
    if (b[i] === 0x7d) return out;
    if (b[i] !== 0x2c) return null;
    i = skipWs(b, i + 1);
  }
}

/**
 * The body with `stream_options.include_usage` set to true, the rest byte for byte as sent; null
 * when that cannot be done in place (the caller then re-serializes).
 */
export function withIncludeUsage(raw: Buffer): Buffer | null {
  const top = objectMembers(raw, skipWs(raw, 0));
  const so = top?.get('stream_options');
  if (!so) return null;
  const value = raw[so.start];
  if (value === 0x6e) {
    // null
    return Buffer.concat([raw.subarray(0, so.start), Buffer.from('{"include_usage":true}'), raw.subarray(so.end)]);
  }
  if (value !== 0x7b) return null;
  const inner = objectMembers(raw, so.start);
  if (!inner) return null;
  const current = inner.get('include_usage');
  if (current) return Buffer.concat([raw.subarray(0, current.start), Buffer.from('true'), raw.subarray(current.end)]);
  const empty = inner.size === 0;
  return Buffer.concat([raw.subarray(0, so.start + 1), Buffer.from(empty ? '"include_usage":true' : '"include_usage":true,'), raw.subarray(so.start + 1)]);
}
