/**
 * Arrays of float vectors with math in libmemkit's SIMD kernels.
 *
 * @module
 */
import { intrinsic, native } from "../../ffi/native.ts";
import { describe } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { allocatorCopies } from "./_array_storage.ts";
import { arrayInternals, DynamicArray } from "./dynamic_array.ts";
import type { DynamicArrayOptions } from "./dynamic_array_types.ts";
import { checkNotFreed, typedArrayKind } from "./_intrinsic_views.ts";
import { Builtin, hasOwn, typedLengthOf, typedRange } from "./_builtins.ts";

const isView = ArrayBuffer.isView;

/**
 * The element types of a {@linkcode SIMDArray}: one float, or 2, 3 or 4 of
 * them (`f32x3` takes 16 bytes, padded, as GPUs and SIMD units want).
 *
 * @example
 * ```ts
 * import { SIMDArray, type SIMDType } from "@memkit/memkit";
 *
 * const type: SIMDType = "f32x3";
 * using points = new SIMDArray(type);
 * ```
 */
export type SIMDType = "f32" | "f32x2" | "f32x3" | "f32x4";

const SHAPES: Record<SIMDType, { dims: number; stride: number }> = {
  f32: { dims: 1, stride: 1 },
  f32x2: { dims: 2, stride: 2 },
  f32x3: { dims: 3, stride: 4 },
  f32x4: { dims: 4, stride: 4 },
};

const { storageOf, lengthOf, nameNext, snapshotOf } = arrayInternals;

/**
 * A {@linkcode DynamicArray} of float vectors whose math runs in libmemkit
 * (AVX2 / SSE2 / NEON, or the TypeScript fallback): element-wise results are
 * identical on every path; `sum` accumulates in double precision. Elements
 * are numbers (`f32`) or arrays of 2–4 numbers.
 *
 * Every count a kernel gets comes from the array's own private state, and
 * every `out` array is measured with the engine's own getters: a subclass
 * that overrides `length`, or an `out` with an own `length` property, changes
 * nothing (the safety model: lengths cannot be faked). Before each kernel the array checks that its
 * storage is alive: once `free()` ran or its allocator released the block,
 * every method throws `AllocationError("use-after-free")` naming the array.
 *
 * @example
 * ```ts
 * import { SIMDArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using a = new SIMDArray("f32x3");
 * a.pushMany([[3, 4, 0], [0, 0, 2]]);
 * assert.deepEqual([...a.magnitudes()], [5, 2]);
 * a.normalize();
 * a.scale(2);
 * assert.deepEqual(a.get(0), [1.2000000476837158, 1.600000023841858, 0]);
 * ```
 */
export class SIMDArray extends DynamicArray<number | number[]> {
  readonly #type: SIMDType;
  readonly #dims: number;
  readonly #floatStride: number;

  /**
   * Creates an array of `type` vectors.
   * @param type "f32", "f32x2", "f32x3" or "f32x4".
   * @param options As for DynamicArray.
   * @throws {TypeError} For another type, or mistyped options.
   * @throws {RangeError} For out-of-range options.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   *
   * using velocities = new SIMDArray("f32x2", { capacity: 4096 });
   * velocities.push([1, 0]);
   * ```
   */
  constructor(type: SIMDType, options?: DynamicArrayOptions) {
    if (options === undefined) options = {};
    const shape = typeof type === "string" && hasOwn(SHAPES, type) ? SHAPES[type] : undefined;
    if (shape === undefined) {
      throw new TypeError(
        `Cannot create SIMDArray as 'type' must be f32, f32x2, f32x3 or f32x4: current value is ${describe(type)}`,
      );
    }
    // Named before super(): its option errors and its allocator's refusals there name a SIMDArray too.
    nameNext("SIMDArray", new.target);
    super(type, options);
    this.#type = type;
    this.#dims = shape.dims;
    this.#floatStride = shape.stride;
  }

