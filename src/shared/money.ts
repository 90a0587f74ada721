// Money is integer micro-dollars everywhere. Decimal strings are converted with integer
// arithmetic only, so "0.0000025" never passes through a float.
import { usageError } from './errors.js';

export const MICROS_PER_USD = 1_000_000;
const DECIMAL_RE = /^(-)?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Scales a decimal string by 10^scale and rounds half away from zero to an integer. */
export function decimalToScaledInt(value: string, scale: number): number {
  const m = DECIMAL_RE.exec(value.trim());
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) {
    throw usageError(`'${value}' is not a decimal number`);
  }
  const negative = m[1] === '-';
  const digits = (m[2] ?? '') + (m[3] ?? '');
  const shift = scale - (m[3] ?? '').length + Number(m[4] ?? 0);
  // Fast path, exact: up to 15 digits is an integer below 2^53, 10^k is exact up to k = 22, and
  // % and the division of an exact multiple are exact on such integers. BigInt cost ~3 µs a
  // request here (usage.cost of every answer); this is a tenth of that.
  if (digits.length <= 15 && shift >= -22 && shift <= 22) {
    const d = digits === '' ? 0 : Number(digits);
    let n: number;
    if (shift >= 0) n = d * 10 ** shift;
    else {
      const div = 10 ** -shift;
      const r = d % div;
      n = (d - r) / div + (r * 2 >= div ? 1 : 0);
    }
    if (Number.isSafeInteger(n)) return negative ? -n : n;
  }
  let big = BigInt(digits === '' ? '0' : digits);
  if (shift >= 0) {
    big *= 10n ** BigInt(shift);
  } else {
    const div = 10n ** BigInt(-shift);
    const q = big / div;
    big = big % div >= (div + 1n) / 2n ? q + 1n : q;
  }
  const n = Number(big);
  if (!Number.isSafeInteger(n)) throw usageError(`'${value}' is out of range`);
  return negative ? -n : n;
}

export const usdToMicros = (usd: string) => decimalToScaledInt(usd, 6);

/**
 * A USD amount sent as a JSON number, in micro-dollars, when the double alone decides it: any
 * decimal that parses to this double rounds (half away from zero) to the same integer. Else
 * null: the amount is within 1e-6 of a half micro-dollar, or past 1e9 micro-dollars, and the
 * decimal text decides. Why: a decimal within half an ulp of the double (every literal that
 * parses to it, its shortest print included) is below 1e9 micros within 5.7e-8 micros of
 * usd * 1e6, which is itself within 6e-8 of the computed product; rounding to the nearest
 * integer can only change across a half, and there is more than 1e-6 to the nearest one.
 */
export function usdNumberToMicrosExact(usd: number): number | null {
  const x = usd * MICROS_PER_USD;
  const a = Math.abs(x);
  if (a < 1e9) {
    const floor = Math.floor(a);
    const frac = a - floor;
    if (Math.abs(frac - 0.5) > 1e-6) {
      const n = frac > 0.5 ? floor + 1 : floor;
      return x < 0 ? -n : n;
    }
  }
  return null;
}

/**
 * A USD amount sent as a JSON number, in micro-dollars: exactly usdToMicros(String(usd)) (the
 * number's shortest decimal, rounded half away from zero), mostly without printing it (~1.5 µs
 * a request for usage.cost; see usdNumberToMicrosExact).
 */
export function usdNumberToMicros(usd: number): number {
  return usdNumberToMicrosExact(usd) ?? usdToMicros(String(usd));
}

/** A per-token USD price string (OpenRouter's form) as micro-dollars per million tokens. */
export const perTokenUsdToMicrosPerM = (usd: string) => decimalToScaledInt(usd, 12);

/** Exact cost in micro-dollars of `tokens` at `microsPerM`, rounded half up. */
export function tokenCostMicros(tokens: number, microsPerM: number): number {
  if (tokens === 0 || microsPerM === 0) return 0;
  // Exact on doubles while the product is a safe integer (any real request: 2^53 is 9e15, a
  // million tokens at $1,000 per million is 1e15): % and the division of an exact multiple are
  // exact there. BigInt, kept for the rest, allocated on every call, two to four per request.
  const product = tokens * microsPerM;
  if (Number.isSafeInteger(product) && Number.isSafeInteger(tokens) && Number.isSafeInteger(microsPerM)) {
    const r = product % 1_000_000;
    return (product - r) / 1_000_000 + (r >= 500_000 ? 1 : 0);
  }
  const num = BigInt(tokens) * BigInt(microsPerM);
  return Number((num + 500_000n) / 1_000_000n);
}

/** Formats micro-dollars as a USD decimal string without losing digits: 1234567 → "1.234567". */
export function formatMicros(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_USD);
  let frac = abs % MICROS_PER_USD;
  if (frac === 0) return `${sign}${whole}`;
  // The fraction's digits without trailing zeros, by arithmetic (padStart and a regex replace
  // were most of this function's time, and it runs for every limit on every answer).
  let digits = 6;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  const text = String(frac);
  return `${sign}${whole}.${text.length < digits ? ZEROS[digits - text.length] + text : text}`;
}

const ZEROS = ['', '0', '00', '000', '0000', '00000'];

/** USD as a JSON number for scripts (micro-dollar precision survives a double). */
export const microsToUsdNumber = (micros: number) => micros / MICROS_PER_USD;
