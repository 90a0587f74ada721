// stream_options.include_usage set in the body's own bytes (upstream/json-splice.ts).
import { describe, expect, it } from 'vitest';
import { objectMembers, withIncludeUsage } from '../../src/proxy/upstream/json-splice.js';

const edit = (s: string) => withIncludeUsage(Buffer.from(s))?.toString() ?? null;

describe('withIncludeUsage', () => {
  it('adds include_usage to stream_options and leaves every other byte as sent', () => {
    const body = '{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},"seed":12345678901234567890,"temperature":1.0}';
    expect(edit(body)).toBe('{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},"seed":12345678901234567890,"temperature":1.0}');
  });

  it('sets an include_usage that is false or null, and fills an empty or null stream_options', () => {
    expect(edit('{"stream_options":{"include_usage":false,"x":1}}')).toBe('{"stream_options":{"include_usage":true,"x":1}}');
    expect(edit('{"stream_options": { "include_usage" : null } }')).toBe('{"stream_options": { "include_usage" : true } }');
    expect(edit('{"stream_options":{}}')).toBe('{"stream_options":{"include_usage":true}}');
    expect(edit('{"a":[1,{"stream_options":null}],"stream_options":null}')).toBe('{"a":[1,{"stream_options":null}],"stream_options":{"include_usage":true}}');
  });

  it('finds the member past strings holding braces, quotes and escapes, and an escaped key', () => {
    const body = '{"messages":[{"content":"a } \\" { ] [ , :"}],"stream\\u005foptions":{"k":"}"}}';
    expect(JSON.parse(edit(body)!)).toEqual({ messages: [{ content: 'a } " { ] [ , :' }], stream_options: { include_usage: true, k: '}' } });
  });

  it('declines what it cannot edit in place: a repeated key, no stream_options, a value of another type, broken JSON', () => {
    expect(edit('{"stream_options":{},"stream_options":null}')).toBeNull();
    expect(edit('{"stream_options":{"include_usage":false,"include_usage":false}}')).toBeNull();
    expect(edit('{"model":"m"}')).toBeNull();
    expect(edit('{"stream_options":"yes"}')).toBeNull();
    expect(edit('{"stream_options":{"a":')).toBeNull();
    expect(objectMembers(Buffer.from('[1]'), 0)).toBeNull();
  });
});
