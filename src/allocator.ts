/**
 * The interface every memkit allocator implements, and its statistics.
 *
 * @module
 */

/** Which allocator this is. */
export type AllocatorKind = "system" | "arena" | "stack" | "pool" | "buddy" | "free-list" | "debug";

/** Any typed array. */
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

/** A typed array constructor, as passed to {@linkcode Allocator.array}. */
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
