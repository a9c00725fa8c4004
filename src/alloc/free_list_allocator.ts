/**
 * A general-purpose allocator with O(1) allocation and free (TLSF), in-place
 * resize, and relocatable handles that `defragment()` compacts.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { typedArrayOf } from "./_typed_array_of.ts";
import { type Chunk, returnChunk, roundToPage, takeChunk } from "./_chunk.ts";
import { defaultBacking } from "./_default_backing.ts";
import { OffsetTable } from "./_offset_table.ts";
import { foreignBlockError, isEmptyView, registerOwner } from "./_ownership.ts";
import {
  checkAlignment,
  checkSize,
  checkView,
  describe,
  MAX_BLOCK_SIZE,
  parseOptions,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";

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
  readonly bytes: Uint8Array;
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

const OptionsSchema = z.object({
  capacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
  growth: z.enum(["fixed", "linear", "exponential"]).optional(),
  maxCapacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
}).strict();

// TLSF parameters: 16-byte granule, 16 second-level lists per power of two,
// sizes below 256 bytes mapped linearly.
const GRANULE = 16;
const SL_LOG2 = 4;
const SL_COUNT = 1 << SL_LOG2;
const SMALL = 256;
const FL_SHIFT = 8; // log2(SMALL)
const FL_COUNT = 48 - FL_SHIFT + 1;

const FREE = 1;
const USED = 2;
const HANDLE = 4;
/** A small freed block kept in a quick list: free, but not merged or listed yet. */
const CACHED = 8;
// Quick lists in front of TLSF (like a thread cache): up to QUICK_DEPTH freed
// blocks of each size below 256 bytes, reused by the next allocation of that
// exact size without splitting or merging. Flushed into the heap when an
// allocation would otherwise fail, and before defragment().
const QUICK_DEPTH = 64;

// Each handle's ArrayBuffer carries its handle here (a property, not a Map:
// see _offset_table.ts for why per-operation Map churn is avoided).
const HANDLE_KEY = Symbol("memkit.handle");

function handleOf(buffer: ArrayBufferLike): HandleImpl | undefined {
  return (buffer as unknown as Record<symbol, HandleImpl | undefined>)[HANDLE_KEY];
}

function log2Floor(n: number): number {
  if (n < 2 ** 31) return 31 - Math.clz32(n);
  return 63 - Math.clz32(Math.floor(n / 2 ** 32));
}

function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

class HandleImpl implements Handle {
  readonly owner: FreeListAllocator;
  readonly #hooks: HandleHooks;
  readonly id: number;
  view: Uint8Array | null = null;
  pins = 0;
  isFreed = false;

  constructor(owner: FreeListAllocator, hooks: HandleHooks, id: number) {
    this.owner = owner;
    this.#hooks = hooks;
    this.id = id;
  }

  get bytes(): Uint8Array {
    if (this.isFreed) throw new AllocationError("use-after-free", "Cannot read the bytes of a freed Handle");
    if (this.view === null || this.view.length === 0) this.view = this.#hooks.view(this);
    return this.view;
  }

  get size(): number {
    return this.#hooks.size(this);
  }

  get pinned(): boolean {
    return this.pins > 0;
  }

  get freed(): boolean {
    return this.isFreed;
  }

  pin(): void {
    if (this.isFreed) throw new AllocationError("use-after-free", "Cannot pin a freed Handle");
    this.pins++;
  }

  unpin(): void {
    if (this.isFreed) throw new AllocationError("use-after-free", "Cannot unpin a freed Handle");
    if (this.pins === 0) throw new RangeError("Cannot unpin as the Handle is not pinned: current pin count is 0");
    this.pins--;
  }

  free(): void {
    if (this.isFreed) throw new AllocationError("double-free", "Cannot free a Handle twice");
    this.#hooks.free(this);
  }
}

interface HandleHooks {
  view(handle: HandleImpl): Uint8Array;
  size(handle: HandleImpl): number;
  free(handle: HandleImpl): void;
}

interface HeapChunk {
  readonly chunk: Chunk;
  /** Used blocks by start offset. */
  readonly used: OffsetTable;
  first: number;
}

