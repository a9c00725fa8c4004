/**
 * Arrays of float vectors with math in libmemkit's SIMD kernels.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { describe } from "../base/_validate.ts";
import { DynamicArray, type DynamicArrayOptions, storageOf } from "./dynamic_array.ts";

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

/**
 * A {@linkcode DynamicArray} of float vectors whose math runs in libmemkit
 * (AVX2 / SSE2 / NEON, or the TypeScript fallback): element-wise results are
 * identical on every path; `sum` accumulates in double precision. Elements
 * are numbers (`f32`) or arrays of 2–4 numbers.
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
  readonly #dims: number;
  readonly #floatStride: number;

  /**
   * Creates an array of `type` vectors.
   * @param type "f32", "f32x2", "f32x3" or "f32x4".
   * @param options As for DynamicArray.
   * @throws {TypeError} For another type.
   */
  constructor(type: SIMDType, options: DynamicArrayOptions = {}) {
    const shape = SHAPES[type];
    if (shape === undefined) {
      throw new TypeError(
        `Cannot create SIMDArray as 'type' must be f32, f32x2, f32x3 or f32x4: current value is ${describe(type)}`,
      );
    }
    super(type, options);
    this.#dims = shape.dims;
    this.#floatStride = shape.stride;
  }

  /** Multiplies every component by `k`. */
  scale(k: number): void {
    this.#number(k, "scale", "k");
    const n = this.#count();
    if (n) native.kernels.f32Scale(this.#floats(true), n, k);
  }

  /** Adds `other` element by element (same length). */
  add(other: SIMDArray): void {
    this.#pair(other, "add");
    const n = this.#count();
    if (n) native.kernels.f32Add(this.#floats(true), other.#floats(), n);
  }

  /** Subtracts `other` element by element (same length). */
  sub(other: SIMDArray): void {
    this.#pair(other, "subtract");
    const n = this.#count();
    if (n) native.kernels.f32Sub(this.#floats(true), other.#floats(), n);
  }

  /** `this += a * x`, element by element (same length). */
  axpy(a: number, x: SIMDArray): void {
    this.#number(a, "axpy", "a");
    this.#pair(x, "axpy");
    const n = this.#count();
    if (n) native.kernels.f32Axpy(this.#floats(true), a, x.#floats(), n);
  }

  /** Scales every vector to length 1 (zero vectors stay zero). */
  normalize(): void {
    if (this.length) native.kernels.f32Normalize(this.#floats(true), this.length, this.#floatStride, this.#dims);
  }

  /** Each vector's length, into `out` (or a new Float32Array). */
  magnitudes(out?: Float32Array): Float32Array {
    const result = this.#out(out, "magnitudes");
    if (this.length) {
      native.kernels.f32Magnitudes(this.#floats(), this.length, this.#floatStride, this.#dims, result);
    }
    return result;
  }

  /** Each element's dot product with `other`'s, into `out` (or a new Float32Array). */
  dot(other: SIMDArray, out?: Float32Array): Float32Array {
    this.#pair(other, "dot");
    const result = this.#out(out, "dot");
    if (this.length) {
      native.kernels.f32Dots(this.#floats(), other.#floats(), this.length, this.#floatStride, this.#dims, result);
    }
    return result;
  }

  /** The sum of every component (padding is always 0), in double precision. */
  sum(): number {
    const n = this.#count();
    return n ? native.kernels.f32Sum(this.#floats(), n) : 0;
  }

  // Floats in use (components and padding of every element).
  #count(): number {
    return this.length * this.#floatStride;
  }

  // A Float32Array over the whole storage, made again only when the storage
  // moves: a view per call costs more than a small kernel (the kernels take
  // their count separately). Writers copy a storage shared with a snapshot first.
  #floats(forWrite = false): Float32Array {
    const block = storageOf(this as DynamicArray<unknown>, forWrite);
    if (block !== this.#block) {
      this.#block = block;
      this.#view = new Float32Array(block.buffer, block.byteOffset, block.byteLength >> 2);
    }
    return this.#view!;
  }
  #block: Uint8Array | null = null;
  #view: Float32Array | null = null;

  #number(value: unknown, op: string, name: string): void {
    if (typeof value !== "number") {
      throw new TypeError(`Cannot ${op} as '${name}' must be a number: current value is ${describe(value)}`);
    }
  }

  #pair(other: SIMDArray, op: string): void {
    if (!(other instanceof SIMDArray)) {
      throw new TypeError(`Cannot ${op} as 'other' must be a SIMDArray: current value is ${describe(other)}`);
    }
    if (other.#dims !== this.#dims || other.length !== this.length) {
      throw new RangeError(
        `Cannot ${op} as 'other' must have the same type and length: ${other.length} × ${other.#dims} against ${this.length} × ${this.#dims}`,
      );
    }
  }

  #out(out: Float32Array | undefined, op: string): Float32Array {
    if (out === undefined) return new Float32Array(this.length);
    if (!(out instanceof Float32Array)) {
      throw new TypeError(`Cannot compute ${op} as 'out' must be a Float32Array: current value is ${describe(out)}`);
    }
    if (out.length < this.length) {
      throw new RangeError(`Cannot compute ${op} as 'out' holds ${out.length} of ${this.length} values`);
    }
    return out;
  }
}
