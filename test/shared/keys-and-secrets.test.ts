import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatKey, hashKey, newKeyId, parseKey, verifyKeyHash } from '../../src/shared/keys.js';
import { decimalToScaledInt, formatMicros, perTokenUsdToMicrosPerM, tokenCostMicros, usdNumberToMicros, usdToMicros } from '../../src/shared/money.js';
import { open, seal, secretHint } from '../../src/shared/secret-box.js';

describe('key format', () => {
  it('formats gw_<env>_<id>_<secret> with a 43-character base62 secret and parses it back', () => {
    const id = newKeyId();
    const key = formatKey('test', id);
    expect(key).toMatch(/^gw_test_[0-9a-z]{12}_[0-9A-Za-z]{43}$/);
    expect(parseKey(key)).toEqual({ env: 'test', id, secret: key.split('_')[3] });
  });

  it('gives each key at least 160 bits of secret (43 base62 chars ≈ 256 bits) and never repeats', () => {
    const secrets = new Set(Array.from({ length: 2000 }, () => parseKey(formatKey('live', newKeyId()))!.secret));
    expect(secrets.size).toBe(2000);
    expect(43 * Math.log2(62)).toBeGreaterThan(160);
  });

  it.each([
    '',
    'gw_live_abc_def',
    'sk-or-v1-0123456789',
    'gw_prod_abcdefghijkl_0123456789012345678901234567890123456789012',
    'gw_live_ABCDEFGHIJKL_0123456789012345678901234567890123456789012',
    'gw_live_abcdefghijkl_012345678901234567890123456789012345678901',
    'gw_live_abcdefghijkl_0123456789012345678901234567890123456789012x',
    'gw_live_abcdefghijkl_01234567890123456789012345678901234567890-2',
    ' gw_live_abcdefghijkl_0123456789012345678901234567890123456789012',
    'gw_live_abcdefghijkl_0123456789012345678901234567890123456789012\n',
  ])('rejects the malformed key %j', (raw) => {
    expect(parseKey(raw)).toBeNull();
  });

  it('stores only SHA-256 of the whole key and verifies it in constant time', () => {
    const key = formatKey('live', newKeyId());
    const h = hashKey(key);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).not.toContain(parseKey(key)!.secret);
    expect(verifyKeyHash(key, h)).toBe(true);
    const flipped = `${key.slice(0, -1)}${key.endsWith("x") ? "y" : "x"}`;
    expect(verifyKeyHash(flipped, h)).toBe(false);
    expect(verifyKeyHash(key, 'deadbeef')).toBe(false);
  });
});

describe('secret box (AES-256-GCM)', () => {
  const master = randomBytes(32);

  it('round-trips an upstream key and never stores it in clear', () => {
    const sealed = seal(master, 'sk-or-v1-supersecret-1234');
    expect(sealed).not.toContain('supersecret');
    expect(sealed.startsWith('v1:')).toBe(true);
    expect(open(master, sealed)).toBe('sk-or-v1-supersecret-1234');
  });

  it('uses a fresh IV each time, and fails clearly under another master key or tampering', () => {
    const a = seal(master, 'same');
    const b = seal(master, 'same');
    expect(a).not.toBe(b);
    expect(() => open(randomBytes(32), a)).toThrow(/master key differs/);
    const parts = a.split(':');
    const ct = Buffer.from(parts[3]!, 'base64');
    ct[0] = ct[0]! ^ 1;
    expect(() => open(master, [parts[0], parts[1], parts[2], ct.toString('base64')].join(':'))).toThrow();
  });

  it('shows only the last 4 characters of a secret', () => {
    expect(secretHint('sk-or-v1-abcdefgh1234')).toBe('1234');
    expect(secretHint('short')).toBe('****');
  });
});

