// Regression test from the review of 2026-12-07 (of that day's own fixes): what the comment below describes was a bug, fixed then.
// the rewriter now JSON-parses every framed event that has a "usage" key, "usage":null
// included (OpenAI sends it on every chunk with include_usage, which the gateway forces), before
// testing NON_NULL_USAGE_RE. Before the diff such an event cost a regex test and no parse.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSseTap } from '../../src/proxy/sse-usage.js';

afterEach(() => vi.restoreAllMocks());

const ev = (i: number) => `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok${i}"},"finish_reason":null}],"usage":null}\n\n`;

describe('rewriter hot path', () => {
  it('does not parse "usage":null events framed after a chunk split mid-event', () => {
    const tap = createSseTap({ includeUsage: false });
    const all = Array.from({ length: 101 }, (_, i) => ev(i)).join('');
    // The upstream read ends in the middle of the first event: the next read is framed whole.
    const cut = 40;
    const first = tap.push(Buffer.from(all.slice(0, cut)));
    const parse = vi.spyOn(JSON, 'parse');
    const out = tap.push(Buffer.from(all.slice(cut)));
    expect(Buffer.concat([...first, ...out]).toString()).toBe(all); // bytes unchanged
    expect(parse.mock.calls.length).toBe(0);
  });
});
