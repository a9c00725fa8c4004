/**
 * Fixed-size blocks with O(1) allocation and free.
 *
 * @module
 */
import { createStamp } from "../base/_stamp.ts";
import { anyTaken, detach, isDetached, mayRelease, THEFT, transferredError } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { type Chunk, ChunkSource, roundToPage } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import { beginChange, endChange, ownLeaseTable, registerLeases, tellFreed } from "./_lease.ts";
import { Ledger } from "./_ledger.ts";
import { foreignBlockError, isEmptyView, registerOwner } from "./_ownership.ts";
import {
  bufferOf,
  checkAlignment,
  checkSize,
  checkTypedArrayConstructor,
  checkView,
  describe,
  integerIn,
  lengthOf,
  MAX_BLOCK_SIZE,
  offsetOf,
  parseOptions,
  powerOfTwo,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { type AllocatorDump, makeDump, type RawBlock } from "./dump.ts";

/**
 * Options of {@linkcode PoolAllocator}.
 *
 * @example
 * ```ts
 * import { PoolAllocator, type PoolAllocatorOptions } from "@memkit/memkit";
 *
 * const options: PoolAllocatorOptions = { blockSize: 64, blocksPerChunk: 1024, maxBlocks: 4096 };
 * const pool = new PoolAllocator(options);
 * pool.dispose();
 * ```
 */
export interface PoolAllocatorOptions {
  /** Bytes of every block (the largest `alloc` the pool serves). */
  blockSize: number;
  /**
   * Blocks per chunk taken from the backing. A chunk (this many blocks of `blockSize` rounded up to `align`) must
   * fit in one allocation: 2^47 bytes, or `nativeInfo().maxViewBytes` (4 GiB in Bun) if less.
   * @default {enough for 64 KiB, at least 16}
   */
  blocksPerChunk?: number;
  /** Upper bound on blocks; beyond it allocation fails with "limit-exceeded". @default {unbounded} */
  maxBlocks?: number;
  /** Alignment of every block, a power of two up to the page size. @default {16} */
  align?: number;
  /** Where chunks come from. @default {a shared SystemAllocator} */
  backing?: Allocator;
  /**
   * Give each block its own ArrayBuffer and detach it on `free`, so a freed
   * block's views read as length 0 (the same option as the DebugAllocator's).
   * Costs one ArrayBuffer wrap (~0.5–1 µs) per allocation. @default {false}
   */
  detachFreed?: boolean;
}

// With detachFreed, each block's ArrayBuffer carries its pool and index (a
// property, not a Map: see _offset_table.ts on Map churn).
const BLOCK_TAGS = createStamp<BlockTag>(); // a private slot: no caller can edit a tag

interface BlockTag {
  readonly pool: PoolAllocator;
  readonly index: number;
}

function blockTag(buffer: ArrayBufferLike): BlockTag | undefined {
  return BLOCK_TAGS.get(buffer);
}

const OptionsSchema = z.object({
  blockSize: integerIn(1, MAX_BLOCK_SIZE),
  blocksPerChunk: integerIn(1, 2 ** 24).optional(),
  maxBlocks: integerIn(1, 2 ** 31).optional(),
  align: z.unknown().optional(), // checked once the page size is known, in the constructor
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
  detachFreed: z.boolean().optional(),
}).strict();

/**
 * Refuses a pool whose chunk (`perChunk` blocks of `stride` bytes, whole pages) no allocation can give: it would
 * be accepted and fail every alloc. A chunk is one block of the backing (at most MAX_BLOCK_SIZE) viewed by one
 * ArrayBuffer (at most `maxViewBytes`: 4 GiB in Bun).
 */
function checkChunkFits(perChunk: number, stride: number, align: number, defaulted: boolean): void {
  const limit = Math.min(MAX_BLOCK_SIZE, native.maxViewBytes);
  const chunk = roundToPage(perChunk * stride);
  if (chunk <= limit) return;
  const what = limit === MAX_BLOCK_SIZE
    ? "2^47, the largest block any allocator gives"
    : "what one ArrayBuffer holds in this runtime, nativeInfo().maxViewBytes";
  const fix = roundToPage(stride) > limit
    ? "lower 'blockSize'"
    : `lower 'blockSize' or 'blocksPerChunk'${defaulted ? ` (${perChunk} by default for this block size)` : ""}`;
  throw new RangeError(
    `Cannot create PoolAllocator as its chunk, ${perChunk} block${perChunk === 1 ? "" : "s"} of ${stride} bytes ` +
      `('blockSize' rounded up to the alignment ${align}), must be at most ${limit} bytes (${what}); ${fix}: ` +
      `current value is ${chunk} bytes`,
  );
}

// The memory interface's pool fast path (src/hal), not part of the API: a block
// taken with its slot index, and given back by that index, skipping what
// `tryAlloc` and `free` check again (the interface has checked the size and
// keeps the index in its record). Set in the class's static block, where the
// private fields are in reach.
/** The slot index of the block `takeBlock` returned last. */
export let takenSlot = -1;

/**
 * A block for `size` (an integer from 1 to the block size, checked by the
 * caller) from a free block of a pool without per-block buffers, its index in
 * `takenSlot`; null when the pool needs its slow path (`tryAlloc`).
 */
export let takeBlock: (pool: PoolAllocator, size: number) => Uint8Array<ArrayBuffer> | null;
/**
 * Frees the live block at `index` (`view`, the view `takeBlock` gave for it), as `free`'s fast path does;
 * false (nothing done) when the pool has ended, has leases or that block is free (`free(view)` then does it
 * all, refusals included).
 * @throws {AllocationError} "corruption" (the pool ends, the block stays taken) when the block's buffer was
 *   transferred away, as `free` of it does.
 */
export let freeSlot: (pool: PoolAllocator, index: number, view: Uint8Array<ArrayBuffer>) => boolean;

/**
 * Hands out blocks of one size from chunks of many, in O(1): a free list of
 * block indices, no search, no splitting. Grows by a chunk when empty, up to
 * `maxBlocks`. A block's state is tracked, so a double free, an interior or
 * foreign view, and a block of another pool are all reported.
 *
 * Blocks are views over their chunk's ArrayBuffer; chunks are detached before
 * they go back (`dispose()`). A freed block's views stay readable and see the
 * block's next user unless `detachFreed` gives each block its own ArrayBuffer.
 *
 * @example
 * ```ts
 * import { PoolAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const particles = new PoolAllocator({ blockSize: 32, maxBlocks: 10_000 });
 * const p = particles.array(Float32Array, 8); // 8 floats = 32 bytes
 * p[0] = 1.5;
 * particles.free(p);
 * assert.equal(particles.stats().liveAllocations, 0);
 * particles.dispose();
 * ```
 */
export class PoolAllocator implements Allocator, Disposable {
  /** Always `"pool"`. */
  readonly kind = "pool" as const;
  readonly #leases = ownLeaseTable();
  readonly #ledger = new Ledger("pool", "PoolAllocator");
  readonly #source: ChunkSource;
  readonly #blockSize: number;
  readonly #stride: number;
  readonly #align: number;
  readonly #perChunk: number;
  readonly #maxBlocks: number;
  readonly #detach: boolean;
  /**
   * Whether the fast paths of alloc and free (and the interface's takeBlock) are closed: with `detachFreed`, and
   * while the pool tells the holder of a block it frees, when it is busy (see #release), which only the general
   * paths test. (One flag the fast paths test anyway: closing them costs them nothing.)
   */
  #slow: boolean;
  readonly #chunks: Chunk[] = [];
  readonly #chunkOf = new Map<ArrayBuffer, number>();
  // Block i lives in chunk floor(i / perChunk) at slot i % perChunk.
  // Per block: requested size (0 = free). Free blocks' indices on a stack.
  // Invariant: #sizes[i] === 0 exactly for the indices in #free[0, #freeCount).
  #sizes = new Float64Array(0);
  #free = new Int32Array(0);
  #freeCount = 0;
  // With detachFreed: each live block's own buffer, by block index.
  readonly #bufferOfBlock: (ArrayBuffer | undefined)[] = [];
  // The chunk `free` looked up last, so a run of frees skips the Map.
  #hotBuffer: ArrayBuffer | null = null;
  #hotChunk = 0;

  static {
    takeBlock = (pool: PoolAllocator, size: number): Uint8Array<ArrayBuffer> | null => {
      if (pool.#freeCount === 0 || pool.#slow) return null;
      const peak = pool.#ledger.peakBytes;
      const index = pool.#take(size);
      const chunk = (index / pool.#perChunk) | 0;
      try {
        const view = new Uint8Array(pool.#chunks[chunk].buffer, (index - chunk * pool.#perChunk) * pool.#stride, size);
        takenSlot = index;
        return view;
      } catch (error) {
        pool.#untake(index, peak);
        pool.#transferred(error, "allocate");
      }
    };
    // A block has at least one byte, so a view of length 0 in a pool that has not ended means its chunk's
    // buffer was transferred away: that block's free throws "corruption" and ends the pool (freeing the slot
    // would say nothing and leave the pool running on a chunk another buffer reaches).
    freeSlot = (pool, index, view) => {
      if (pool.#leases.leased !== 0 || pool.#ledger.ended !== null || pool.#sizes[index] === 0) return false;
      if (view.length === 0) {
        pool.#theftFound("free");
        return false;
      }
      pool.#ledger.freed(pool.#sizes[index]);
      pool.#sizes[index] = 0;
      pool.#free[pool.#freeCount++] = index;
      return true;
    };
  }

  /**
   * Creates a pool; the first chunk is taken on the first allocation.
   *
   * @param options Block size, chunking, limit, alignment, backing, detachFreed.
   * @throws {TypeError} For missing or mistyped options.
   * @throws {RangeError} For out-of-range sizes, an alignment that is not a power of two up to the page size, or a
   *   chunk (`blocksPerChunk` blocks of `blockSize` rounded up to the alignment) larger than any allocation can be:
   *   2^47 bytes, or what one ArrayBuffer holds in the runtime (`nativeInfo().maxViewBytes`) if less.
   */
  constructor(options: PoolAllocatorOptions) {
    registerLeases(this, this.#leases);
    const parsed = parseOptions(OptionsSchema, options, "create PoolAllocator");
    this.#align = parseOptions(
      z.object({ align: powerOfTwo(native.pageSize).optional() }),
      { align: parsed.align },
      "create PoolAllocator",
    )
      .align ?? 16;
    this.#blockSize = parsed.blockSize;
    this.#stride = Math.ceil(parsed.blockSize / this.#align) * this.#align;
    this.#perChunk = parsed.blocksPerChunk ?? Math.max(16, Math.floor((64 << 10) / this.#stride));
    checkChunkFits(this.#perChunk, this.#stride, this.#align, parsed.blocksPerChunk === undefined);
    this.#maxBlocks = parsed.maxBlocks ?? 2 ** 31;
    this.#source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "PoolAllocator",
      this.#ledger,
      (reason, partial) => this.#revoke(reason, partial),
    );
    this.#detach = parsed.detachFreed ?? false;
    this.#slow = this.#detach;
    registerOwner(this, "pool", PoolAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const pool = owner as PoolAllocator;
    return pool.#chunkOf.has(buffer as ArrayBuffer) || blockTag(buffer)?.pool === pool;
  }

  /** Bytes of every block. */
  get blockSize(): number {
    return this.#blockSize;
  }

  /**
   * A block for up to `blockSize` bytes (the view has `size` bytes).
   * @throws {RangeError} When `size` exceeds `blockSize` or `align` exceeds the pool's alignment.
   * @throws {AllocationError} "limit-exceeded" at `maxBlocks`, "out-of-memory" when the backing refuses a chunk.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode PoolAllocator.alloc}, but `null` when no block can be had. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    // Fast path: a free block, no per-block buffers, a plain size. Everything else below.
    if (
      this.#freeCount !== 0 && align === undefined && !this.#slow && size > 0 && size <= this.#blockSize &&
      Number.isInteger(size)
    ) {
      const peak = this.#ledger.peakBytes;
      const index = this.#take(size);
      const chunk = (index / this.#perChunk) | 0;
      try {
        return new Uint8Array(this.#chunks[chunk].buffer, (index - chunk * this.#perChunk) * this.#stride, size);
      } catch (error) {
        this.#untake(index, peak);
        this.#transferred(error, "allocate");
      }
    }
    if (!Number.isInteger(size) || size < 0 || size > this.#blockSize) this.#checkFits(size, "allocate");
    if (align !== undefined && align !== this.#align) this.#checkAlign(align, "allocate");
    this.#ledger.guard("allocate");
    if (size === 0) return new Uint8Array(0);
    const peak = this.#ledger.peakBytes;
    const index = this.#take(size);
    if (index < 0) return null;
    try {
      return new Uint8Array(this.#bufferFor(index), this.#offsetIn(index), size);
    } catch (error) {
      this.#untake(index, peak);
      this.#transferred(error, "allocate");
    }
  }

  /** A typed array of `length` elements in one block. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
    checkSize(length, "allocate an array", "length", Math.floor(this.#blockSize / bytesPerElement));
    if (align !== undefined && align !== this.#align) this.#checkAlign(align, "allocate an array");
    if (bytesPerElement > this.#align) {
      throw new RangeError(
        `Cannot allocate an array as its elements (${bytesPerElement} bytes) need more than the pool's alignment ` +
          `${this.#align}: current value is ${describe(ctor)}`,
      );
    }
    this.#ledger.guard("allocate");
    const size = length * bytesPerElement;
    if (size === 0) return new ctor(new ArrayBuffer(0), 0, 0);
    const peak = this.#ledger.peakBytes;
    const index = this.#take(size);
    if (index < 0) throw this.#ledger.failure(size);
    try {
      return new ctor(this.#bufferFor(index), this.#offsetIn(index), length);
    } catch (error) {
      this.#untake(index, peak);
      this.#transferred(error, "allocate");
    }
  }

  /**
   * Returns a block to the pool in O(1).
   * @throws {AllocationError} "double-free", "invalid-free" (interior or foreign view), "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    // Fast path: a view over the most recently used chunk, at a block start, no lease.
    if (!this.#slow && ArrayBuffer.isView(view) && bufferOf(view) === this.#hotBuffer && this.#leases.leased === 0) {
      // (A view of a chunk buffer transferred away reads offset 0 and may free
      // slot 0: no view over that buffer can be made again, so the next
      // allocation from it ends the pool, and dispose keeps that chunk.)
      const offset = offsetOf(view);
      const slot = (offset / this.#stride) | 0;
      const index = this.#hotChunk * this.#perChunk + slot;
      // (An empty view at a block's end starts where the next block does: it names no block.)
      if (slot * this.#stride === offset && slot < this.#perChunk && this.#sizes[index] !== 0 && lengthOf(view) !== 0) {
        this.#ledger.freed(this.#sizes[index]);
        this.#sizes[index] = 0;
        this.#free[this.#freeCount++] = index;
        return;
      }
    }
    const index = this.#indexOf(view, "free");
    if (index < 0) return;
    if (!this.#release(index, "PoolAllocator.free() released it")) {
      throw transferredError("free", `the block ${describe(view)} names`);
    }
  }

  /**
   * A block keeps its place: any size up to `blockSize` is a new view of the same block; 0 frees it.
   * @throws {RangeError} When `newSize` exceeds `blockSize`.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    if (!Number.isInteger(newSize) || newSize < 0 || newSize > this.#blockSize) this.#checkFits(newSize, "resize");
    const index = this.#indexOf(view, "resize");
    if (index < 0) return this.alloc(newSize);
    if (newSize === 0) {
      if (!this.#release(index, "PoolAllocator.resize(view, 0) released it", "resize")) {
        throw transferredError("resize", `the block ${describe(view)} names`);
      }
      return new Uint8Array(0);
    }
    let resized: Uint8Array<ArrayBuffer>;
    try {
      resized = new Uint8Array(bufferOf(view) as ArrayBuffer, offsetOf(view), newSize); // first: a throw changes nothing
    } catch (error) {
      this.#transferred(error, "resize");
    }
    this.#ledger.resized(this.#sizes[index], newSize);
    this.#sizes[index] = newSize;
    return resized;
  }

  /** Whether `view` lies in a live block of this pool (within the block's requested size). */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.over) return false;
    const buffer = bufferOf(view) as ArrayBuffer;
    const tag = blockTag(buffer);
    if (tag !== undefined && tag.pool === this) {
      return !buffer.detached && offsetOf(view) < this.#sizes[tag.index];
    }
    const chunk = this.#chunkOf.get(buffer);
    if (chunk === undefined) return false;
    const slot = Math.floor(offsetOf(view) / this.#stride);
    if (slot >= this.#perChunk) return false;
    return offsetOf(view) - slot * this.#stride < this.#sizes[chunk * this.#perChunk + slot];
  }

  /** Counters. Every free block fits every request, so fragmentation is always 0. */
  stats(): AllocatorStats {
    const capacity = this.#chunks.reduce((sum, c) => sum + c.size, 0);
    const available = this.#freeCount * this.#blockSize;
    return this.#ledger.stats({
      capacityBytes: capacity,
      availableBytes: available,
      largestFreeBlock: this.#freeCount > 0 ? this.#blockSize : 0,
      // Padding to the alignment, the unused tails of blocks, page rounding.
      freeBlocks: 0,
    });
  }

  /**
   * The pool's chunks and blocks as a versioned JSON description: chunks and their blocks (offset,
   * size, free or used, owner). See {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    this.#ledger.guard("dump the PoolAllocator");
    return makeDump(
      this.stats(),
      this.#chunks.map((chunk, c) => {
        const blocks: RawBlock[] = [];
        for (let slot = 0; slot < this.#perChunk; slot++) {
          const requested = this.#sizes[c * this.#perChunk + slot];
          blocks.push({ offset: slot * this.#stride, size: this.#stride, free: !(requested > 0), requested });
        }
        return { address: chunk.address, size: chunk.size, blocks };
      }),
    );
  }

  /**
   * Returns every chunk to the backing; every view the pool handed out reads
   * as length 0 and every later call but `owns` and `stats` throws "use-after-free". A second call
   * does nothing.
   * @throws {AllocationError} When the backing refuses to take a chunk back (the backing's category: "invalid-free"
   * from a StackAllocator with a newer block on top of it), after everything else is done: the allocator is
   * disposed all the same, every view reads as length 0, every other chunk went back, and the refused ones stay
   * allocated in the backing, its own to free.
   */
  dispose(): void {
    this.#ledger.refuseWhileBusy("dispose"); // code its backing runs cannot end it halfway through a call
    if (!this.#ledger.end("was disposed")) return;
    this.#releaseLeases("PoolAllocator.dispose() released it");
    this.#teardown();
    this.#source.giveAll(false);
  }

  /** Same as {@linkcode PoolAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // The backing released a chunk (its reset, scope end, dispose): end here
  // too. On a theft the pool ends as "corruption" and keeps that memory.
  #revoke(reason: string | null, partial: boolean): void {
    if (!this.#ledger.lose(reason)) return;
    this.#releaseLeases(`the PoolAllocator lost its memory (${reason ?? THEFT})`);
    this.#teardown();
    if (partial) this.#source.giveAll(true);
    else this.#source.detachAll();
  }

  // A detached buffer where a live one was expected: when one of this
  // allocator's buffers was transferred away, it ends and throws "corruption".
  #theftFound(op: string): void {
    if (this.#source.anyTransferred()) this.#transferred(null, op);
  }

  // A view could not be made over one of this allocator's buffers because
  // someone transferred it away: the allocator ends (the memory another
  // buffer may reach is never freed) and says so. Any other error passes on.
  #transferred(error: unknown, op: string): never {
    if (!this.#source.anyTransferred()) throw error;
    this.#revoke(null, true);
    throw transferredError(op, "this PoolAllocator's memory");
  }

  // Undoes #take of a block whose view could not be made (`peak`: peakBytes before).
  #untake(index: number, peak: number): void {
    this.#ledger.retract(this.#sizes[index], peak);
    this.#sizes[index] = 0;
    this.#free[this.#freeCount++] = index;
  }

  // The pool ends: every lease on its memory ends. A table other pools share (the HAL's size-class pools)
  // keeps theirs: only the leases within this pool's chunks end.
  #releaseLeases(reason: string): void {
    if (!this.#leases.shared) {
      this.#leases.releasedAll(reason);
      return;
    }
    for (const chunk of this.#chunks) this.#leases.released(chunk.address, chunk.address + chunk.size, reason, false);
  }

  #teardown(): void {
    this.#hotBuffer = null;
    this.#bufferOfBlock.forEach((buffer, index) => {
      if (buffer !== undefined) detach(buffer, this.#addressOf(index), this.#blockSize);
    });
    this.#bufferOfBlock.length = 0;
    this.#ledger.freedAll();
    this.#freeCount = 0;
  }

  #offsetIn(index: number): number {
    return this.#detach ? 0 : (index % this.#perChunk) * this.#stride;
  }

  #bufferFor(index: number): ArrayBuffer {
    if (!this.#detach) return this.#chunks[(index / this.#perChunk) | 0].buffer;
    const chunk = this.#chunks[(index / this.#perChunk) | 0];
    // SAFETY: the block lies inside a chunk this pool holds; free and dispose detach this buffer first.
    const buffer = native.wrap(chunk.address + (index % this.#perChunk) * this.#stride, this.#blockSize);
    BLOCK_TAGS.set(buffer, { pool: this, index });
    this.#bufferOfBlock[index] = buffer;
    return buffer;
  }

  // Pops a free block (growing by a chunk if needed); -1 when none can be had.
  #take(size: number): number {
    if (this.#freeCount === 0 && !this.#grow()) return -1;
    const index = this.#free[--this.#freeCount];
    this.#sizes[index] = size;
    this.#ledger.allocated(size);
    return index;
  }

  // Frees a block; false, keeping it allocated for good, when the holder of a lease on it (a child
  // allocator, an array) found as it let go that a buffer over its memory was transferred away.
  // `op` is the public call, for its refusal when code the holder ran ended the pool.
  #release(index: number, reason: string, op = "free"): boolean {
    if (this.#leases.leased !== 0 || anyTaken()) return this.#releaseTold(index, reason, op);
    return this.#put(index);
  }

  // #release of a block a holder may lease, or a transferred buffer reach (off the hot path): the holder is told
  // first, the pool busy meanwhile (its fast paths closed), and what it gives back waits until the block is free
  // (see beginChange).
  #releaseTold(index: number, reason: string, op: string): boolean {
    const address = this.#addressOf(index), size = this.#blockSize;
    beginChange();
    try {
      if (this.#leases.leased !== 0) {
        this.#slow = true;
        try {
          tellFreed(this.#ledger, op, this.#leases, address, reason, size);
        } finally {
          this.#slow = this.#detach;
        }
      }
      return mayRelease(address, size) && this.#put(index);
    } finally {
      endChange();
    }
  }

  // Puts the used block `index` back on the free list (its views detached, with `detach`); true.
  #put(index: number): boolean {
    this.#ledger.freed(this.#sizes[index]);
    this.#sizes[index] = 0;
    this.#free[this.#freeCount++] = index;
    if (this.#detach) {
      const buffer = this.#bufferOfBlock[index]!;
      this.#bufferOfBlock[index] = undefined;
      detach(buffer, this.#addressOf(index), this.#blockSize);
    }
    return true;
  }

  #addressOf(index: number): number {
    return this.#chunks[(index / this.#perChunk) | 0].address + (index % this.#perChunk) * this.#stride;
  }

  #grow(): boolean {
    const blocks = this.#chunks.length * this.#perChunk;
    const count = Math.min(this.#perChunk, this.#maxBlocks - blocks);
    if (count <= 0) {
      this.#ledger.fail(
        "limit-exceeded",
        `the pool holds its maximum of ${this.#maxBlocks} block${this.#maxBlocks === 1 ? "" : "s"}`,
      );
      return false;
    }
    const chunk = this.#source.take(roundToPage(this.#perChunk * this.#stride));
    if (chunk === null) {
      this.#ledger.fail("out-of-memory", this.#source.refusal);
      return false;
    }
    this.#chunkOf.set(chunk.buffer, this.#chunks.length);
    this.#chunks.push(chunk);
    const total = blocks + this.#perChunk;
    const sizes = new Float64Array(total);
    sizes.set(this.#sizes);
    this.#sizes = sizes;
    const free = new Int32Array(total);
    free.set(this.#free.subarray(0, this.#freeCount));
    this.#free = free;
    // Lowest addresses first: pushed last so they are popped first.
    for (let i = count - 1; i >= 0; i--) this.#free[this.#freeCount++] = blocks + i;
    return true;
  }

  #checkFits(size: unknown, op: string): never {
    checkSize(size, op, op === "resize" ? "newSize" : "size");
    throw new RangeError(
      `Cannot ${op} as '${op === "resize" ? "newSize" : "size"}' must be at most the pool's block size ` +
        `${this.#blockSize}: current value is ${describe(size)}`,
    );
  }

  #checkAlign(align: unknown, op: string): void {
    const a = checkAlignment(align, op, native.pageSize);
    if (a > this.#align) {
      throw new RangeError(
        `Cannot ${op} as 'align' must be at most the pool's alignment ${this.#align}: current value is ${a}`,
      );
    }
  }

  // The block index `view` starts, -1 for an empty view; throws for anything else.
  #indexOf(view: ArrayBufferView, op: "free" | "resize"): number {
    checkView(view, op);
    this.#ledger.guard(op);
    if (isEmptyView(view)) return -1;
    const buffer = bufferOf(view) as ArrayBuffer;
    let index: number | undefined;
    if (this.#detach) {
      const tag = blockTag(buffer);
      if (tag !== undefined && tag.pool === this && buffer.detached && this.#bufferOfBlock[tag.index] === buffer) {
        // A live block's own buffer, detached by someone else: that block stays allocated for good.
        detach(buffer, this.#addressOf(tag.index), this.#blockSize); // records the memory
        throw transferredError(op, `block ${tag.index} of this PoolAllocator`);
      }
      index = tag !== undefined && tag.pool === this && !buffer.detached ? tag.index : undefined;
      if (index !== undefined && offsetOf(view) !== 0) index = -2;
    } else {
      const chunk = this.#chunkOf.get(buffer);
      // A view over a chunk's buffer that someone transferred away (its offset reads 0).
      if (chunk !== undefined && isDetached(buffer)) this.#theftFound(op);
      if (chunk !== undefined) {
        this.#hotBuffer = buffer;
        this.#hotChunk = chunk;
        const offset = offsetOf(view);
        const slot = Math.floor(offset / this.#stride);
        index = offset % this.#stride === 0 && slot < this.#perChunk ? chunk * this.#perChunk + slot : -2;
      }
    }
    if (index === undefined) throw foreignBlockError(view, op, this, "PoolAllocator");
    if (index === -2) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)} at offset ${offsetOf(view)}: it starts inside a block, not at its first byte`,
      );
    }
    if (this.#sizes[index] === 0) {
      throw new AllocationError(
        op === "free" ? "double-free" : "use-after-free",
        `Cannot ${op} ${describe(view)}: block ${index} is already free`,
      );
    }
    return index;
  }
}
