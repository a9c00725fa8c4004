/**
 * Placement without memory: memkit's TLSF heap or a linear (arena) cursor
 * managing offsets in a range it does not own, like VMA's virtual blocks. It
 * hands out `{ offset, size }` records; what lives at those offsets (a
 * GPUBuffer's bytes, a file's, another process's) is the caller's.
 *
 * @module
 */
import { checkAlignment, checkSize, describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { Chunk } from "../alloc/_chunks.ts";
import { TlsfHeap } from "../alloc/_tlsf_heap.ts";

/** How a {@linkcode VirtualAllocator} places blocks. */
export type VirtualStrategy = "tlsf" | "linear";

/**
 * Options of {@linkcode VirtualAllocator}.
 *
 * @example
 * ```ts
 * import type { VirtualAllocatorOptions } from "@memkit/memkit";
 *
 * const options: VirtualAllocatorOptions = { capacity: 64 << 20, strategy: "tlsf" };
 * ```
 */
export interface VirtualAllocatorOptions {
  /** Bytes of the range managed (offsets 0..capacity). */
  capacity: number;
  /** "tlsf" (the default): any order, O(1), coalescing; "linear": a bump cursor, freed all at once by reset(). */
  strategy?: VirtualStrategy;
}

/**
 * A placed block: `size` bytes at `offset` of the range.
 *
 * @example
 * ```ts
 * import { type VirtualAllocation, VirtualAllocator } from "@memkit/memkit";
 *
 * const range = new VirtualAllocator({ capacity: 4096 });
 * const block: VirtualAllocation | null = range.allocate(100, 256);
 * console.log(block?.offset); // 0
 * ```
 */
export interface VirtualAllocation {
  /** Where the block starts (a multiple of the alignment asked for). */
  readonly offset: number;
  /** The bytes asked for. */
  readonly size: number;
}

/**
 * What a {@linkcode VirtualAllocator} has placed.
 *
 * @example
 * ```ts
 * import { VirtualAllocator } from "@memkit/memkit";
 *
 * const range = new VirtualAllocator({ capacity: 4096 });
 * range.allocate(1000);
 * const { allocatedBytes, largestFreeBlock } = range.stats();
 * console.log(allocatedBytes, largestFreeBlock); // 1008 3088 (blocks take whole 16-byte granules)
 * ```
 */
export interface VirtualAllocatorStats {
  /** The range's size. */
  capacity: number;
  /** Bytes taken by live blocks (granules and alignment gaps included). */
  allocatedBytes: number;
  /** Live blocks. */
  allocations: number;
  /** The largest block one more allocation could get (alignment 16). */
  largestFreeBlock: number;
  /** 0 when the free space is one block, towards 1 as it splits into many small ones. */
  fragmentation: number;
}

const optionsSchema = z.strictObject({
  capacity: z.number().int("must be an integer").min(16, "must be at least 16").max(2 ** 47, "must be at most 2^47"),
  strategy: z.enum(["tlsf", "linear"]).optional(),
});

// What each live block is, privately: the TLSF record id (or -1 for a linear block) and its end.
interface Placement {
  id: number;
  end: number;
  /** A linear block: the cursor before it (where freeing the newest block rolls back to). */
  before: number;
}

/**
 * Manages offsets in a range it does not own: memkit's TLSF heap (the
 * FreeListAllocator's placement, without its memory) or a linear cursor.
 * Used by {@linkcode GpuSuballocator} to place many small buffers inside a
 * few large GPUBuffers. `allocate` returns null when nothing fits.
 *
 * @example
 * ```ts
 * import { VirtualAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const range = new VirtualAllocator({ capacity: 1 << 20 });
 * const a = range.allocate(1000, 256)!;
 * const b = range.allocate(5000, 256)!;
 * assert.equal(b.offset % 256, 0);
 * assert.ok(b.offset >= a.offset + 1000);
 * range.free(a);
 * range.free(b);
 * assert.equal(range.stats().largestFreeBlock, 1 << 20); // merged back into one
 * ```
 */
export class VirtualAllocator {
  /** The range's size. */
  readonly capacity: number;
  /** How blocks are placed. */
  readonly strategy: VirtualStrategy;
  readonly #heap: TlsfHeap | null;
  readonly #live = new Map<VirtualAllocation, Placement>();
  readonly #freed = new WeakSet<VirtualAllocation>();
  #cursor = 0;
  #allocated = 0;
  #last: VirtualAllocation | null = null;

  /**
   * Manages offsets 0..capacity.
   *
   * @throws {TypeError} For options of the wrong type.
   * @throws {RangeError} For a capacity below 16 or above 2^47.
   */
  constructor(options: VirtualAllocatorOptions) {
    const parsed = parseOptions(optionsSchema, options, "create VirtualAllocator");
    this.capacity = parsed.capacity;
    this.strategy = parsed.strategy ?? "tlsf";
    if (this.strategy === "tlsf") {
      this.#heap = new TlsfHeap();
      // The heap places blocks in chunks; this one is only a range: no memory, no buffer over it.
      const range: Chunk = {
        block: new Uint8Array(0),
        address: 0,
        size: Math.floor(this.capacity / 16) * 16,
        buffer: new ArrayBuffer(0),
        wrapped: false,
        lease: null,
      } as Chunk;
      this.#heap.addChunk(range);
    } else {
      this.#heap = null;
    }
  }

  /**
   * Places `size` bytes at an offset that is a multiple of `alignment`
   * (default 16); null when no free block fits.
   *
   * @throws {TypeError} For a size or alignment that is not a number.
   * @throws {RangeError} For a size below 1 or above the capacity, or an alignment that is not a power of two up to the capacity.
   */
  allocate(size: number, alignment?: number): VirtualAllocation | null {
    const op = "allocate from VirtualAllocator";
    checkSize(size, op, "size", this.capacity, 1);
    const align = Math.max(16, checkAlignment(alignment, op, 2 ** 30));
    let offset: number, end: number, id = -1;
    const before = this.#cursor;
    if (this.#heap !== null) {
      id = this.#heap.take(size, align, 0);
      if (id === -1) return null;
      const r = this.#heap.records;
      offset = r.start[id];
      end = offset + r.size[id];
    } else {
      offset = Math.ceil(this.#cursor / align) * align;
      end = offset + Math.ceil(size / 16) * 16;
      if (end > this.capacity) return null;
      this.#cursor = end;
    }
    const allocation: VirtualAllocation = Object.freeze({ offset, size });
    this.#live.set(allocation, { id, end, before });
    this.#allocated += end - offset;
    this.#last = allocation;
    return allocation;
  }

  /**
   * Frees a block. A linear allocator only rolls back its newest block (others
   * stay placed until {@linkcode reset}).
   *
   * @throws {AllocationError} "invalid-free" for a block this allocator did not place (or freed already and placed again elsewhere),
   *   "double-free" for a block freed twice.
   */
  free(allocation: VirtualAllocation): void {
    const placement = this.#live.get(allocation);
    if (placement === undefined) {
      const freed = typeof allocation === "object" && allocation !== null && this.#freed.has(allocation);
      throw new AllocationError(
        freed ? "double-free" : "invalid-free",
        `Cannot free from VirtualAllocator as ${
          freed ? "this block was freed already" : `${describe(allocation)} is not a block it placed`
        }`,
      );
    }
    this.#live.delete(allocation);
    this.#freed.add(allocation);
    if (this.#heap !== null) {
      this.#heap.release(placement.id);
      this.#allocated -= placement.end - allocation.offset;
    } else if (this.#last === allocation) {
      this.#cursor = placement.before;
      this.#allocated -= placement.end - allocation.offset;
    } else {
      // A linear block that is not the newest keeps its bytes until reset(); it no longer counts as live.
      this.#allocated -= placement.end - allocation.offset;
    }
    if (this.#last === allocation) this.#last = null;
  }

  /** Frees every block at once. */
  reset(): void {
    for (const [allocation, placement] of this.#live) {
      this.#freed.add(allocation);
      if (this.#heap !== null) this.#heap.release(placement.id);
    }
    this.#live.clear();
    this.#allocated = 0;
    this.#cursor = 0;
    this.#last = null;
    this.#heap?.flushQuick();
  }

  /** Whether `allocation` is a live block of this allocator. */
  owns(allocation: VirtualAllocation): boolean {
    return this.#live.has(allocation);
  }

  /** What is placed. */
  stats(): VirtualAllocatorStats {
    if (this.#heap !== null) {
      this.#heap.flushQuick(); // small freed blocks wait in quick lists: merge them so the summary sees the real free space
      const { largest, fragmentation } = this.#heap.freeSummary();
      return {
        capacity: this.capacity,
        allocatedBytes: this.#allocated,
        allocations: this.#live.size,
        largestFreeBlock: largest,
        fragmentation,
      };
    }
    return {
      capacity: this.capacity,
      allocatedBytes: this.#allocated,
      allocations: this.#live.size,
      largestFreeBlock: Math.max(0, this.capacity - Math.ceil(this.#cursor / 16) * 16),
      fragmentation: 0,
    };
  }
}
