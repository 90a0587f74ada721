// Regression test from the review of 2026-12-07 (of that day's own fixes): what the comment below describes was a bug, fixed then.
// openAiStreamError treats an in-band error as "not OpenAI's shape" when only `param`
// is missing, and then rebuilds it from a status it does not have (502): the upstream's own
// string `type` (rate_limit_error, invalid_request_error) is replaced by upstream_error. Before
// the diff the event passed byte for byte with its type.
import { describe, expect, it } from 'vitest';
import { createSseTap } from '../../src/proxy/sse-usage.js';

describe('in-band error reshaping', () => {
  it("keeps an error's own string type when only param is missing", () => {
    const tap = createSseTap({ includeUsage: false });
    const ev = 'data: {"id":"c","object":"chat.completion.chunk","error":{"message":"Rate limit reached for tokens per minute","type":"rate_limit_error","code":"rate_limit_exceeded"}}\n\n';
    const out = Buffer.concat([...tap.push(Buffer.from(ev)), ...tap.end()]).toString();
    const json = JSON.parse(out.slice('data: '.length)) as { error: { type: string; code: string } };
    expect(json.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
  });
});
