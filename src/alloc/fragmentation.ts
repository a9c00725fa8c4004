/**
 * The fragmentation metric every memkit allocator reports.
 *
 * @module
 */

/**
 * Fragmentation of free space as `1 - sqrt(Σ fᵢ²) / Σ fᵢ` over free block
 * sizes `fᵢ` (Adam Sawicki's metric, as in Pigweed): 0 when the free space is
 * one block (or there is none), approaching 1 as it splinters into many
 * small blocks. Two equal free blocks give about 0.29, ten give about 0.68.
 *
 * @param freeBlockSizes The sizes of the free blocks, in bytes.
 * @returns A number from 0 to 1.
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
  let sum = 0;
  let squares = 0;
  for (const size of freeBlockSizes) {
    sum += size;
    squares += size * size;
  }
  if (sum === 0) return 0;
  const value = 1 - Math.sqrt(squares) / sum;
  return value < 1e-12 ? 0 : value;
}
