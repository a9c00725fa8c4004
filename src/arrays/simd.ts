/**
 * Byte operations backed by libmemkit's SIMD kernels.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { bytesOf, checkView, describe } from "../base/_validate.ts";

/**
 * The byte operations of {@linkcode simd}.
 *
 * @example
 * ```ts
 * import { type Simd, simd } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const ops: Simd = simd;
 * assert.ok(ops.equals(new Uint8Array([1]), new Uint8Array([1])));
 * ```
 */
export interface Simd {
  /**
   * Copies all of `src` into the start of `dst` (overlap allowed).
   * @throws {TypeError} When either is not a typed array or DataView.
   * @throws {RangeError} When `src` has more bytes than `dst`.
   */
  copy(dst: ArrayBufferView, src: ArrayBufferView): void;
  /**
   * Sets every byte of `dst` to `byte`.
   * @throws {RangeError} When `byte` is not an integer from 0 to 255.
   */
  fill(dst: ArrayBufferView, byte: number): void;
  /**
   * The index of the first byte where `a` and `b` differ, or -1 when their
   * bytes are equal. When one is a prefix of the other, the shorter length.
   */
  compare(a: ArrayBufferView, b: ArrayBufferView): number;
  /** Whether `a` and `b` have the same length and bytes. */
  equals(a: ArrayBufferView, b: ArrayBufferView): boolean;
}

function compareBytes(a: Uint8Array, b: Uint8Array, n: number): number {
  // Empty and small inputs stay in JS, where one FFI call would cost more than the loop.
  if (n >= native.jsBelowBytes) return native.kernels.compare(a, b, n);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Byte-level operations on any typed arrays or DataViews, native or JS-owned,
 * dispatched to libmemkit (AVX2 / SSE2 / NEON / scalar) or, without it, to
 * TypeScript. Small inputs stay in JS, where an FFI call would cost more than
 * the work. `copy` and `fill` use the runtime's own bulk operations, which
 * measure as fast as libmemkit's at every size (they already run at memory
 * bandwidth), so they never pay for an FFI call.
 *
 * @example
 * ```ts
 * import { simd } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const a = new Uint8Array(4096);
 * const b = new Uint8Array(4096);
 * simd.fill(a, 1);
 * simd.copy(b, a);
 * assert.ok(simd.equals(a, b));
 * b[1000] = 0;
 * assert.equal(simd.compare(a, b), 1000);
 * ```
 */
export const simd: Simd = {
  copy(dst, src) {
    const d = bytesOf(checkView(dst, "copy", "dst"));
    const s = bytesOf(checkView(src, "copy", "src"));
    if (s.length > d.length) {
      throw new RangeError(
        `Cannot copy as 'src' (${s.length} bytes) must fit in 'dst' (${d.length} bytes): current value is ${
          describe(src)
        }`,
      );
    }
    // The runtime's own memmove runs at memory bandwidth, as fast as libmemkit's
    // (bench/simd_bench.ts), without the FFI call.
    d.set(s);
  },
  fill(dst, byte) {
    const d = bytesOf(checkView(dst, "fill", "dst"));
    if (typeof byte !== "number") {
      throw new TypeError(`Cannot fill as 'byte' must be a number: current value is ${describe(byte)}`);
    }
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) {
      throw new RangeError(
        `Cannot fill as 'byte' must be an integer from 0 to 255: current value is ${describe(byte)}`,
      );
    }
    d.fill(byte);
  },
  compare(a, b) {
    checkView(a, "compare", "a");
    checkView(b, "compare", "b");
    const x = bytesOf(a);
    const y = bytesOf(b);
    const n = x.length < y.length ? x.length : y.length;
    const at = compareBytes(x, y, n);
    return at >= 0 || x.length === y.length ? at : n;
  },
  equals(a, b) {
    checkView(a, "compare", "a");
    checkView(b, "compare", "b");
    const x = bytesOf(a);
    const y = bytesOf(b);
    return x.length === y.length && compareBytes(x, y, x.length) < 0;
  },
};