  /**
   * Appends vectors (arrays of numbers), or raw elements: bytes of whole
   * elements copied as they are (for `"f32x3"`, 16 bytes each: x, y, z and a
   * padding float). Raw elements have their padding set to 0, so `sum()` and
   * the other kernels see only components. All or nothing.
   * @returns The new length.
   * @throws {TypeError} / {RangeError} As for {@linkcode DynamicArray.pushMany}.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32x3");
   * a.pushMany(new Float32Array([1, 2, 3, 99])); // one raw element: x, y, z, padding
   * assert.equal(a.sum(), 6); // the padding was cleared
   * ```
   */
  override pushMany(values: readonly (number | readonly number[])[] | ArrayBufferView): number {
    const before = lengthOf(this as DynamicArray<unknown>);
    const bytes = isView(values); // (before the push: after it, no program code may run until the padding is 0)
    const length = super.pushMany(values);
    const stride = this.#floatStride;
    if (stride !== this.#dims && bytes && length > before) {
      const floats = this.#floats(true, "push to");
      for (let i = before * stride + this.#dims; i < length * stride; i += stride) {
        for (let lane = 0; lane < stride - this.#dims; lane++) floats[i + lane] = 0;
      }
    }
    return length;
  }

  /**
   * A SIMDArray of the same type that shares the storage until either side
   * changes it (copy on write), as {@linkcode DynamicArray.snapshot}: it can
   * be given to `add`, `sub`, `axpy` and `dot` of this array.
   * @returns A new SIMDArray with the same elements.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when it copies (as a DynamicArray's).
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using velocity = new SIMDArray("f32x2");
   * velocity.push([1, 2]);
   * using before = velocity.snapshot();
   * velocity.add(before); // doubles velocity; the snapshot keeps [1, 2]
   * assert.deepEqual(velocity.get(0), [2, 4]);
   * assert.deepEqual(before.get(0), [1, 2]);
   * ```
   */
  override snapshot(): SIMDArray {
    return snapshotOf(this as DynamicArray<unknown>, (options) => new SIMDArray(this.#type, options));
  }

  /**
   * Multiplies every component by `k`.
   * @throws {TypeError} When `k` is not a number.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32x2");
   * a.push([1, 2]);
   * a.scale(3);
   * assert.deepEqual(a.get(0), [3, 6]);
   * ```
   */
  scale(k: number): void {
    this.#number(k, "scale", "k");
    const y = this.#floats(true, "scale");
    const n = this.#count();
    if (n) native.kernels.f32Scale(y, n, k);
  }

  /**
   * Adds `other` element by element.
   * @throws {TypeError} When `other` is not a SIMDArray.
   * @throws {RangeError} When it has another type or length (checked again when this array's allocator ran to
   *   copy a storage a snapshot shares: its code may have changed `other`); nothing is changed then.
   * @throws {AllocationError} "use-after-free" when either array's storage is gone.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32");
   * using b = new SIMDArray("f32");
   * a.pushMany([1, 2]);
   * b.pushMany([10, 20]);
   * a.add(b);
   * assert.deepEqual([...a], [11, 22]);
   * ```
   */
  add(other: SIMDArray): void {
    this.#pair(other, "add to");
    const y = this.#writeFloats(other, "add to", "other");
    const x = other.#floats(false, "add with");
    const n = this.#count();
    if (n) native.kernels.f32Add(y, x, n);
  }

  /**
   * Subtracts `other` element by element.
   * @throws {TypeError} When `other` is not a SIMDArray.
   * @throws {RangeError} When it has another type or length (checked again when this array's allocator ran to
   *   copy a storage a snapshot shares: its code may have changed `other`); nothing is changed then.
   * @throws {AllocationError} "use-after-free" when either array's storage is gone.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32");
   * using b = new SIMDArray("f32");
   * a.pushMany([1, 2]);
   * b.pushMany([10, 20]);
   * a.sub(b);
   * assert.deepEqual([...a], [-9, -18]);
   * ```
   */
  sub(other: SIMDArray): void {
    this.#pair(other, "subtract from");
    const y = this.#writeFloats(other, "subtract from", "other");
    const x = other.#floats(false, "subtract with");
    const n = this.#count();
    if (n) native.kernels.f32Sub(y, x, n);
  }

  /**
   * `this += a * x`, element by element.
   * @throws {TypeError} When `a` is not a number or `x` not a SIMDArray.
   * @throws {RangeError} When `x` has another type or length (checked again when this array's allocator ran to
   *   copy a storage a snapshot shares: its code may have changed `x`); nothing is changed then.
   * @throws {AllocationError} "use-after-free" when either array's storage is gone.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using position = new SIMDArray("f32x2");
   * using velocity = new SIMDArray("f32x2");
   * position.push([0, 0]);
   * velocity.push([1, 2]);
   * position.axpy(0.5, velocity); // one half step
   * assert.deepEqual(position.get(0), [0.5, 1]);
   * ```
   */
  axpy(a: number, x: SIMDArray): void {
    this.#number(a, "axpy into", "a");
    this.#pair(x, "axpy into", "x");
    const y = this.#writeFloats(x, "axpy into", "x");
    const xs = x.#floats(false, "axpy with");
    const n = this.#count();
    if (n) native.kernels.f32Axpy(y, a, xs, n);
  }

  /**
   * Scales every vector to length 1 (zero vectors stay zero).
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32x2");
   * a.pushMany([[3, 4], [0, 0]]);
   * a.normalize();
   * assert.deepEqual([...a.magnitudes()], [1, 0]);
   * ```
   */
  normalize(): void {
    const v = this.#floats(true, "normalize");
    const count = lengthOf(this as DynamicArray<unknown>);
    if (count) native.kernels.f32Normalize(v, count, this.#floatStride, this.#dims);
  }

  /**
   * Each vector's length, into `out` (or a new Float32Array of `length` floats).
   * @param out Where to write: a Float32Array of at least `length` floats (measured with the engine's own getter).
   * @returns `out`, or the new array.
   * @throws {TypeError} When `out` is not a Float32Array.
   * @throws {RangeError} When `out` is too short.
   * @throws {AllocationError} "use-after-free" once the storage is gone, or when `out` is a view over freed memory.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32x3");
   * a.pushMany([[3, 4, 0], [0, 0, 2]]);
   * const out = new Float32Array(2);
   * assert.equal(a.magnitudes(out), out);
   * assert.deepEqual([...out], [5, 2]);
   * ```
   */
  magnitudes(out?: Float32Array): Float32Array {
    const v = this.#floats(false, "compute magnitudes of");
    const count = lengthOf(this as DynamicArray<unknown>);
    const result = this.#out(out, count, "magnitudes");
    if (count) native.kernels.f32Magnitudes(v, count, this.#floatStride, this.#dims, result);
    return result;
  }

  /**
   * Each element's dot product with `other`'s, into `out` (or a new Float32Array).
   * @param out Where to write: a Float32Array of at least `length` floats.
   * @returns `out`, or the new array.
   * @throws {TypeError} When `other` is not a SIMDArray or `out` not a Float32Array.
   * @throws {RangeError} When `other` has another type or length, or `out` is too short.
   * @throws {AllocationError} "use-after-free" when either array's storage is gone, or when `out` is a view over freed memory.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32x3");
   * using b = new SIMDArray("f32x3");
   * a.push([1, 2, 3]);
   * b.push([4, 5, 6]);
   * assert.deepEqual([...a.dot(b)], [32]);
   * ```
   */
  dot(other: SIMDArray, out?: Float32Array): Float32Array {
    this.#pair(other, "compute dot products of");
    const a = this.#floats(false, "compute dot products of");
    const b = other.#floats(false, "compute dot products with");
    const count = lengthOf(this as DynamicArray<unknown>);
    const result = this.#out(out, count, "dot");
    if (count) native.kernels.f32Dots(a, b, count, this.#floatStride, this.#dims, result);
    return result;
  }

  /**
   * The sum of every component, in double precision. (Padding floats are
   * kept 0 by every write memkit makes; one written through `view()` counts.)
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { SIMDArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using a = new SIMDArray("f32x3");
   * a.pushMany([[1, 2, 3], [4, 5, 6]]);
   * assert.equal(a.sum(), 21);
   * ```
   */
  sum(): number {
    const x = this.#floats(false, "sum");
    const n = this.#count();
    return n ? native.kernels.f32Sum(x, n) : 0;
  }

  // Floats in use (components and padding of every element), from private state.
  #count(): number {
    return lengthOf(this as DynamicArray<unknown>) * this.#floatStride;
  }

  // A Float32Array over the whole live storage, made again only when the
  // storage moves: a view per call costs more than a small kernel (the
  // kernels take their count separately). Checks that the storage is alive;
  // writers copy a storage shared with a snapshot first.
  #floats(forWrite: boolean, op: string): Float32Array {
    const block = storageOf(this as DynamicArray<unknown>, forWrite, op);
    if (block !== this.#block) {
      this.#block = block;
      // (The block's range from its internal slots: a getter the program put on %TypedArray%.prototype would
      // decide where the kernels write.)
      const { buffer, offset } = typedRange(block);
      this.#view = new Builtin.Float32Array(buffer, offset, typedLengthOf(block) >> 2);
    }
    return this.#view!;
  }
  #block: Uint8Array | null = null;
  #view: Float32Array | null = null;

  // #floats(true) for a kernel that also reads `other`, checked by #pair before. A storage a snapshot shares
  // is copied first through the allocator, which may be user code: it cannot touch this array (busy while its
  // allocator works for it), but it may shrink, clear, compact or free `other`, or free the snapshot (then
  // the copy is dropped and the block stays the same). So whenever that copy step ran, whatever came of it,
  // the pair is checked again before the kernel; otherwise no user code runs between #pair and the kernel,
  // and the check stays off the usual path.
  #writeFloats(other: SIMDArray, op: string, param: string): Float32Array {
    const copies = allocatorCopies;
    const y = this.#floats(true, op);
    if (allocatorCopies !== copies) this.#pair(other, op, param);
    return y;
  }

  #number(value: unknown, op: string, name: string): void {
    if (typeof value !== "number") {
      throw new TypeError(
        `Cannot ${op} a SIMDArray as '${name}' must be a number: current value is ${describe(value)}`,
      );
    }
  }

  // `other` (the parameter `param`), a live SIMDArray of this one's type and length.
  #pair(other: SIMDArray, op: string, param = "other"): void {
    if (!(typeof other === "object" && other !== null && #dims in other)) {
      throw new TypeError(
        `Cannot ${op} a SIMDArray as '${param}' must be a SIMDArray: current value is ${describe(other)}`,
      );
    }
    storageOf(this as DynamicArray<unknown>, false, op);
    try {
      storageOf(other as DynamicArray<unknown>, false, "read");
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      throw new AllocationError(
        error.category,
        `Cannot ${op} a SIMDArray as '${param}' cannot be read: ${error.message}`,
        { cause: error },
      );
    }
    const mine = lengthOf(this as DynamicArray<unknown>), theirs = lengthOf(other as DynamicArray<unknown>);
    if (other.#dims !== this.#dims || theirs !== mine) {
      const holds = (n: number, type: SIMDType) => `${n} ${type} element${n === 1 ? "" : "s"}`;
      throw new RangeError(
        `Cannot ${op} a SIMDArray as '${param}' must have this array's type and length: this array holds ` +
          `${holds(mine, this.#type)}, '${param}' ${holds(theirs, other.#type)}`,
      );
    }
  }

  // `out`, a real Float32Array of at least `count` floats (by the engine's own getter), or a new one.
  // A view over a detached buffer (freed memory) is use-after-free, whatever its type.
  #out(out: Float32Array | undefined, count: number, op: string): Float32Array {
    if (out === undefined) return new Float32Array(count);
    checkNotFreed(out, `compute ${op}`, "out");
    if (typedArrayKind(out) !== "Float32Array") {
      throw new TypeError(`Cannot compute ${op} as 'out' must be a Float32Array: current value is ${describe(out)}`);
    }
    const length = intrinsic.typedArrayLength(out);
    if (length < count) {
      throw new RangeError(`Cannot compute ${op} as 'out' holds ${length} of the ${count} floats needed`);
    }
    return out;
  }
}
