/**
 * The public shapes of {@linkcode FreeListAllocator}: options, relocatable
 * handles and the defragmentation report.
 *
 * @module
 */
import type { Allocator } from "../base/allocator.ts";

/**
 * Options of {@linkcode FreeListAllocator}.
 *
 * @example
 * ```ts
 * import { FreeListAllocator, type FreeListAllocatorOptions } from "@memkit/memkit";
 *
 * const options: FreeListAllocatorOptions = { capacity: 1 << 20, growth: "fixed" };
 * const heap = new FreeListAllocator(options);
 * heap.dispose();
 * ```
 */
export interface FreeListAllocatorOptions {
  /** Bytes of the first chunk (rounded up to whole pages). @default {1048576} */
  capacity?: number;
  /** `"fixed"`: one chunk; `"linear"`: add `capacity`; `"exponential"`: double the last chunk. @default {"exponential"} */
  growth?: "fixed" | "linear" | "exponential";
  /** Upper bound on bytes held; beyond it allocation fails with "limit-exceeded". @default {2 ** 47} */
  maxCapacity?: number;
  /** Where chunks come from. @default {a shared SystemAllocator} */
  backing?: Allocator;
}

/**
 * A relocatable block from {@linkcode FreeListAllocator.handle}: read
 * `bytes` each time you need the memory, because `defragment()` may move an
 * unpinned handle (its old views are then detached). `pin()` keeps it in place.
 *
 * @example
 * ```ts
 * import { FreeListAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using heap = new FreeListAllocator();
 * const handle = heap.handle(64);
 * handle.bytes[0] = 7;
 * heap.defragment();
 * assert.equal(handle.bytes[0], 7); // wherever it lives now
 * handle.free();
 * ```
 */
export interface Handle {
  /** The block's bytes, at its current place. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Size in bytes. */
  readonly size: number;
  /** Whether `defragment()` must leave it in place. */
  readonly pinned: boolean;
  /** Whether it has been freed. */
  readonly freed: boolean;
  /** Keeps the block in place until a matching `unpin()` (pins nest). */
  pin(): void;
  /** Undoes one `pin()`. */
  unpin(): void;
  /** Frees the block; its views are detached. */
  free(): void;
}

/**
 * What {@linkcode FreeListAllocator.defragment} did.
 *
 * @example
 * ```ts
 * import { FreeListAllocator, type DefragReport } from "@memkit/memkit";
 *
 * using heap = new FreeListAllocator();
 * const report: DefragReport = heap.defragment();
 * console.log(`${report.movedBytes} bytes moved`);
 * ```
 */
export interface DefragReport {
  /** Bytes copied. */
  movedBytes: number;
  /** Handles moved. */
  movedBlocks: number;
  /** The fragmentation metric before compaction. */
  fragmentationBefore: number;
  /** The fragmentation metric after compaction. */
  fragmentationAfter: number;
  /** Largest free block before compaction. */
  largestFreeBlockBefore: number;
  /** Largest free block after compaction. */
  largestFreeBlockAfter: number;
  /** Wall time of the compaction. */
  durationMs: number;
}
