/**
 * The interface every memkit allocator implements, and its statistics.
 *
 * @module
 */

/**
 * Which allocator this is.
 *
 * @example
 * ```ts
 * import { type AllocatorKind, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const kind: AllocatorKind = new SystemAllocator().kind;
 * assert.equal(kind, "system");
 * ```
 */
export type AllocatorKind = "system" | "arena" | "stack" | "pool" | "buddy" | "free-list" | "debug";

/**
 * Any typed array.
 *
 * @example
 * ```ts
 * import { SystemAllocator, type TypedArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const allocator = new SystemAllocator();
 * const arrays: TypedArray[] = [allocator.array(Int16Array, 4), allocator.array(Float64Array, 4)];
 * assert.equal(arrays[1].byteLength, 32);
 * for (const array of arrays) allocator.free(array);
 * ```
 */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * A typed array constructor, as passed to {@linkcode Allocator.array}.
 *
 * @example
 * ```ts
 * import { SystemAllocator, type TypedArrayConstructor } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const ctor: TypedArrayConstructor<Uint32Array> = Uint32Array;
 * const allocator = new SystemAllocator();
 * const words = allocator.array(ctor, 8);
 * assert.equal(words.length, 8);
 * allocator.free(words);
 * ```
 */
export interface TypedArrayConstructor<T extends TypedArray> {
  /** A view of `length` elements over `buffer` from `byteOffset`. */
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  /** Size of one element in bytes. */
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * Counters every allocator reports. Byte counts are of live blocks as
 * requested; `fragmentation` is `1 - sqrt(Σ fᵢ²) / Σ fᵢ` over the free blocks
 * `fᵢ` (0 when free space is one block or none, towards 1 when it is scattered).
 * @example
 * ```ts
 * import { SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const allocator = new SystemAllocator();
 * const block = allocator.alloc(1000);
 * const stats = allocator.stats();
 * assert.equal(stats.allocatedBytes, 1000);
 * assert.equal(stats.liveAllocations, 1);
 * assert.equal(stats.totalAllocations - stats.totalFrees, stats.liveAllocations);
 * allocator.free(block);
 * ```
 */
export interface AllocatorStats {
  /** Which allocator this is. */
  kind: AllocatorKind;
  /** Bytes this allocator holds from its backing (OS, libc or another allocator). */
  capacityBytes: number;
  /** Bytes in live blocks, as requested. */
  allocatedBytes: number;
  /** Bytes it can still hand out without asking its backing for more. */
  availableBytes: number;
  /** Highest `allocatedBytes` seen. */
  peakBytes: number;
  /** Blocks allocated and not yet freed. */
  liveAllocations: number;
  /** Blocks ever allocated (zero-size ones excluded). */
  totalAllocations: number;
  /** Blocks ever freed. */
  totalFrees: number;
  /** Allocations that failed for lack of memory or a limit. */
  failedAllocations: number;
  /** Largest block it could hand out now without asking its backing. */
  largestFreeBlock: number;
  /** 0..1, see above. */
  fragmentation: number;
  /** Bytes held beyond what was requested: headers, rounding, alignment padding. */
  overheadBytes: number;
}

/**
 * The allocator interface. Blocks are `Uint8Array` views over native memory;
 * `free` and `resize` take any view whose first byte is the block's first byte.
 * Default alignment is 16; alignments are powers of two up to the page size.
 *
 * Size 0 is not a block: `alloc(0)` returns an empty view that holds no
 * memory and no state. `free` accepts any empty view (once or many times:
 * there is nothing to release twice), `resize` of one is `alloc(newSize)`
 * with the default alignment (pass the alignment to `alloc` instead to keep
 * a stricter one), `owns` says false, and the stats do not count it.
 *
 * After an allocator's `dispose()`, `owns` says false and `stats()` gives its
 * final counters (so a report after teardown still works); every other call
 * throws `AllocationError("use-after-free")`.
 * @example
 * ```ts
 * import { type Allocator, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * // Code written against the interface works with every memkit allocator.
 * function duplicate(allocator: Allocator, source: Uint8Array): Uint8Array {
 *   const copy = allocator.alloc(source.length);
 *   copy.set(source);
 *   return copy;
 * }
 *
 * const allocator = new SystemAllocator();
 * const copy = duplicate(allocator, new Uint8Array([1, 2, 3]));
 * assert.ok(allocator.owns(copy));
 * allocator.free(copy);
 * ```
 */
export interface Allocator {
  /** Which allocator this is. */
  readonly kind: AllocatorKind;
  /** A block of `size` bytes; throws `AllocationError` ("out-of-memory", "limit-exceeded") when it cannot. */
  alloc(size: number, align?: number): Uint8Array;
  /** Like `alloc`, but `null` instead of an out-of-memory or limit error. */
  tryAlloc(size: number, align?: number): Uint8Array | null;
  /** A typed array of `length` elements in a new block. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T;
  /** Returns a block; its views are detached where the allocator can. */
  free(view: ArrayBufferView): void;
  /** Grows or shrinks a block, keeping its contents; may move it (use only the returned view). */
  resize(view: ArrayBufferView, newSize: number): Uint8Array;
  /** Whether the view points into a live block of this allocator. */
  owns(view: ArrayBufferView): boolean;
  /** A snapshot of the counters. */
  stats(): AllocatorStats;
}

/**
 * An Allocator of memkit's own (never a user's JavaScript one), whose blocks
 * are always views over native memory in ArrayBuffers: the narrower type the
 * public classes return, so their blocks go wherever a BufferSource goes.
 * Internal: not exported from mod.ts.
 */
export interface NativeAllocator extends Allocator {
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer>;
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null;
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer>;
}
