/**
 * The fragmentation metric every memkit allocator reports.
 *
 * @module
 */
import { bufferOf, describe, intrinsicConstructorOf, isDetached, lengthOf, offsetOf } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * Fragmentation of free space as `1 - sqrt(Σ fᵢ²) / Σ fᵢ` over free block
 * sizes `fᵢ` (Adam Sawicki's metric, as in Pigweed): 0 when the free space is
 * one block (or there is none), approaching 1 as it splinters into many
 * small blocks. Two equal free blocks give about 0.29, ten give about 0.68.
 *
 * @param freeBlockSizes The sizes of the free blocks, in bytes (any iterable of numbers, e.g. an array).
 * @returns A number from 0 to 1.
 * @throws {TypeError} When `freeBlockSizes` is not an iterable object (a string is not), or a size is not a number.
 * @throws {RangeError} When a size is negative, NaN or infinite.
 * @throws {AllocationError} "use-after-free" for a typed array over a detached buffer.
 *
 * @example
 * ```ts
 * import { fragmentation } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fragmentation([4096]), 0);
 * assert.ok(fragmentation([16, 16, 16, 16]) > 0.4);
 * ```
 */
export function fragmentation(freeBlockSizes: Iterable<number>): number {
  if (
    typeof freeBlockSizes !== "object" || freeBlockSizes === null ||
    typeof (freeBlockSizes as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Cannot compute fragmentation as 'freeBlockSizes' must be an iterable of numbers: current value is ${
        describe(freeBlockSizes)
      }`,
    );
  }
  let sizes: Iterable<unknown> = freeBlockSizes;
  if (ArrayBuffer.isView(freeBlockSizes)) {
    // A typed array is read through its internal slots (its own iterator or length never runs).
    const buffer = bufferOf(freeBlockSizes);
    const length = lengthOf(freeBlockSizes);
    if (length === 0 && isDetached(buffer)) {
      throw new AllocationError(
        "use-after-free",
        "Cannot compute fragmentation of a view over a detached ArrayBuffer: its memory was released",
      );
    }
    const { ctor, bytesPerElement } = intrinsicConstructorOf(freeBlockSizes);
    sizes = new ctor(buffer, offsetOf(freeBlockSizes), length / bytesPerElement) as unknown as Iterable<unknown>;
  }
  // Sums of the sizes divided by the largest seen so far (`scale`), rescaled when a larger one comes: the plain
  // sums overflow (two blocks of 1e200 gave 0, of MAX_VALUE NaN) or underflow (two of 1e-320 gave 1). One pass,
  // as an iterator may be read only once. Each term is at most 1, so neither sum can overflow.
  let scale = 0;
  let sum = 0;
  let squares = 0;
  let iterator: Iterator<unknown>;
  try {
    iterator = sizes[Symbol.iterator]();
  } catch (error) {
    throw new TypeError(
      "Cannot compute fragmentation as 'freeBlockSizes' cannot be iterated: its iterator threw (the error is the cause)",
      {
        cause: error,
      },
    );
  }
  for (;;) {
    let step: IteratorResult<unknown>;
    try {
      step = iterator.next();
    } catch (error) {
      throw new TypeError("Cannot compute fragmentation as iterating 'freeBlockSizes' threw (the error is the cause)", {
        cause: error,
      });
    }
    if (step.done) break;
    const size = step.value;
    if (typeof size !== "number") {
      throw new TypeError(
        `Cannot compute fragmentation as every free block size must be a number: current value is ${describe(size)}`,
      );
    }
    if (!(size >= 0) || size === Infinity) {
      throw new RangeError(
        `Cannot compute fragmentation as every free block size must be a finite number from 0: current value is ${
          describe(size)
        }`,
      );
    }
    if (size > scale) {
      const ratio = scale / size; // 0 for the first block that is not empty
      sum *= ratio;
      squares *= ratio * ratio;
      scale = size;
    }
    if (size !== 0) {
      const x = size / scale;
      sum += x;
      squares += x * x;
    }
  }
  if (sum === 0) return 0;
  // sqrt(Σx²) ≤ Σx for x ≥ 0; rounding may cross either end by an ulp.
  const value = 1 - Math.sqrt(squares) / sum;
  return value < 1e-12 ? 0 : Math.min(value, 1);
}
