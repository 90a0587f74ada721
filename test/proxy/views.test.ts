// The hand-built parts of the hot path against what they replace: gateway_usage text against
// JSON.stringify of the same view, the bucket histogram against prom-client's own rendering,
// and the ring of recent charges (evicts by age, keeps each key's last charge).
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Histogram, Registry } from 'prom-client';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { CounterRef, CounterState } from '../../src/shared/limits/types.js';
import { BucketHistogram } from '../../src/proxy/metrics.js';
import { spliceGatewayUsage, spliceGatewayUsageText } from '../../src/proxy/relay-json.js';
import { GatewayResponse } from '../../src/proxy/server.js';
import { headersFrom, rawHeader } from '../../src/proxy/upstream/whole-response.js';
import { type Charge, gatewayUsage, gatewayUsageJson, RecentCharges, usageJsonBytes } from '../../src/proxy/usage-view.js';

const ref = (over: Partial<CounterRef>): CounterRef => ({
  id: 'x',
  scopeType: 'key',
  scopeId: 'k1',
  model: '',
  metric: 'tokens',
  window: 'day',
  max: 1000,
  since: 0,
  ...over,
});

const state = (counter: CounterRef, used: number, remaining: number, resetsAt: number | null): CounterState => ({ counter, used, remaining, resetsAt });

describe('gatewayUsageJson', () => {
  const tokens = ref({});
  const cost = ref({ metric: 'cost', window: 'month', max: 12_345_678 });
  const requests = ref({ metric: 'requests', window: 'minute', scopeType: 'org', scopeId: 'o"\\ü\u2028\u0001', max: 60 });
  const perModel = ref({ model: 'openai/*', window: 'hour', scopeType: 'user', scopeId: 'u-1' });
  const credits = ref({ metric: 'credits', window: 'total', scopeType: 'org', scopeId: 'o1', max: 5_000_000 });
  const charges: Charge[] = [
    { promptTokens: 12, completionTokens: 10, costMicros: 32, source: 'upstream' },
    { promptTokens: 0, completionTokens: 0, costMicros: 0, source: 'none' },
    { promptTokens: 123_456, completionTokens: 7, costMicros: 1_234_567_891, source: 'estimated' },
  ];
  const stateSets: CounterState[][] = [
    [],
    [state(tokens, 22, 978, Date.UTC(2026, 10, 26))],
    [
      state(requests, 61, -1, Date.UTC(2026, 10, 25, 14, 11)),
      state(tokens, 1000, 0, Date.UTC(2026, 10, 26)),
      state(cost, 33, 12_345_645, Date.UTC(2026, 11, 1)),
      state(perModel, 5, 995, null),
      state(credits, 1_000_001, 3_999_999, null),
      state(credits, 7_000_000, -2_000_000, null),
    ],
    [state(ref({ max: Number.NaN }), Number.POSITIVE_INFINITY, Number.NaN, null)],
  ];

  it('equals JSON.stringify of the object view, byte for byte, for every kind of counter', () => {
    for (const charge of charges) {
      for (const states of stateSets) {
        for (const id of ['req_"odd"\n', 'req_0123456789abcdef0123456789abcdef', 'req_ü']) {
          const text = gatewayUsageJson(id, charge, states);
          expect(text).toBe(JSON.stringify(gatewayUsage(id, charge, states)));
          // Its size in bytes, whether or not a scope, model or id takes more than one byte a character.
          expect(usageJsonBytes(text)).toBe(Buffer.byteLength(text));
        }
      }
    }
  });

  it('stays equal when the same counter objects come back with new values (the per-counter text is reused)', () => {
    for (let used = 0; used < 5; used++) {
      const states = [state(tokens, used * 100, 1000 - used * 100, Date.UTC(2026, 10, 26)), state(cost, used, 12_345_678 - used, Date.UTC(2026, 11, 1))];
      expect(gatewayUsageJson('r', charges[0]!, states)).toBe(JSON.stringify(gatewayUsage('r', charges[0]!, states)));
    }
  });
});

