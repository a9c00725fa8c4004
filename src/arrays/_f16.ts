// Half floats (IEEE 754 binary16) for f16 fields: the runtime's own
// DataView.getFloat16 / setFloat16 where it has them (Deno 2.9 and Bun 1.4
// do), else a conversion here that rounds the same way (to nearest, ties to
// even, straight from the double: never through an f32, which could round
// twice).

import { abs, floor, type HalfView, isNaN, log2, NATIVE_F16, type RecordView, sameValue } from "./_builtins.ts";

const TWO_POW_24 = 2 ** 24;

/** Rounds `m` (non-negative) to an integer, ties to even. */
function roundEven(m: number): number {
  const whole = floor(m);
  const rest = m - whole;
  return rest > 0.5 || (rest === 0.5 && (whole & 1) === 1) ? whole + 1 : whole;
}

/** The binary16 bits of `x`: rounded to nearest, ties to even; too large is ±Infinity, NaN a quiet NaN. */
export function f16Bits(x: number): number {
  if (isNaN(x)) return 0x7e00;
  const sign = x < 0 || sameValue(x, -0) ? 0x8000 : 0;
  x = abs(x);
  // 65520 is halfway between the largest half (65504) and 65536, and rounds to the even one: Infinity.
  if (x >= 65520) return sign | 0x7c00;
  // Below the smallest normal (2^-14), steps of 2^-24; rounding up may reach the smallest normal, whose bits follow.
  if (x < 2 ** -14) return sign | roundEven(x * TWO_POW_24);
  let exponent = floor(log2(x));
  // log2 may be off by one next to a power of two.
  if (2 ** exponent > x) exponent--;
  else if (2 ** (exponent + 1) <= x) exponent++;
  // x / 2^exponent is exact, in [1, 2); a mantissa that rounds up to 1024 carries into the exponent, as it should.
  const mantissa = roundEven((x / 2 ** exponent - 1) * 1024);
  return sign | (((exponent + 15) << 10) + mantissa);
}

/** The number binary16 `bits` hold. */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa / TWO_POW_24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

// Through RecordView, whose prototype holds DataView's methods as memkit loaded them: a method the program
// replaces later (or a replaced Function.prototype.call) must not run in the middle of a read.

/** Stores `x` as a little-endian half float at byte `at` of `view`. */
export const setF16: (view: RecordView, at: number, x: number) => void = NATIVE_F16
  ? (view, at, x) => (view as HalfView).setFloat16!(at, x, true)
  : (view, at, x) => view.setUint16(at, f16Bits(x), true);

/** Reads the little-endian half float at byte `at` of `view`. */
export const getF16: (view: RecordView, at: number) => number = NATIVE_F16
  ? (view, at) => (view as HalfView).getFloat16!(at, true)
  : (view, at) => f16Value(view.getUint16(at, true));