/**
 * A general-purpose allocator: any size, any order of frees, O(1) `alloc` and
 * `free` by Two-Level Segregated Fit (Masmano et al.): free blocks sit in
 * lists by size class, found through two bitmaps in constant time, and a free
 * block merges at once with free neighbours. In front of that, freed blocks
 * under 256 bytes wait in small per-size quick lists (up to 64 each) for the
 * next allocation of their size, skipping the split and merge; they are merged
 * into the heap when an allocation would otherwise fail and before
 * `defragment()`. `resize` grows in place into a free neighbour when it can. Block metadata lives in JS arrays, not next to
 * the blocks, so a write past a block cannot corrupt the heap's structure.
 *
 * Blocks from `alloc` stay where they are. Blocks from `handle()` are
 * relocatable: `defragment()` slides unpinned handles down into free space,
 * merging it into large blocks, and reports what it moved.
 *
 * @example
 * ```ts
 * import { FreeListAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using heap = new FreeListAllocator({ capacity: 1 << 20 });
 * const a = heap.alloc(100);
 * const b = heap.alloc(5000, 256);
 * heap.free(a); // any order
 * const bigger = heap.resize(b, 8000); // in place when the neighbour is free
 * assert.equal(bigger.length, 8000);
 * heap.free(bigger);
 * assert.equal(heap.stats().liveAllocations, 0);
 * ```
 */
export class FreeListAllocator implements Allocator {
  /** Always `"free-list"`. */
  readonly kind = "free-list" as const;
  readonly #backing: Allocator;
  readonly #growth: "fixed" | "linear" | "exponential";
  readonly #capacity: number;
  readonly #maxCapacity: number;
  readonly #chunks: HeapChunk[] = [];
  readonly #chunkOf = new Map<ArrayBuffer, number>();
  #disposed = false;
  #defragmenting = false;
  // The chunk the last free() looked up, so runs of frees skip the Map.
  #hotBuffer: ArrayBuffer | null = null;
  #hotIndex = 0;

  // Size-class index: first-level bitmap (two 32-bit words), second-level bitmaps, list heads.
  #flLow = 0;
  #flHigh = 0;
  readonly #slBitmap = new Uint32Array(FL_COUNT);
  readonly #heads = new Int32Array(FL_COUNT * SL_COUNT).fill(-1);
  readonly #quick = new Int32Array((SMALL / GRANULE) * QUICK_DEPTH);
  readonly #quickCount = new Int32Array(SMALL / GRANULE);
  #quickBlocks = 0;

  // Block records, by id.
  #start = new Float64Array(256);
  #size = new Float64Array(256);
  #requested = new Float64Array(256);
  #align = new Float64Array(256);
  #chunk = new Int32Array(256);
  #prevPhys = new Int32Array(256);
  #nextPhys = new Int32Array(256);
  #prevFree = new Int32Array(256);
  #nextFree = new Int32Array(256);
  #flags = new Uint8Array(256);
  #records = 0;
  readonly #spareIds: number[] = [];
  // Live handles by block id; each handle's buffer carries it under HANDLE_KEY.
  readonly #handles: (HandleImpl | undefined)[] = [];
  readonly #hooks: HandleHooks;

  #capacityBytes = 0;
  #freeBytes = 0;
  #allocatedBytes = 0;
  #peakBytes = 0;
  #live = 0;
  #totalAllocations = 0;
  #totalFrees = 0;
  #failedAllocations = 0;
  #lastFailure = "";
  #lastCategory: "out-of-memory" | "limit-exceeded" = "out-of-memory";

  /**
   * Creates the heap and takes its first chunk.
   *
   * @param options Capacity, growth, limit and backing.
   * @throws {TypeError} For mistyped options.
   * @throws {RangeError} For out-of-range sizes.
   * @throws {AllocationError} "out-of-memory" when the backing refuses the first chunk.
   */
  constructor(options: FreeListAllocatorOptions = {}) {
    const parsed = parseOptions(OptionsSchema, options, "create FreeListAllocator");
    this.#capacity = roundToPage(parsed.capacity ?? 1 << 20);
    this.#maxCapacity = parsed.maxCapacity ?? MAX_BLOCK_SIZE;
    if (this.#capacity > this.#maxCapacity) {
      throw new RangeError(
        `Cannot create FreeListAllocator as 'capacity' (${this.#capacity}) must not exceed 'maxCapacity': current ` +
          `value is ${this.#maxCapacity}`,
      );
    }
    this.#growth = parsed.growth ?? "exponential";
    this.#backing = parsed.backing ?? defaultBacking();
    this.#hooks = {
      view: (h) => this.#handleView(h),
      size: (h) => this.#requested[h.id],
      free: (h) => this.#freeHandle(h),
    };
    if (!this.#addChunk(this.#capacity)) {
      throw new AllocationError("out-of-memory", `Cannot create FreeListAllocator: no ${this.#capacity}-byte chunk`);
    }
    registerOwner(this, "free-list", FreeListAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const heap = owner as FreeListAllocator;
    return heap.#chunkOf.has(buffer as ArrayBuffer) || handleOf(buffer)?.owner === heap;
  }