describe('gatewayUsageJson money', () => {
  it('prints micro-dollars as the same JSON number as micros / 1e6, across magnitudes and signs', () => {
    const values = [0, 1, -1, 5, 10, 999_999, 1_000_000, 1_000_001, 123_456_789, 999_999_999_999_999, 1e15, -(2 ** 53) + 1, 0.5, 1e20];
    let seed = 42;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(rand() * 10 ** Math.floor(rand() * 16)) * (rand() < 0.1 ? -1 : 1));
    const c = ref({ metric: 'cost', window: 'month', max: 7 });
    const cr = ref({ metric: 'credits', window: 'total', scopeType: 'org', scopeId: 'o', max: 9 });
    for (const m of values) {
      const charge: Charge = { promptTokens: 1, completionTokens: 1, costMicros: m, source: 'upstream' };
      const states = [state(c, m, m, null), state(cr, m, -m, null)];
      const text = gatewayUsageJson('r', charge, states);
      if (text !== JSON.stringify(gatewayUsage('r', charge, states))) expect.fail(`differs for ${m}: ${text}`);
    }
  });
});

describe('BucketHistogram', () => {
  it("renders exactly as prom-client's Histogram for the same observations", async () => {
    const buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.1, 1];
    const ours = new Registry();
    const theirs = new Registry();
    const h = new BucketHistogram('x_seconds', 'Help text.', buckets);
    ours.registerMetric(h as never);
    const p = new Histogram({ name: 'x_seconds', help: 'Help text.', buckets, registers: [theirs] });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const v of [0, 0.0001, 0.00010001, 0.0003, 0.001, 0.5, 1, 2, 1e9, 0.00025]) {
      h.observe(v);
      p.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    h.reset();
    p.reset();
    h.observe(0.002);
    p.observe(0.002);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('ignores NaN rather than corrupting the sum', async () => {
    const h = new BucketHistogram('y', 'h', [1]);
    h.observe(Number.NaN);
    h.observe(0.5);
    const r = new Registry();
    r.registerMetric(h as never);
    expect(await r.metrics()).toContain('y_sum 0.5\ny_count 1');
  });
});

describe('RecentCharges', () => {
  const charge: Charge = { promptTokens: 1, completionTokens: 2, costMicros: 3, source: 'upstream' };

  it('answers by request id for the last `capacity` charges and forgets older ones', () => {
    const r = new RecentCharges(3);
    for (let i = 0; i < 5; i++) r.add('k', `r${i}`, charge, []);
    expect(r.get('k', 'r0')).toBeUndefined();
    expect(r.get('k', 'r1')).toBeUndefined();
    for (const id of ['r2', 'r3', 'r4']) expect(r.get('k', id)?.request_id).toBe(id);
    expect(r.get('other', 'r4')).toBeUndefined(); // only to the key that made it
  });

  it('keeps request ids of one prefix as numbers and answers them with the exact text, other ids as they are', () => {
    const r = new RecentCharges(8);
    const p = 'req_0123456789abcdef';
    const ours = [`${p}0000000000000000`, `${p}00000000000000ff`, `${p}001fffffffffffff`];
    const others = [
      `${p}00000000000000FF`, // upper case: another id, not the one above
      `${p}ffffffffffffffff`, // past 2^53: kept as text
      `${p}000000000000000g`,
      'req_fedcba98765432100000000000000001', // another prefix
      'r1',
    ];
    for (const id of [...ours, ...others]) r.add('k', id, charge, []);
    for (const id of [...ours, ...others]) expect(r.get('k', id)?.request_id, id).toBe(id);
    expect(r.get('k', `${p}0000000000000001`)).toBeUndefined();
    expect(r.get('k', `${p}00000000000000Ff`)).toBeUndefined();
    expect(r.get('other', ours[1]!)).toBeUndefined();
    // Ring order still holds: the first of eight slots is overwritten by a ninth id.
    r.add('k', `${p}0000000000000abc`, charge, []);
    expect(r.get('k', ours[0]!)).toBeUndefined();
    expect(r.get('k', `${p}0000000000000abc`)?.request_id).toBe(`${p}0000000000000abc`);
  });

  it("keeps each key's last charge after it left the ring, bounded by the number of keys", () => {
    const r = new RecentCharges(2);
    r.add('quiet', 'q1', charge, []);
    for (let i = 0; i < 10; i++) r.add('busy', `b${i}`, charge, []);
    expect(r.get('quiet', 'q1')).toBeUndefined();
    expect(r.last('quiet')?.request_id).toBe('q1');
    expect(r.last('busy')?.request_id).toBe('b9');
    r.add('third', 't1', charge, []); // a third key: the map keeps 2, dropping the first key added
    expect(r.last('quiet')).toBeUndefined();
    expect(r.last('busy')?.request_id).toBe('b9');
    expect(r.last('third')?.request_id).toBe('t1');
  });

  it('past `capacity` keys, drops the key idle longest, not a busy key that came first', () => {
    const r = new RecentCharges(3);
    r.add('A', 'r1', charge, []);
    r.add('B', 'r2', charge, []);
    r.add('C', 'r3', charge, []);
    r.add('A', 'r4', charge, []); // A is the most recent now
    r.add('D', 'r5', charge, []);
    expect(r.last('A')?.request_id).toBe('r4');
    expect(r.last('B')).toBeUndefined();
  });

  it('a request id seen again replaces the earlier entry, and evicting the old slot does not drop the new one', () => {
    const r = new RecentCharges(2);
    r.add('k', 'same', { ...charge, promptTokens: 100 }, []);
    r.add('k', 'same', charge, []);
    r.add('k', 'next', charge, []); // overwrites slot 0 (the first 'same')
    expect(r.get('k', 'same')?.prompt_tokens).toBe(1);
  });

  it('answers with exactly what was added: every source, null and set resets, more counters than kept inline', () => {
    const refs = Array.from({ length: 11 }, (_, i) => ref({ id: `c${i}`, scopeId: `k${i}`, metric: i % 3 === 0 ? 'cost' : i === 10 ? 'credits' : 'tokens', max: 1_000_000 + i }));
    const states = (n: number, salt: number) => refs.slice(0, n).map((c, i) => state(c, i * 7 + salt, 1_000 - i - salt, i % 2 ? null : Date.UTC(2026, 10, 26) + i));
    const added: [string, Charge, CounterState[]][] = [
      ['a', { promptTokens: 12, completionTokens: 10, costMicros: 32, source: 'upstream' }, states(3, 1)],
      ['b', { promptTokens: 0, completionTokens: 0, costMicros: 0, source: 'none' }, []],
      ['c', { promptTokens: 7, completionTokens: 5, costMicros: 1_234_567_891, source: 'estimated' }, states(8, 2)],
      ['d', { promptTokens: 1, completionTokens: 2, costMicros: 3, source: 'upstream' }, states(11, 3)], // past the inline count
      ['e', { promptTokens: 4, completionTokens: 5, costMicros: 6, source: 'estimated' }, states(2, 4)],
    ];
    const r = new RecentCharges(4);
    for (const [id, charge, s] of added) r.add('k', id, charge, s);
    expect(r.get('k', 'a')).toBeUndefined(); // overwritten by 'e'
    for (const [id, charge, s] of added.slice(1)) expect(r.get('k', id)).toEqual(gatewayUsage(id, charge, s));
    expect(r.last('k')).toEqual(gatewayUsage('e', added[4]![1], added[4]![2]));
    // The slot that held 11 states is reused with 2: nothing of the old ones leaks into the answer.
    r.add('k', 'f', added[1]![1], states(2, 5));
    r.add('k', 'g', added[1]![1], states(1, 6));
    r.add('k', 'h', added[1]![1], []);
    r.add('k', 'i', added[1]![1], states(2, 7)); // overwrites 'd'
    expect(r.get('k', 'd')).toBeUndefined();
    expect(r.get('k', 'i')).toEqual(gatewayUsage('i', added[1]![1], states(2, 7)));
    // A key's last charge is a copy: changing what was passed in later does not change it.
    const mine = states(2, 8);
    r.add('solo', 's1', { promptTokens: 9, completionTokens: 9, costMicros: 9, source: 'upstream' }, mine);
    const before = r.last('solo');
    mine[0]!.used = 999_999;
    expect(r.last('solo')).toEqual(before);
  });
});

describe('spliceGatewayUsage', () => {
  it('adds gateway_usage as the last member, keeping every other byte, multi-byte text included', () => {
    const usage = gatewayUsageJson('req_ü\u2028', { promptTokens: 1, completionTokens: 2, costMicros: 3, source: 'upstream' }, []);
    const bodies = [
      '{"id":"x","choices":[{"message":{"content":"héllo 🦊 {}"}}],"usage":{"prompt_tokens":1}}',
      '{"a":1}\n',
      '{"a":1} \r\n\t ',
      '{ "a" : [1, 2, {"b": "}"}] \n}',
      '{}',
      '{ \n }',
    ];
    for (const text of bodies) {
      const out = spliceGatewayUsage(Buffer.from(text), usage).toString('utf8');
      const close = text.lastIndexOf('}');
      const before = text.slice(0, close).trimEnd();
      expect(out).toBe(`${text.slice(0, close)}${before.endsWith('{') ? '' : ','}"gateway_usage":${usage}${text.slice(close)}`);
      expect(JSON.parse(out).gateway_usage).toEqual(JSON.parse(usage));
      // The text splice gives the same body, and its size in bytes.
      const spliced = spliceGatewayUsageText(text, Buffer.byteLength(text), usage);
      expect(spliced.text).toBe(out);
      expect(spliced.bytes).toBe(Buffer.byteLength(out));
      expect(spliceGatewayUsageText(text, Buffer.byteLength(text), usage, Buffer.byteLength(usage))).toEqual(spliced);
    }
    const noObject = Buffer.from('[1,2]');
    expect(spliceGatewayUsage(noObject, usage)).toBe(noObject);
    expect(spliceGatewayUsageText('[1,2]', 5, usage)).toEqual({ text: '[1,2]', bytes: 5 });
  });
});

describe('headersFrom (raw upstream headers of a whole answer)', () => {
  it("lower-cases names and turns a repeated name into an array, as undici's request() does", () => {
    const raw = ['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Retry-After', '7', 'X-Odd', 'caf\u00e9'].map((s) => Buffer.from(s, 'latin1'));
    expect(headersFrom(raw)).toEqual({ 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], 'retry-after': '7', 'x-odd': 'caf\u00e9' });
    expect(headersFrom([])).toEqual({});
    expect(rawHeader(raw, 'content-type')).toBe('application/json');
    expect(rawHeader(raw, 'set-cookie')).toBe('a=1');
    expect(rawHeader(raw, 'retry-after')).toBe('7');
    expect(rawHeader(raw, 'content-length')).toBeUndefined();
  });
});

describe('GatewayResponse.writeHead', () => {
  it("adds the request id under every writeHead form node accepts, keeping the caller's headers", async () => {
    const forms: Array<(res: GatewayResponse) => void> = [
      (res) => res.writeHead(200, { 'x-custom': '1' }),
      (res) => res.writeHead(200, 'Fine', { 'x-custom': '1' }),
      (res) => res.writeHead(200, undefined as unknown as string, { 'x-custom': '1' }),
      (res) => res.writeHead(200, ['x-custom', '1']),
      (res) => {
        res.setHeader('x-custom', '1');
        res.writeHead(200);
      },
    ];
    let form = 0;
    const server = createServer<typeof IncomingMessage, typeof GatewayResponse>({ ServerResponse: GatewayResponse }, (_req, res) => {
      res.requestId = `req_${form}`;
      forms[form]!(res);
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      for (form = 0; form < forms.length; form++) {
        const r = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
        await r.body.text();
        expect(r.headers['x-custom'], `form ${form}`).toBe('1');
        expect(r.headers['x-request-id'], `form ${form}`).toBe(`req_${form}`);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
