// The `pool` memory type: one PoolAllocator per power-of-two size class from
// 16 B to 4 KiB, each block aligned to its class size (up to the page), so a
// request of n bytes takes one O(1) block of the smallest class that holds it.
// A class's pool is made on its first use. As one Allocator (kind "pool"), it
// stands behind what MemoryInterface.getAllocator("pool") returns (a guard:
// pool(i) and pools() are not reachable from there); the interface itself
// goes straight to the class pool.
import { intrinsic } from "../../ffi/boundary.ts";
import { native } from "../../ffi/native.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { zeroStats } from "../alloc/_zero_stats.ts";
import { LeaseTable, registerLeases, withLeaseTable } from "../alloc/_lease.ts";
import { PoolAllocator } from "../alloc/pool_allocator.ts";
import { checkView, describe, lengthOf, viewBytes } from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { byteCount, checkAlignment, checkSize } from "./_words.ts";

/** The smallest and largest class, in bytes. */
export const SMALLEST_CLASS = 16;
export const LARGEST_CLASS = 4096;
const CLASSES = Math.log2(LARGEST_CLASS / SMALLEST_CLASS) + 1;

/** The class index for `size` bytes at alignment `align` (both ≥ 1), or -1 when no class holds it. */
export function classOf(size: number, align: number): number {
  const need = size > align ? size : align;
  if (need > LARGEST_CLASS) return -1;
  if (need <= SMALLEST_CLASS) return 0;
  return 32 - Math.clz32(need - 1) - 4; // log2 of the next power of two, minus log2(16)
}

/** Size-class pools as one allocator. */
export class SizeClassPools implements Allocator, Disposable {
  /** Always `"pool"`. */
  readonly kind = "pool" as const;
  readonly #pools: (PoolAllocator | undefined)[] = new Array(CLASSES).fill(undefined);
  readonly #backing: Allocator | undefined;
  // One lease table for every class pool: chains and DebugAllocators over these pools (or over the guard
  // MemoryInterface.getAllocator("pool") gives) hear of a release by any class pool.
  readonly #leases = new LeaseTable();
  #ended = false;

  constructor(backing?: Allocator) {
    this.#backing = backing;
    registerLeases(this, this.#leases);
  }

  /** The pool of class `index` (from {@linkcode classOf}), made on first use. */
  pool(index: number): PoolAllocator {
    let pool = this.#pools[index];
    if (pool === undefined) {
      if (this.#ended) throw this.#endedError("allocate");
      const blockSize = SMALLEST_CLASS << index;
      pool = withLeaseTable(this.#leases, () =>
        new PoolAllocator({
          blockSize,
          align: Math.min(blockSize, native.pageSize),
          ...(this.#backing === undefined ? {} : { backing: this.#backing }),
        }));
      this.#pools[index] = pool;
    }
    return pool;
  }

  /** Whether the pool of class `index` is made. */
  has(index: number): boolean {
    return this.#pools[index] !== undefined;
  }

  /**
   * Disposes the pool of class `index` when it holds no block: made for a block it could not give, it goes
   * again, so that a refused request leaves the pools as they were (see Backings.take).
   */
  drop(index: number): void {
    const pool = this.#pools[index];
    if (pool === undefined || pool.stats().liveAllocations !== 0) return;
    this.#pools[index] = undefined;
    pool.dispose();
  }

  /** The pools made so far. */
  pools(): PoolAllocator[] {
    return this.#pools.filter((p): p is PoolAllocator => p !== undefined);
  }

  /**
   * A block from the smallest class that holds `size` bytes at `align`.
   * @throws {RangeError} When the size or alignment needs more than the largest class (4096 B).
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    return this.pool(this.#classFor(size, align, "allocate")).alloc(size);
  }

  /** Like {@linkcode SizeClassPools.alloc}, but `null` when the class pool cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    return this.pool(this.#classFor(size, align, "allocate")).tryAlloc(size);
  }

  /** A typed array of `length` elements in one block. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  /** Returns a block to its class pool. */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    this.#holder(view, "free").free(view);
  }

  /** A block keeps its place while `newSize` fits its class; otherwise it moves to a larger (or smaller) class. */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const holder = this.#holder(view, "resize");
    if (newSize <= holder.blockSize) return holder.resize(view, newSize);
    const index = this.#classFor(newSize, undefined, "resize");
    const fresh = this.pool(index).alloc(newSize);
    intrinsic.set(fresh, viewBytes(view, "resize")); // the engine's own set, whatever is patched
    holder.free(view);
    return fresh;
  }

  /** Whether any class pool holds `view` in a live block. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    for (const pool of this.#pools) if (pool !== undefined && pool.owns(view)) return true;
    return false;
  }

  /** The sums over the class pools (`peakBytes` is the sum of each class's peak). */
  stats(): AllocatorStats {
    const total = zeroStats("pool");
    for (const pool of this.#pools) {
      if (pool === undefined) continue;
      const s = pool.stats();
      total.capacityBytes += s.capacityBytes;
      total.allocatedBytes += s.allocatedBytes;
      total.availableBytes += s.availableBytes;
      total.peakBytes += s.peakBytes;
      total.liveAllocations += s.liveAllocations;
      total.totalAllocations += s.totalAllocations;
      total.totalFrees += s.totalFrees;
      total.failedAllocations += s.failedAllocations;
      total.overheadBytes += s.overheadBytes;
      if (s.largestFreeBlock > total.largestFreeBlock) total.largestFreeBlock = s.largestFreeBlock;
    }
    return total;
  }

  /** Disposes every class pool (their views read as length 0); later calls throw "use-after-free". */
  dispose(): void {
    this.#ended = true;
    for (const pool of this.#pools) pool?.dispose();
  }

  /** Same as {@linkcode SizeClassPools.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #classFor(size: number, align: number | undefined, op: string): number {
    checkSize(size, op, op === "resize" ? "newSize" : "size");
    const a = checkAlignment(align, op, native.pageSize, SMALLEST_CLASS);
    const index = classOf(size, a);
    if (index < 0) {
      throw new RangeError(
        `Cannot ${op} as the pool's size classes end at ${LARGEST_CLASS} bytes: current value is ` +
          `${byteCount(size)} at alignment ${a}`,
      );
    }
    if (this.#ended) throw this.#endedError(op);
    return index;
  }

  // The class pool a view belongs to: the class its length suggests, else whichever owns it.
  #holder(view: ArrayBufferView, op: string): PoolAllocator {
    if (this.#ended) throw this.#endedError(op);
    const guess = this.#pools[classOf(Math.max(1, lengthOf(view)), 1)];
    if (guess !== undefined && guess.owns(view)) return guess;
    for (const pool of this.#pools) if (pool !== undefined && pool.owns(view)) return pool;
    // None holds it live: the guessed (or first) pool names the error (double, foreign, interior).
    const named = guess ?? this.#pools.find((p) => p !== undefined);
    if (named === undefined) {
      throw new AllocationError("invalid-free", `Cannot ${op} ${describe(view)}: it was not allocated by these pools`);
    }
    return named;
  }

  #endedError(op: string): AllocationError {
    return new AllocationError("use-after-free", `Cannot ${op}: the size-class pools were disposed`);
  }
}