  /**
   * Allocates `size` bytes aligned to `align` (default 16).
   * @throws {AllocationError} "out-of-memory" / "limit-exceeded" when the heap cannot grow; "unsupported" during `defragment()`.
   */
  alloc(size: number, align?: number): Uint8Array {
    const view = this.tryAlloc(size, align);
    if (view === null) {
      throw new AllocationError(this.#lastCategory, `Cannot allocate ${size} bytes: ${this.#lastFailure}`);
    }
    return view;
  }

  /** Like {@linkcode FreeListAllocator.alloc}, but `null` when the heap cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    if (!Number.isInteger(size) || size < 0 || size > MAX_BLOCK_SIZE) checkSize(size, "allocate");
    const a = align === undefined ? GRANULE : checkAlignment(align, "allocate", native.pageSize);
    if (this.#disposed || this.#defragmenting) this.#usable("allocate");
    if (size === 0) return new Uint8Array(0);
    const id = this.#allocate(size, a, 0);
    if (id < 0) return null;
    return new Uint8Array(this.#chunks[this.#chunk[id]].chunk.buffer, this.#start[id], size);
  }

  /** A typed array of `length` elements, aligned to at least its element size and 16. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  /**
   * A relocatable block of `size` bytes (16-byte aligned) that `defragment()` may move.
   * @throws {RangeError} For a size that is not an integer from 1 to 2^47.
   * @throws {AllocationError} As for `alloc`.
   */
  handle(size: number): Handle {
    checkSize(size, "allocate a handle");
    if (size === 0) throw new RangeError("Cannot allocate a handle as 'size' must be at least 1: current value is 0");
    this.#usable("allocate a handle");
    const id = this.#allocate(size, GRANULE, HANDLE);
    if (id < 0) {
      throw new AllocationError(this.#lastCategory, `Cannot allocate a ${size}-byte handle: ${this.#lastFailure}`);
    }
    const handle = new HandleImpl(this, this.#hooks, id);
    this.#handles[id] = handle;
    return handle;
  }

  /**
   * Frees a block in O(1), merging it with free neighbours.
   * @throws {AllocationError} "double-free", "invalid-free" (interior, foreign, or a handle's view: use `handle.free()`), "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    const id = this.#blockOf(view, "free");
    if (id < 0) return;
    if (this.#defragmenting) this.#usable("free");
    this.#release(id);
  }

  /**
   * Resizes in place when the block, or the block and its free neighbour, can
   * hold `newSize`; otherwise moves it (use only the returned view).
   * @throws {AllocationError} "out-of-memory" (the old block stays valid), and as for `free`.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const id = this.#blockOf(view, "resize");
    if (id < 0) return this.alloc(newSize);
    this.#usable("resize");
    if (newSize === 0) {
      this.#release(id);
      return new Uint8Array(0);
    }
    const buffer = this.#chunks[this.#chunk[id]].chunk.buffer;
    const needed = Math.max(GRANULE, Math.ceil(newSize / GRANULE) * GRANULE);
    if (needed > this.#size[id] && this.#nextPhys[id] !== -1 && this.#flags[this.#nextPhys[id]] === CACHED) {
      this.#uncache(this.#nextPhys[id]); // merge the cached neighbour so the block can grow into it
    }
    const next = this.#nextPhys[id];
    if (
      needed > this.#size[id] && next !== -1 && this.#flags[next] === FREE &&
      this.#size[id] + this.#size[next] >= needed
    ) {
      this.#removeFree(next);
      this.#freeBytes -= this.#size[next];
      this.#size[id] += this.#size[next];
      this.#unlinkPhys(next);
    }
    if (needed <= this.#size[id]) {
      this.#trim(id, needed);
      this.#allocatedBytes += newSize - this.#requested[id];
      if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
      this.#requested[id] = newSize;
      return new Uint8Array(buffer, this.#start[id], newSize);
    }
    const moved = this.#allocate(newSize, this.#align[id], 0);
    if (moved < 0) {
      throw new AllocationError(this.#lastCategory, `Cannot resize to ${newSize} bytes: ${this.#lastFailure}`);
    }
    const fresh = new Uint8Array(this.#chunks[this.#chunk[moved]].chunk.buffer, this.#start[moved], newSize);
    fresh.set(new Uint8Array(buffer, this.#start[id], Math.min(this.#requested[id], newSize)));
    this.#release(id);
    return fresh;
  }

  /** Whether `view` lies in a live block (or is a live handle's view). */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    const buffer = view.buffer as ArrayBuffer;
    const handle = handleOf(buffer);
    if (handle !== undefined) return handle.owner === this && !handle.isFreed;
    const index = this.#chunkOf.get(buffer);
    if (index === undefined) return false;
    const id = this.#containing(index, view.byteOffset);
    return id !== -1 && (this.#flags[id] & USED) !== 0;
  }

  /**
   * Compacts: slides every unpinned handle down into the free space before
   * it, so free space gathers into large blocks. Blocks from `alloc` and
   * pinned handles stay where they are. Moved handles' old views are detached.
   *
   * @param onProgress Called after each move with bytes moved so far, the
   * bytes of all movable handles, and the fraction done.
   * @returns What was moved and the fragmentation before and after.
   * @throws {TypeError} When `onProgress` is not a function.
   */
  defragment(onProgress?: (movedBytes: number, totalBytes: number, progress: number) => void): DefragReport {
    if (onProgress !== undefined && typeof onProgress !== "function") {
      throw new TypeError(
        `Cannot defragment as 'onProgress' must be a function: current value is ${describe(onProgress)}`,
      );
    }
    this.#usable("defragment");
    const started = performance.now();
    this.#flushQuick(); // cached blocks become mergeable free space
    const before = this.#freeSummary();
    let total = 0;
    for (const handle of this.#handles) {
      if (handle !== undefined && handle.pins === 0) total += this.#requested[handle.id];
    }
    let movedBytes = 0, movedBlocks = 0;
    this.#defragmenting = true;
    try {
      for (const heapChunk of this.#chunks) {
        const bytes = new Uint8Array(heapChunk.chunk.buffer);
        let id = heapChunk.first;
        while (id !== -1) {
          const next = this.#nextPhys[id];
          if (this.#flags[id] === FREE && next !== -1 && this.#flags[next] === (USED | HANDLE)) {
            const handle = this.#handles[next]!;
            if (handle.pins === 0) {
              this.#slideDown(heapChunk, id, next, bytes);
              movedBytes += this.#requested[next];
              movedBlocks++;
              onProgress?.(movedBytes, total, total === 0 ? 1 : movedBytes / total);
              continue; // `id` is now the free block after the moved handle
            }
          }
          id = next;
        }
      }
    } finally {
      this.#defragmenting = false;
    }
    const after = this.#freeSummary();
    return {
      movedBytes,
      movedBlocks,
      fragmentationBefore: before.fragmentation,
      fragmentationAfter: after.fragmentation,
      largestFreeBlockBefore: before.largest,
      largestFreeBlockAfter: after.largest,
      durationMs: performance.now() - started,
    };
  }

  /** Counters; fragmentation and the largest free block walk the free lists. */
  stats(): AllocatorStats {
    const free = this.#freeSummary();
    return {
      kind: "free-list",
      capacityBytes: this.#capacityBytes,
      allocatedBytes: this.#allocatedBytes,
      availableBytes: this.#freeBytes,
      peakBytes: this.#peakBytes,
      liveAllocations: this.#live,
      totalAllocations: this.#totalAllocations,
      totalFrees: this.#totalFrees,
      failedAllocations: this.#failedAllocations,
      largestFreeBlock: free.largest,
      fragmentation: free.fragmentation,
      // Rounding to the 16-byte granule and alignment gaps too small to list.
      overheadBytes: this.#capacityBytes - this.#freeBytes - this.#allocatedBytes,
    };
  }

  /** Returns every chunk to the backing, detaching all views; unusable afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#hotBuffer = null;
    for (const handle of this.#handles) {
      if (handle === undefined) continue;
      handle.isFreed = true;
      (handle.view?.buffer as ArrayBuffer | undefined)?.transfer(0);
    }
    this.#handles.length = 0;
    for (const heapChunk of this.#chunks) returnChunk(this.#backing, heapChunk.chunk);
    this.#totalFrees += this.#live;
    this.#live = 0;
    this.#allocatedBytes = 0;
  }

  /** Same as {@linkcode FreeListAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------------------------------------------------------------- internals

  #usable(op: string): void {
    if (this.#disposed) throw new AllocationError("use-after-free", `Cannot ${op}: the FreeListAllocator was disposed`);
    if (this.#defragmenting) {
      throw new AllocationError("unsupported", `Cannot ${op} during defragment(): blocks are being moved`);
    }
  }

  #freeSummary(): { largest: number; fragmentation: number } {
    let sum = 0, squares = 0, largest = 0;
    for (const heapChunk of this.#chunks) {
      for (let id = heapChunk.first; id !== -1; id = this.#nextPhys[id]) {
        if (this.#flags[id] !== FREE && this.#flags[id] !== CACHED) continue;
        const size = this.#size[id];
        sum += size;
        squares += size * size;
        if (size > largest) largest = size;
      }
    }
    return { largest, fragmentation: sum === 0 ? 0 : Math.max(0, 1 - Math.sqrt(squares) / sum) };
  }

  // Finds, splits and marks a block; returns its id, or -1.
  #allocate(size: number, align: number, kind: number): number {
    const needed = Math.max(GRANULE, Math.ceil(size / GRANULE) * GRANULE);
    if (needed < SMALL && this.#quickCount[needed >>> 4] !== 0) {
      // Every cached block of this class has exactly `needed` bytes; chunks are
      // page-aligned and blocks start on the granule, so 16-byte alignment holds.
      const cls = needed >>> 4;
      const id = this.#quick[cls * QUICK_DEPTH + --this.#quickCount[cls]];
      this.#quickBlocks--;
      if (align <= GRANULE || this.#start[id] % align === 0) return this.#use(id, size, align, kind);
      this.#quickCount[cls]++; // keep it for a later request; fall through
      this.#quickBlocks++;
    }
    const search = align > GRANULE ? needed + align - GRANULE : needed;
    let id = this.#findFree(search);
    if (id === -1 && this.#quickBlocks > 0) {
      this.#flushQuick();
      id = this.#findFree(search);
    }
    if (id === -1) {
      // The new chunk must reach the size class findFree rounds `search` up to.
      const rounded = search >= SMALL ? search + 2 ** (log2Floor(search) - SL_LOG2) : search;
      if (this.#grow(rounded)) id = this.#findFree(search);
      if (id === -1) {
        this.#failedAllocations++;
        return -1;
      }
    }
    this.#removeFree(id);
    this.#freeBytes -= this.#size[id];
    this.#flags[id] = USED | kind;
    if (align > GRANULE) {
      // Chunks are page-aligned, so aligning the offset aligns the address.
      const gap = (align - (this.#start[id] % align)) % align;
      if (gap > 0) {
        const front = this.#newRecord(this.#start[id], gap, this.#chunk[id]);
        this.#linkPhysBefore(front, id);
        this.#start[id] += gap;
        this.#size[id] -= gap;
        this.#markFree(front);
      }
    }
    this.#trim(id, needed);
    return this.#claim(id, size, align);
  }

  // Splits the tail beyond `keep` bytes off a used block, as a free block.
  #trim(id: number, keep: number): void {
    const rest = this.#size[id] - keep;
    if (rest < GRANULE) return;
    const tail = this.#newRecord(this.#start[id] + keep, rest, this.#chunk[id]);
    this.#linkPhysAfter(tail, id);
    this.#size[id] = keep;
    this.#markFree(tail);
  }

  // Frees a used block and merges it with free neighbours.
  #release(id: number): void {
    const heapChunk = this.#chunks[this.#chunk[id]];
    heapChunk.used.delete(this.#start[id]);
    this.#allocatedBytes -= this.#requested[id];
    this.#requested[id] = 0;
    this.#live--;
    this.#totalFrees++;
    const size = this.#size[id];
    if (size < SMALL && this.#flags[id] === USED && !this.#defragmenting) {
      const cls = size >>> 4;
      if (this.#quickCount[cls] < QUICK_DEPTH) {
        this.#flags[id] = CACHED;
        this.#freeBytes += size;
        this.#quick[cls * QUICK_DEPTH + this.#quickCount[cls]++] = id;
        this.#quickBlocks++;
        return;
      }
    }
    this.#flags[id] = 0;
    this.#markFree(id);
  }

  // Marks a block taken from a quick list as used.
  // A quick-list block, already the right size, taken into use.
  #use(id: number, size: number, align: number, kind: number): number {
    this.#flags[id] = USED | kind;
    this.#freeBytes -= this.#size[id];
    return this.#claim(id, size, align);
  }

  // The bookkeeping of every allocation once its block is final (placed,
  // aligned, trimmed): record it by offset and count it.
  #claim(id: number, size: number, align: number): number {
    this.#requested[id] = size;
    this.#align[id] = align;
    this.#chunks[this.#chunk[id]].used.set(this.#start[id], id);
    this.#allocatedBytes += size;
    if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
    this.#live++;
    this.#totalAllocations++;
    return id;
  }

  // Takes one block out of its quick list and frees it for real.
  #uncache(id: number): void {
    const cls = this.#size[id] >>> 4;
    const base = cls * QUICK_DEPTH;
    const count = this.#quickCount[cls];
    for (let i = 0; i < count; i++) {
      if (this.#quick[base + i] !== id) continue;
      this.#quick[base + i] = this.#quick[base + count - 1];
      this.#quickCount[cls]--;
      this.#quickBlocks--;
      this.#flags[id] = 0;
      this.#freeBytes -= this.#size[id]; // markFree counts it again
      this.#markFree(id);
      return;
    }
  }

  // Returns every cached block to the heap proper, merging as a free would.
  #flushQuick(): void {
    for (let cls = 0; cls < this.#quickCount.length; cls++) {
      while (this.#quickCount[cls] > 0) {
        const id = this.#quick[cls * QUICK_DEPTH + --this.#quickCount[cls]];
        this.#flags[id] = 0;
        this.#freeBytes -= this.#size[id]; // markFree counts it again
        this.#markFree(id);
      }
    }
    this.#quickBlocks = 0;
  }

  // Marks a block free, merging with free physical neighbours, and lists it.
  #markFree(id: number): void {
    this.#freeBytes += this.#size[id];
    const prev = this.#prevPhys[id];
    if (prev !== -1 && this.#flags[prev] === FREE) {
      this.#removeFree(prev);
      this.#size[prev] += this.#size[id];
      this.#unlinkPhys(id);
      id = prev;
    }
    const next = this.#nextPhys[id];
    if (next !== -1 && this.#flags[next] === FREE) {
      this.#removeFree(next);
      this.#size[id] += this.#size[next];
      this.#unlinkPhys(next);
    }
    this.#flags[id] = FREE;
    this.#insertFree(id);
  }

  // Moves used handle `used` down to the start of free block `free` before it.
  #slideDown(heapChunk: HeapChunk, free: number, used: number, bytes: Uint8Array): void {
    const from = this.#start[used];
    const to = this.#start[free];
    const length = this.#size[used];
    bytes.copyWithin(to, from, from + this.#requested[used]);
    this.#removeFree(free);
    // Swap the two in physical order: ..., used, free, ...
    const before = this.#prevPhys[free];
    const after = this.#nextPhys[used];
    this.#prevPhys[used] = before;
    if (before !== -1) this.#nextPhys[before] = used;
    else heapChunk.first = used;
    this.#nextPhys[used] = free;
    this.#prevPhys[free] = used;
    this.#nextPhys[free] = after;
    if (after !== -1) this.#prevPhys[after] = free;
    this.#start[used] = to;
    this.#start[free] = to + length;
    heapChunk.used.delete(from);
    heapChunk.used.set(to, used);
    const next = this.#nextPhys[free];
    if (next !== -1 && this.#flags[next] === FREE) {
      this.#removeFree(next);
      this.#size[free] += this.#size[next];
      this.#unlinkPhys(next);
    }
    this.#insertFree(free);
    // The handle's old views point at the old place: detach them.
    const handle = this.#handles[used]!;
    if (handle.view !== null) {
      (handle.view.buffer as ArrayBuffer).transfer(0);
      handle.view = null;
    }
  }

  #handleView(handle: HandleImpl): Uint8Array {
    const id = handle.id;
    const chunk = this.#chunks[this.#chunk[id]].chunk;
    const buffer = native.wrap(chunk.address + this.#start[id], this.#requested[id]);
    (buffer as unknown as Record<symbol, HandleImpl>)[HANDLE_KEY] = handle;
    return new Uint8Array(buffer);
  }

  #freeHandle(handle: HandleImpl): void {
    this.#usable("free a handle");
    handle.isFreed = true;
    if (handle.view !== null) {
      (handle.view.buffer as ArrayBuffer).transfer(0);
      handle.view = null;
    }
    this.#handles[handle.id] = undefined;
    this.#release(handle.id);
  }

  #grow(needed: number): boolean {
    if (this.#growth === "fixed") {
      this.#lastFailure = `no free block of ${needed} bytes in its ${this.#capacityBytes} bytes, and growth is fixed`;
      this.#lastCategory = "out-of-memory";
      return false;
    }
    const last = this.#chunks.length ? this.#chunks[this.#chunks.length - 1].chunk.size : this.#capacity;
    const wanted = this.#growth === "exponential" ? last * 2 : this.#capacity;
    const minimum = roundToPage(needed);
    let size = Math.max(roundToPage(wanted), minimum);
    if (this.#capacityBytes + size > this.#maxCapacity) size = minimum;
    if (this.#capacityBytes + size > this.#maxCapacity) {
      this.#lastFailure = `a ${size}-byte chunk would exceed maxCapacity (${this.#maxCapacity} bytes, ` +
        `${this.#capacityBytes} held)`;
      this.#lastCategory = "limit-exceeded";
      return false;
    }
    if (!this.#addChunk(size)) {
      this.#lastFailure = `the backing allocator refused a ${size}-byte chunk`;
      this.#lastCategory = "out-of-memory";
      return false;
    }
    return true;
  }

  #addChunk(size: number): boolean {
    const chunk = takeChunk(this.#backing, size);
    if (chunk === null) return false;
    const index = this.#chunks.length;
    const id = this.#newRecord(0, size, index);
    this.#chunks.push({ chunk, used: new OffsetTable(), first: id });
    this.#chunkOf.set(chunk.buffer, index);
    this.#capacityBytes += size;
    this.#markFree(id);
    return true;
  }

  #newRecord(start: number, size: number, chunk: number): number {
    let id = this.#spareIds.pop();
    if (id === undefined) {
      if (this.#records === this.#start.length) this.#growRecords();
      id = this.#records++;
    }
    this.#start[id] = start;
    this.#size[id] = size;
    this.#requested[id] = 0;
    this.#align[id] = GRANULE;
    this.#chunk[id] = chunk;
    this.#prevPhys[id] = this.#nextPhys[id] = -1;
    this.#prevFree[id] = this.#nextFree[id] = -1;
    this.#flags[id] = 0;
    return id;
  }

  #growRecords(): void {
    const n = this.#start.length * 2;
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const fresh = make(n);
      fresh.set(old);
      return fresh;
    };
    this.#start = grow(this.#start, (k) => new Float64Array(k));
    this.#size = grow(this.#size, (k) => new Float64Array(k));
    this.#requested = grow(this.#requested, (k) => new Float64Array(k));
    this.#align = grow(this.#align, (k) => new Float64Array(k));
    this.#chunk = grow(this.#chunk, (k) => new Int32Array(k));
    this.#prevPhys = grow(this.#prevPhys, (k) => new Int32Array(k));
    this.#nextPhys = grow(this.#nextPhys, (k) => new Int32Array(k));
    this.#prevFree = grow(this.#prevFree, (k) => new Int32Array(k));
    this.#nextFree = grow(this.#nextFree, (k) => new Int32Array(k));
    this.#flags = grow(this.#flags, (k) => new Uint8Array(k));
  }

  #linkPhysBefore(id: number, before: number): void {
    const prev = this.#prevPhys[before];
    this.#prevPhys[id] = prev;
    this.#nextPhys[id] = before;
    this.#prevPhys[before] = id;
    if (prev !== -1) this.#nextPhys[prev] = id;
    else this.#chunks[this.#chunk[id]].first = id;
  }

  #linkPhysAfter(id: number, after: number): void {
    const next = this.#nextPhys[after];
    this.#prevPhys[id] = after;
    this.#nextPhys[id] = next;
    this.#nextPhys[after] = id;
    if (next !== -1) this.#prevPhys[next] = id;
  }

  // Removes a record from the physical list and recycles its id.
  #unlinkPhys(id: number): void {
    const prev = this.#prevPhys[id], next = this.#nextPhys[id];
    if (prev !== -1) this.#nextPhys[prev] = next;
    else this.#chunks[this.#chunk[id]].first = next;
    if (next !== -1) this.#prevPhys[next] = prev;
    this.#flags[id] = 0;
    this.#spareIds.push(id);
  }

  // TLSF mapping: size → (first level, second level).
  #classOf(size: number): number {
    if (size < SMALL) return size >>> 4;
    if (size < 2 ** 31) {
      const fl = 31 - Math.clz32(size);
      return ((fl - FL_SHIFT + 1) << SL_LOG2) + (size >>> (fl - SL_LOG2)) - SL_COUNT;
    }
    const fl = log2Floor(size);
    const sl = Math.floor(size / 2 ** (fl - SL_LOG2)) - SL_COUNT;
    return (fl - FL_SHIFT + 1) * SL_COUNT + sl;
  }

  #insertFree(id: number): void {
    const cls = this.#classOf(this.#size[id]);
    const head = this.#heads[cls];
    this.#prevFree[id] = -1;
    this.#nextFree[id] = head;
    if (head !== -1) this.#prevFree[head] = id;
    this.#heads[cls] = id;
    const fl = cls >> SL_LOG2;
    this.#slBitmap[fl] |= 1 << (cls & (SL_COUNT - 1));
    if (fl < 32) this.#flLow |= 1 << fl;
    else this.#flHigh |= 1 << (fl - 32);
  }

  #removeFree(id: number): void {
    const cls = this.#classOf(this.#size[id]);
    const prev = this.#prevFree[id], next = this.#nextFree[id];
    if (prev !== -1) this.#nextFree[prev] = next;
    else this.#heads[cls] = next;
    if (next !== -1) this.#prevFree[next] = prev;
    this.#prevFree[id] = this.#nextFree[id] = -1;
    if (this.#heads[cls] === -1) {
      const fl = cls >> SL_LOG2;
      this.#slBitmap[fl] &= ~(1 << (cls & (SL_COUNT - 1)));
      if (this.#slBitmap[fl] === 0) {
        if (fl < 32) this.#flLow &= ~(1 << fl);
        else this.#flHigh &= ~(1 << (fl - 32));
      }
    }
  }

  // A free block of at least `size` bytes in O(1): round the size up to the
  // next class so that every block listed there fits, then take the first
  // non-empty list at or above it.
  #findFree(size: number): number {
    let rounded = size;
    if (size >= SMALL) {
      rounded = size < 2 ** 30
        ? size + (1 << (27 - Math.clz32(size))) - 1
        : size + 2 ** (log2Floor(size) - SL_LOG2) - 1;
    }
    const cls = this.#classOf(rounded);
    let fl = cls >> SL_LOG2;
    if (fl >= FL_COUNT) return -1;
    let slMap = this.#slBitmap[fl] & (~0 << (cls & (SL_COUNT - 1)));
    if (slMap === 0) {
      const low = fl + 1 < 32 ? this.#flLow & (~0 << (fl + 1)) : 0;
      if (low !== 0) fl = lowestBit(low);
      else {
        const high = fl + 1 < 32 ? this.#flHigh : this.#flHigh & (~0 << (fl + 1 - 32));
        if (high === 0) return -1;
        fl = lowestBit(high) + 32;
      }
      slMap = this.#slBitmap[fl];
    }
    return this.#heads[fl * SL_COUNT + lowestBit(slMap)];
  }

  // The block containing `offset` in a chunk (a walk: error paths and owns()).
  #containing(index: number, offset: number): number {
    for (let id = this.#chunks[index].first; id !== -1; id = this.#nextPhys[id]) {
      if (offset >= this.#start[id] && offset < this.#start[id] + this.#size[id]) return id;
    }
    return -1;
  }

  // The used, non-handle block `view` starts; -1 for an empty view; throws otherwise.
  #blockOf(view: ArrayBufferView, op: "free" | "resize"): number {
    checkView(view, op);
    const buffer = view.buffer as ArrayBuffer;
    const index = buffer === this.#hotBuffer ? this.#hotIndex : this.#chunkOf.get(buffer);
    if (index !== undefined && !this.#disposed) {
      this.#hotBuffer = buffer;
      this.#hotIndex = index;
      const id = this.#chunks[index].used.get(view.byteOffset);
      if (id !== -1 && view.byteLength !== 0) {
        if (this.#flags[id] & HANDLE) {
          throw new AllocationError(
            "invalid-free",
            `Cannot ${op} ${describe(view)}: it is a Handle's block; use handle.free()`,
          );
        }
        return id;
      }
      if (view.byteLength === 0) return -1;
      const at = this.#containing(index, view.byteOffset);
      if (at !== -1 && (this.#flags[at] === FREE || this.#flags[at] === CACHED)) {
        throw new AllocationError(
          op === "free" ? "double-free" : "use-after-free",
          `Cannot ${op} ${describe(view)} at offset ${view.byteOffset}: that memory is already free`,
        );
      }
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)} at offset ${view.byteOffset}: it starts inside a block, not at its first byte`,
      );
    }
    if (handleOf(buffer) !== undefined && !buffer.detached) {
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)}: it is a Handle's view; use handle.free()`,
      );
    }
    if (isEmptyView(view)) return -1;
    throw foreignBlockError(view, op, this, "FreeListAllocator");
  }
}
