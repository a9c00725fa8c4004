/**
 * Byte operations backed by libmemkit's SIMD kernels.
 *
 * @module
 */
import { intrinsic, native, typedArrayByteLength } from "../../ffi/native.ts";
import { byteLengthOf, checkView, describe, viewBytes } from "../base/_validate.ts";

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
   * @throws {AllocationError} "use-after-free" when either is a view over a detached (freed) buffer.
   */
  copy(dst: ArrayBufferView, src: ArrayBufferView): void;
  /**
   * Sets every byte of `dst` to `byte`.
   * @throws {TypeError} When `dst` is not a typed array or DataView, or `byte` is not a number.
   * @throws {RangeError} When `byte` is not an integer from 0 to 255.
   * @throws {AllocationError} "use-after-free" when `dst` is a view over a detached (freed) buffer.
   */
  fill(dst: ArrayBufferView, byte: number): void;
  /**
   * The index of the first byte where `a` and `b` differ, or -1 when their
   * bytes are equal. When one is a prefix of the other, the shorter length.
   * @throws {TypeError} When either is not a typed array or DataView.
   * @throws {AllocationError} "use-after-free" when either is a view over a detached (freed) buffer.
   */
  compare(a: ArrayBufferView, b: ArrayBufferView): number;
  /**
   * Whether `a` and `b` have the same length and bytes.
   * @throws {TypeError} When either is not a typed array or DataView.
   * @throws {AllocationError} "use-after-free" when either is a view over a detached (freed) buffer.
   */
  equals(a: ArrayBufferView, b: ArrayBufferView): boolean;
}

// These byte operations work on the caller's own views and change no state of memkit's, so they call the
// captured getter and methods through `.call` (as ffi/boundary.ts does): through Reflect.apply, a 64-byte copy
// took 3.5× as long in Bun (19 -> 67 ns). A Function.prototype.call the program replaced after memkit loaded
// runs between the length checks and the copy; the engine's own set and fill still bound what they touch.
//
// The hot path takes a plain Uint8Array as it is and reads its real length
// with the intrinsic getter; everything else (other typed arrays, DataViews,
// subclasses, non-views) goes through these out-of-line helpers, which keeps
// the hot path small enough for the JITs to inline.
const getPrototypeOf = Object.getPrototypeOf;
const Uint8ArrayPrototype = Uint8Array.prototype;

function bytesOf(view: ArrayBufferView, op: string, name: string): Uint8Array {
  return viewBytes(checkView(view, op, name), op, name);
}

// The real byte length of a Uint8Array from bytesOf (a Proxy claiming
// Uint8Array's prototype gets checkView's TypeError).
function lengthOf(bytes: Uint8Array, original: unknown, op: string, name: string): number {
  let length: number;
  try {
    length = typedArrayByteLength.call(bytes);
  } catch (error) {
    checkView(original, op, name);
    throw error;
  }
  return length === 0 ? byteLengthOf(bytes, op, name) : length; // 0: detached is use-after-free
}

// A plain Uint8Array is used as it is (its lengths are still read at the boundary).
function isPlain(value: unknown): value is Uint8Array {
  return typeof value === "object" && value !== null && getPrototypeOf(value) === Uint8ArrayPrototype;
}

/**
 * Byte-level operations on any typed arrays or DataViews, native or JS-owned,
 * dispatched to libmemkit (AVX2 / SSE2 / NEON / scalar) or, without it, to
 * TypeScript. Small inputs stay in JS, where an FFI call would cost more than
 * the work. `copy` and `fill` use the runtime's own bulk operations, which
 * measure as fast as libmemkit's at every size (they already run at memory
 * bandwidth), so they never pay for an FFI call.
 *
 * Lengths come from the engine's intrinsic getters, never from properties a
 * caller can define: a subclass with its own `length` getter, or an own
 * `length`/`byteLength` property, is measured by its real bytes. A view over
 * a detached buffer (memory memkit freed) is `AllocationError("use-after-free")`.
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
 *
 * @example Lengths cannot be faked
 * ```ts
 * import { AllocationError, simd, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const a = new Uint8Array(4096);
 * Object.defineProperty(a, "length", { value: 2 ** 40 }); // a lie: the real length is 4096
 * assert.equal(simd.compare(a, a), -1);
 *
 * const allocator = new SystemAllocator();
 * const block = allocator.alloc(64);
 * allocator.free(block); // block is detached now
 * assert.throws(() => simd.fill(block, 0), (e) => e instanceof AllocationError && e.category === "use-after-free");
 * ```
 */
export const simd: Simd = {
  copy(dst, src) {
    const d = isPlain(dst) ? dst : bytesOf(dst, "copy", "dst");
    const s = isPlain(src) ? src : bytesOf(src, "copy", "src");
    const room = lengthOf(d, dst, "copy", "dst");
    const n = lengthOf(s, src, "copy", "src");
    if (n > room) {
      throw new RangeError(
        `Cannot copy as 'src' (${n} bytes) must fit in 'dst' (${room} bytes): current value is ${describe(src)}`,
      );
    }
    // The runtime's own memmove runs at memory bandwidth, as fast as libmemkit's
    // (bench/simd_bench.ts), without the FFI call. The intrinsic set: a
    // subclass's own `set` is not called.
    if (n > 0) intrinsic.set(d, s);
  },
  fill(dst, byte) {
    const d = isPlain(dst) ? dst : bytesOf(dst, "fill", "dst");
    const n = lengthOf(d, dst, "fill", "dst");
    if (typeof byte !== "number") {
      throw new TypeError(`Cannot fill as 'byte' must be a number: current value is ${describe(byte)}`);
    }
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) {
      throw new RangeError(
        `Cannot fill as 'byte' must be an integer from 0 to 255: current value is ${describe(byte)}`,
      );
    }
    if (n > 0) intrinsic.fill(d, byte);
  },
  compare(a, b) {
    // Lengths, the detached check and the small-input JS loop are the kernel boundary's.
    const x = isPlain(a) ? a : bytesOf(a, "compare", "a");
    const y = isPlain(b) ? b : bytesOf(b, "compare", "b");
    return native.kernels.compareAll(x, y);
  },
  equals(a, b) {
    const x = isPlain(a) ? a : bytesOf(a, "compare", "a");
    const y = isPlain(b) ? b : bytesOf(b, "compare", "b");
    return native.kernels.compareAll(x, y) === -1; // -1 only for equal lengths and bytes
  },
};