describe('money is integer micro-dollars', () => {
  it('converts decimal strings exactly, without floats', () => {
    expect(usdToMicros('25')).toBe(25_000_000);
    expect(usdToMicros('0.000001')).toBe(1);
    expect(usdToMicros('0.1')).toBe(100_000);
    expect(usdToMicros('-2.5')).toBe(-2_500_000);
    expect(perTokenUsdToMicrosPerM('0.0000025')).toBe(2_500_000);
    expect(perTokenUsdToMicrosPerM('0.00000015')).toBe(150_000);
    expect(perTokenUsdToMicrosPerM('0')).toBe(0);
    expect(decimalToScaledInt('1.5e-6', 6)).toBe(2);
    expect(() => usdToMicros('abc')).toThrow(/not a decimal/);
  });

  it('converts exactly as integer arithmetic does, on the fast path and past it', () => {
    // The reference: BigInt all the way, rounding half away from zero.
    const reference = (value: string, scale: number): number | 'throws' => {
      const m = /^(-)?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(value.trim());
      if (!m || (m[2] === '' && !m[3])) return 'throws';
      const digits = (m[2] ?? '') + (m[3] ?? '') || '0';
      const shift = scale - (m[3] ?? '').length + Number(m[4] ?? 0);
      let big = BigInt(digits);
      if (shift >= 0) big *= 10n ** BigInt(shift);
      else {
        const div = 10n ** BigInt(-shift);
        big = big % div >= (div + 1n) / 2n ? big / div + 1n : big / div;
      }
      const n = Number(big);
      if (!Number.isSafeInteger(n)) return 'throws';
      return m[1] === '-' ? -n : n;
    };
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const digitRun = (n: number) => Array.from({ length: n }, () => rand(10)).join('');
    const cases = ['0.000032', '0.0000325', '0.0000335', '-0.0000025', '-0.0', '0.5e-6', '1.5e-6', '2.5e-6', '9007199254.740991', '9007199254.740992',
      '999999999999999', '0.999999999999999', '1e22', '1e-22', '123456789012345e-22', '5e-7', '4.9999999e-7', ' 0.25 ', '12.', '.5', '1e300', '1e-300'];
    for (let i = 0; i < 20_000; i++) {
      const whole = digitRun(rand(9));
      const frac = digitRun(rand(16));
      const exp = rand(4) === 0 ? `e${rand(2) ? '-' : ''}${rand(25)}` : '';
      cases.push(`${rand(5) === 0 ? '-' : ''}${whole}${frac || !whole ? `.${frac || '0'}` : ''}${exp}`);
    }
    for (const value of cases) {
      for (const scale of [6, 12]) {
        const want = reference(value, scale);
        if (want === 'throws') expect(() => decimalToScaledInt(value, scale), value).toThrow();
        else expect(decimalToScaledInt(value, scale), `${value} at scale ${scale}`).toBe(want);
      }
    }
  });

  it('converts a JSON number of USD to micros exactly as its printed decimal converts, halves included', () => {
    // Halves of a micro (and doubles a hair either side of them) are where the float product and
    // the decimal can disagree; the rest is spread over every magnitude a cost can take.
    const values = [0, -0, 0.000032, 0.0000325, 0.0000335, 2.5e-6, 1.5e-6, 5e-7, 4.9999999e-7, 0.0000005000000000000001, 1e-7, -0.0000025, 123.4567895, 999.9999995, 1e3, 1e9, 1e12, 1e300, 5e-324, Number.MAX_SAFE_INTEGER / 1e6];
    for (let m = 0; m < 20_000; m++) {
      const half = (m + 0.5) / 1e6;
      values.push(half, half * (1 + Number.EPSILON), half * (1 - Number.EPSILON), -half);
    }
    let seed = 11;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let i = 0; i < 50_000; i++) values.push(rand() * 10 ** Math.floor(rand() * 16 - 9), Number((rand() * 100).toFixed(Math.floor(rand() * 12))));
    for (const v of values) {
      let want: number | 'throws';
      try {
        want = usdToMicros(String(v));
      } catch {
        want = 'throws';
      }
      if (want === 'throws') expect(() => usdNumberToMicros(v), String(v)).toThrow();
      else expect(usdNumberToMicros(v), String(v)).toBe(want);
    }
  });

  it('prices tokens exactly and formats without losing digits', () => {
    expect(tokenCostMicros(1_000_000, 2_500_000)).toBe(2_500_000);
    expect(tokenCostMicros(15, 150_000)).toBe(2);
    expect(tokenCostMicros(3, 150_000)).toBe(0);
    expect(formatMicros(1_234_567)).toBe('1.234567');
    expect(formatMicros(-500_000)).toBe('-0.5');
    expect(formatMicros(0)).toBe('0');
  });

  it('prices tokens as BigInt arithmetic does, on both sides of the safe-integer range', () => {
    const reference = (tokens: number, perM: number) => (tokens === 0 || perM === 0 ? 0 : Number((BigInt(tokens) * BigInt(perM) + 500_000n) / 1_000_000n));
    const pairs: Array<[number, number]> = [[1, 499_999], [1, 500_000], [1, 1_500_000], [3, 166_667], [2 ** 20, 2 ** 33 - 1], [1e6, 1e9], [9e6, 1e9], [1e9, 1e9], [123_456_789, 98_765_432]];
    for (let i = 0; i < 20_000; i++) pairs.push([Math.floor(Math.random() * 10 ** (i % 10)), Math.floor(Math.random() * 10 ** (i % 12))]);
    for (const [t, p] of pairs) expect(tokenCostMicros(t, p), `${t} × ${p}`).toBe(reference(t, p));
  });

  it('formats micro-dollars as the string-based reference does, for every digit pattern', () => {
    const reference = (micros: number) => {
      const abs = Math.abs(micros);
      const frac = String(abs % 1_000_000).padStart(6, '0').replace(/0+$/, '');
      return `${micros < 0 ? '-' : ''}${Math.floor(abs / 1_000_000)}${frac ? `.${frac}` : ''}`;
    };
    const values = [1, 9, 10, 100, 1_000, 10_000, 100_000, 999_999, 1_000_000, 1_000_001, 1_010_000, 123_456_000_000, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(Math.random() * 10 ** (1 + (i % 15))));
    for (const v of values) {
      expect(formatMicros(v)).toBe(reference(v));
      expect(formatMicros(-v)).toBe(reference(-v));
    }
  });
});
