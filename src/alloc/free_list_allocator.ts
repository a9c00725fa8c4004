/**
 * A general-purpose allocator: Two-Level Segregated Fit over native chunks,
 * with relocatable handles and compaction.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { CACHED, FREE, GRANULE, HANDLE, USED } from "./_block_records.ts";
import { BlockRecords } from "./_block_records.ts";
import { type Chunk, ChunkSource, roundToPage } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import { type HandleHooks, HandleImpl, handleOf, tagHandleBuffer } from "./_handle.ts";
import { LEASES, LeaseTable } from "./_lease.ts";
import { capChunkSize, plannedChunkSize } from "./_growth.ts";
import { Ledger } from "./_ledger.ts";
import { OffsetTable } from "./_offset_table.ts";
import { foreignBlockError, isEmptyView, registerOwner } from "./_ownership.ts";
import { SMALL, TlsfIndex } from "./_tlsf_index.ts";
import { typedArrayOf } from "./_typed_array_of.ts";
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
import type { DefragReport, FreeListAllocatorOptions, Handle } from "./free_list_types.ts";

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

// Quick lists in front of TLSF (like a thread cache): up to QUICK_DEPTH freed
// blocks of each size below 256 bytes, reused by the next allocation of that
// exact size without splitting or merging. Flushed into the heap when an
// allocation would otherwise fail, and before defragment().
const QUICK_DEPTH = 64;

interface HeapChunk {
  readonly chunk: Chunk;
  /** Used blocks by start offset. */
  readonly used: OffsetTable;
  /** The first block of the chunk's physical list. */
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
export class FreeListAllocator implements Allocator, Disposable {
  /** Always `"free-list"`. */
  readonly kind = "free-list" as const;
  /** Leases on this heap's blocks (see _lease.ts). */
  readonly [LEASES]: LeaseTable = new LeaseTable();
  readonly #ledger = new Ledger("free-list", "FreeListAllocator");
  readonly #source: ChunkSource;
  readonly #growth: "fixed" | "linear" | "exponential";
  readonly #capacity: number;
  readonly #maxCapacity: number;
  readonly #chunks: HeapChunk[] = [];
  readonly #chunkOf = new Map<ArrayBuffer, number>();
  #defragmenting = false;
  // The chunk the last free() looked up, so runs of frees skip the Map.
  #hotBuffer: ArrayBuffer | null = null;
  #hotIndex = 0;

  readonly #records = new BlockRecords();
  readonly #index = new TlsfIndex(this.#records);
  readonly #quick = new Int32Array((SMALL / GRANULE) * QUICK_DEPTH);
  readonly #quickCount = new Int32Array(SMALL / GRANULE);
  #quickBlocks = 0;
  // Live handles by block id; each handle's buffer carries it (see _handle.ts).
  readonly #handles: (HandleImpl | undefined)[] = [];
  readonly #hooks: HandleHooks;

  #capacityBytes = 0;
  #freeBytes = 0;

  /**
   * Creates the heap and takes its first chunk.
   *
   * @param options Capacity, growth, limit and backing.
   * @throws {TypeError} For mistyped options.
   * @throws {RangeError} For out-of-range sizes.
   * @throws {AllocationError} "out-of-memory" when the backing refuses the first chunk; "corruption" when it returns a block it must not.
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
    this.#source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "FreeListAllocator",
      (reason, partial) => this.#revoke(reason, partial),
    );
    this.#hooks = {
      view: (h) => this.#handleView(h),
      size: (h) => this.#records.requested[h.id],
      free: (h) => this.#freeHandle(h),
      ended: () => this.#ledger.ended,
    };
    if (!this.#addChunk(this.#capacity)) {
      throw new AllocationError("out-of-memory", `Cannot create FreeListAllocator: ${this.#source.refusal}`);
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
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode FreeListAllocator.alloc}, but `null` when the heap cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    if (!Number.isInteger(size) || size < 0 || size > MAX_BLOCK_SIZE) checkSize(size, "allocate");
    const a = align === undefined ? GRANULE : checkAlignment(align, "allocate", native.pageSize);
    if (this.#ledger.ended !== null || this.#defragmenting) this.#usable("allocate");
    if (size === 0) return new Uint8Array(0);
    const id = this.#allocate(size, a, 0);
    if (id < 0) return null;
    return new Uint8Array(this.#chunks[this.#records.chunk[id]].chunk.buffer, this.#records.start[id], size);
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
    if (id < 0) throw this.#ledger.failure(size);
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
    this.#release(id, "FreeListAllocator.free() released it");
  }

  /**
   * Resizes in place when the block, or the block and its free neighbour, can
   * hold `newSize`; otherwise moves it, keeping its alignment (use only the
   * returned view).
   * @throws {AllocationError} "out-of-memory" (the old block stays valid), and as for `free`.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const id = this.#blockOf(view, "resize");
    if (id < 0) return this.alloc(newSize);
    this.#usable("resize");
    if (newSize === 0) {
      this.#release(id, "FreeListAllocator.resize(view, 0) released it");
      return new Uint8Array(0);
    }
    const r = this.#records;
    const buffer = this.#chunks[r.chunk[id]].chunk.buffer;
    const needed = Math.max(GRANULE, Math.ceil(newSize / GRANULE) * GRANULE);
    if (needed > r.size[id] && r.nextPhys[id] !== -1 && r.flags[r.nextPhys[id]] === CACHED) {
      this.#uncache(r.nextPhys[id]); // merge the cached neighbour so the block can grow into it
    }
    const next = r.nextPhys[id];
    if (needed > r.size[id] && next !== -1 && r.flags[next] === FREE && r.size[id] + r.size[next] >= needed) {
      this.#index.remove(next);
      this.#freeBytes -= r.size[next];
      r.size[id] += r.size[next];
      this.#unlinkPhys(next);
    }
    if (needed <= r.size[id]) {
      this.#trim(id, needed);
      this.#ledger.resized(r.requested[id], newSize);
      r.requested[id] = newSize;
      return new Uint8Array(buffer, r.start[id], newSize);
    }
    const moved = this.#allocate(newSize, r.align[id], 0);
    if (moved < 0) throw this.#ledger.failure(newSize);
    const fresh = new Uint8Array(this.#chunks[r.chunk[moved]].chunk.buffer, r.start[moved], newSize);
    fresh.set(new Uint8Array(buffer, r.start[id], Math.min(r.requested[id], newSize)));
    this.#release(id, "FreeListAllocator.resize() moved it");
    return fresh;
  }

  /** Whether `view` lies in a live block (or is a live handle's view). */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.ended !== null) return false;
    const buffer = view.buffer as ArrayBuffer;
    const handle = handleOf(buffer);
    if (handle !== undefined) return handle.owner === this && !handle.isFreed;
    const index = this.#chunkOf.get(buffer);
    if (index === undefined) return false;
    const id = this.#containing(index, view.byteOffset);
    const r = this.#records;
    return id !== -1 && (r.flags[id] & USED) !== 0 && view.byteOffset < r.start[id] + r.requested[id];
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
    const r = this.#records;
    const started = performance.now();
    this.#flushQuick(); // cached blocks become mergeable free space
    const before = this.#freeSummary();
    let total = 0;
    for (const handle of this.#handles) {
      if (handle !== undefined && handle.pins === 0) total += r.requested[handle.id];
    }
    let movedBytes = 0, movedBlocks = 0;
    this.#defragmenting = true;
    try {
      for (const heapChunk of this.#chunks) {
        const bytes = new Uint8Array(heapChunk.chunk.buffer);
        let id = heapChunk.first;
        while (id !== -1) {
          const next = r.nextPhys[id];
          if (r.flags[id] === FREE && next !== -1 && r.flags[next] === (USED | HANDLE)) {
            const handle = this.#handles[next]!;
            if (handle.pins === 0) {
              this.#slideDown(heapChunk, id, next, bytes);
              movedBytes += r.requested[next];
              movedBlocks++;
              onProgress?.(movedBytes, total, total === 0 ? 1 : movedBytes / total);
              if (this.#ledger.ended !== null) break; // the callback disposed the heap
              continue; // `id` is now the free block after the moved handle
            }
          }
          id = next;
        }
        if (this.#ledger.ended !== null) break;
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

  /**
   * Counters; fragmentation and the largest free block walk the free lists.
   * `largestFreeBlock` is exactly the largest `tryAlloc` the heap serves
   * without growing.
   */
  stats(): AllocatorStats {
    const free = this.#freeSummary();
    return this.#ledger.stats({
      capacityBytes: this.#capacityBytes,
      availableBytes: this.#freeBytes,
      largestFreeBlock: free.largest,
      freeBlocks: free.fragmentation,
      // Rounding to the 16-byte granule and alignment gaps too small to list.
      overheadBytes: this.#capacityBytes - this.#freeBytes - this.#ledger.allocatedBytes,
    });
  }

  /**
   * Returns every chunk to the backing; every view and handle it handed out
   * reads as length 0 / throws "use-after-free", as does every later call. A
   * second call does nothing.
   */
  dispose(): void {
    if (!this.#ledger.end("was disposed")) return;
    this[LEASES].releasedAll("FreeListAllocator.dispose() released it");
    this.#teardown();
    for (const heapChunk of this.#chunks) this.#source.give(heapChunk.chunk);
  }

  /** Same as {@linkcode FreeListAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------------------------------------------------------------- internals

  // The backing released a chunk (its reset, scope end, dispose): end here too.
  #revoke(reason: string, partial: boolean): void {
    if (!this.#ledger.end(`lost its memory: ${reason}`)) return;
    this[LEASES].releasedAll(`the FreeListAllocator lost its memory (${reason})`);
    this.#teardown();
    for (const heapChunk of this.#chunks) {
      if (partial) this.#source.giveQuietly(heapChunk.chunk);
      else heapChunk.chunk.buffer.transfer(0);
    }
  }

  #teardown(): void {
    this.#hotBuffer = null;
    for (const handle of this.#handles) handle?.detach();
    this.#handles.length = 0;
    this.#ledger.freedAll();
  }

  #usable(op: string): void {
    this.#ledger.guard(op);
    if (this.#defragmenting) {
      throw new AllocationError("unsupported", `Cannot ${op} during defragment(): blocks are being moved`);
    }
  }

  #freeSummary(): { largest: number; fragmentation: number } {
    const r = this.#records;
    let sum = 0, squares = 0, largest = 0;
    if (this.#ledger.ended !== null) return { largest, fragmentation: 0 };
    for (const heapChunk of this.#chunks) {
      for (let id = heapChunk.first; id !== -1; id = r.nextPhys[id]) {
        if (r.flags[id] !== FREE && r.flags[id] !== CACHED) continue;
        const size = r.size[id];
        sum += size;
        squares += size * size;
        if (size > largest) largest = size;
      }
    }
    // Cached blocks are merged before an allocation fails, so two cached or
    // free neighbours serve as one block: measure runs of them.
    if (this.#quickBlocks > 0) largest = this.#largestRun(largest);
    return { largest, fragmentation: sum === 0 ? 0 : Math.max(0, 1 - Math.sqrt(squares) / sum) };
  }

  #largestRun(atLeast: number): number {
    const r = this.#records;
    let largest = atLeast;
    for (const heapChunk of this.#chunks) {
      let run = 0;
      for (let id = heapChunk.first; id !== -1; id = r.nextPhys[id]) {
        if (r.flags[id] === FREE || r.flags[id] === CACHED) run += r.size[id];
        else run = 0;
        if (run > largest) largest = run;
      }
    }
    return largest;
  }

  // Finds, splits and marks a block; returns its id, or -1.
  #allocate(size: number, align: number, kind: number): number {
    const r = this.#records;
    const needed = Math.max(GRANULE, Math.ceil(size / GRANULE) * GRANULE);
    if (needed < SMALL && this.#quickCount[needed >>> 4] !== 0) {
      // Every cached block of this class has exactly `needed` bytes; chunks are
      // page-aligned and blocks start on the granule, so 16-byte alignment holds.
      const cls = needed >>> 4;
      const id = this.#quick[cls * QUICK_DEPTH + --this.#quickCount[cls]];
      this.#quickBlocks--;
      if (align <= GRANULE || r.start[id] % align === 0) return this.#use(id, size, align, kind);
      this.#quickCount[cls]++; // keep it for a later request; fall through
      this.#quickBlocks++;
    }
    const search = align > GRANULE ? needed + align - GRANULE : needed;
    let id = this.#index.find(search);
    if (id === -1 && this.#quickBlocks > 0) {
      this.#flushQuick();
      id = this.#index.find(search);
    }
    if (id === -1) {
      if (this.#grow(search)) id = this.#index.find(search);
      if (id === -1) return -1;
    }
    this.#index.remove(id);
    this.#freeBytes -= r.size[id];
    r.flags[id] = USED | kind;
    if (align > GRANULE) {
      // Chunks are page-aligned, so aligning the offset aligns the address.
      const gap = (align - (r.start[id] % align)) % align;
      if (gap > 0) {
        const front = r.create(r.start[id], gap, r.chunk[id]);
        this.#linkPhysBefore(front, id);
        r.start[id] += gap;
        r.size[id] -= gap;
        this.#markFree(front);
      }
    }
    this.#trim(id, needed);
    return this.#claim(id, size, align);
  }

  // Splits the tail beyond `keep` bytes off a used block, as a free block.
  #trim(id: number, keep: number): void {
    const r = this.#records;
    const rest = r.size[id] - keep;
    if (rest < GRANULE) return;
    const tail = r.create(r.start[id] + keep, rest, r.chunk[id]);
    this.#linkPhysAfter(tail, id);
    r.size[id] = keep;
    this.#markFree(tail);
  }

  // Frees a used block and merges it with free neighbours.
  #release(id: number, reason: string): void {
    const r = this.#records;
    const heapChunk = this.#chunks[r.chunk[id]];
    const leases = this[LEASES];
    if (leases.count !== 0) leases.freed(heapChunk.chunk.address + r.start[id], reason);
    heapChunk.used.delete(r.start[id]);
    this.#ledger.freed(r.requested[id]);
    r.requested[id] = 0;
    const size = r.size[id];
    if (size < SMALL && r.flags[id] === USED && !this.#defragmenting) {
      const cls = size >>> 4;
      if (this.#quickCount[cls] < QUICK_DEPTH) {
        r.flags[id] = CACHED;
        this.#freeBytes += size;
        this.#quick[cls * QUICK_DEPTH + this.#quickCount[cls]++] = id;
        this.#quickBlocks++;
        return;
      }
    }
    r.flags[id] = 0;
    this.#markFree(id);
  }

  // A quick-list block, already the right size, taken into use.
  #use(id: number, size: number, align: number, kind: number): number {
    this.#records.flags[id] = USED | kind;
    this.#freeBytes -= this.#records.size[id];
    return this.#claim(id, size, align);
  }

  // The bookkeeping of every allocation once its block is final (placed,
  // aligned, trimmed): record it by offset and count it.
  #claim(id: number, size: number, align: number): number {
    const r = this.#records;
    r.requested[id] = size;
    r.align[id] = align;
    this.#chunks[r.chunk[id]].used.set(r.start[id], id);
    this.#ledger.allocated(size);
    return id;
  }

  // Takes one block out of its quick list and frees it for real.
  #uncache(id: number): void {
    const r = this.#records;
    const cls = r.size[id] >>> 4;
    const base = cls * QUICK_DEPTH;
    const count = this.#quickCount[cls];
    for (let i = 0; i < count; i++) {
      if (this.#quick[base + i] !== id) continue;
      this.#quick[base + i] = this.#quick[base + count - 1];
      this.#quickCount[cls]--;
      this.#quickBlocks--;
      r.flags[id] = 0;
      this.#freeBytes -= r.size[id]; // markFree counts it again
      this.#markFree(id);
      return;
    }
  }

  // Returns every cached block to the heap proper, merging as a free would.
  #flushQuick(): void {
    const r = this.#records;
    for (let cls = 0; cls < this.#quickCount.length; cls++) {
      while (this.#quickCount[cls] > 0) {
        const id = this.#quick[cls * QUICK_DEPTH + --this.#quickCount[cls]];
        r.flags[id] = 0;
        this.#freeBytes -= r.size[id]; // markFree counts it again
        this.#markFree(id);
      }
    }
    this.#quickBlocks = 0;
  }

  // Marks a block free, merging with free physical neighbours, and lists it.
  #markFree(id: number): void {
    const r = this.#records;
    this.#freeBytes += r.size[id];
    const prev = r.prevPhys[id];
    if (prev !== -1 && r.flags[prev] === FREE) {
      this.#index.remove(prev);
      r.size[prev] += r.size[id];
      this.#unlinkPhys(id);
      id = prev;
    }
    const next = r.nextPhys[id];
    if (next !== -1 && r.flags[next] === FREE) {
      this.#index.remove(next);
      r.size[id] += r.size[next];
      this.#unlinkPhys(next);
    }
    r.flags[id] = FREE;
    this.#index.insert(id);
  }

  // Moves used handle `used` down to the start of free block `free` before it.
  #slideDown(heapChunk: HeapChunk, free: number, used: number, bytes: Uint8Array): void {
    const r = this.#records;
    const from = r.start[used];
    const to = r.start[free];
    const length = r.size[used];
    bytes.copyWithin(to, from, from + r.requested[used]);
    this.#index.remove(free);
    // Swap the two in physical order: ..., used, free, ...
    const before = r.prevPhys[free];
    const after = r.nextPhys[used];
    r.prevPhys[used] = before;
    if (before !== -1) r.nextPhys[before] = used;
    else heapChunk.first = used;
    r.nextPhys[used] = free;
    r.prevPhys[free] = used;
    r.nextPhys[free] = after;
    if (after !== -1) r.prevPhys[after] = free;
    r.start[used] = to;
    r.start[free] = to + length;
    heapChunk.used.delete(from);
    heapChunk.used.set(to, used);
    const next = r.nextPhys[free];
    if (next !== -1 && r.flags[next] === FREE) {
      this.#index.remove(next);
      r.size[free] += r.size[next];
      this.#unlinkPhys(next);
    }
    this.#index.insert(free);
    // The handle's old views point at the old place: detach them.
    this.#handles[used]!.detach();
  }

  #handleView(handle: HandleImpl): Uint8Array {
    const id = handle.id;
    const chunk = this.#chunks[this.#records.chunk[id]].chunk;
    // SAFETY: the handle's block lies in a chunk the heap holds; a move, free or dispose detaches this buffer first.
    const buffer = native.wrap(chunk.address + this.#records.start[id], this.#records.requested[id]);
    tagHandleBuffer(buffer, handle);
    return new Uint8Array(buffer);
  }

  #freeHandle(handle: HandleImpl): void {
    this.#usable("free a handle");
    handle.isFreed = true;
    handle.detach();
    this.#handles[handle.id] = undefined;
    this.#release(handle.id, "its Handle was freed");
  }

  #grow(needed: number): boolean {
    if (this.#growth === "fixed") {
      this.#ledger.fail(
        "out-of-memory",
        `no free block of ${needed} bytes in its ${this.#capacityBytes} bytes, and growth is fixed`,
      );
      return false;
    }
    const last = this.#chunks.length ? this.#chunks[this.#chunks.length - 1].chunk.size : this.#capacity;
    const planned = plannedChunkSize(this.#growth, this.#capacity, last, this.#capacityBytes);
    const size = capChunkSize(Math.max(planned, roundToPage(needed)), needed, this.#capacityBytes, this.#maxCapacity);
    if (size < 0) {
      this.#ledger.fail(
        "limit-exceeded",
        `a ${roundToPage(needed)}-byte chunk would exceed maxCapacity (${this.#maxCapacity} bytes, ` +
          `${this.#capacityBytes} held)`,
      );
      return false;
    }
    if (!this.#addChunk(size)) {
      this.#ledger.fail("out-of-memory", this.#source.refusal);
      return false;
    }
    return true;
  }

  #addChunk(size: number): boolean {
    const chunk = this.#source.take(size);
    if (chunk === null) return false;
    const index = this.#chunks.length;
    const id = this.#records.create(0, size, index);
    this.#chunks.push({ chunk, used: new OffsetTable(), first: id });
    this.#chunkOf.set(chunk.buffer, index);
    this.#capacityBytes += size;
    this.#markFree(id);
    return true;
  }

  #linkPhysBefore(id: number, before: number): void {
    const r = this.#records;
    const prev = r.prevPhys[before];
    r.prevPhys[id] = prev;
    r.nextPhys[id] = before;
    r.prevPhys[before] = id;
    if (prev !== -1) r.nextPhys[prev] = id;
    else this.#chunks[r.chunk[id]].first = id;
  }

  #linkPhysAfter(id: number, after: number): void {
    const r = this.#records;
    const next = r.nextPhys[after];
    r.prevPhys[id] = after;
    r.nextPhys[id] = next;
    r.nextPhys[after] = id;
    if (next !== -1) r.prevPhys[next] = id;
  }

  // Removes a record from the physical list and recycles its id.
  #unlinkPhys(id: number): void {
    const r = this.#records;
    const prev = r.prevPhys[id], next = r.nextPhys[id];
    if (prev !== -1) r.nextPhys[prev] = next;
    else this.#chunks[r.chunk[id]].first = next;
    if (next !== -1) r.prevPhys[next] = prev;
    r.recycle(id);
  }

  // The block containing `offset` in a chunk (a walk: error paths and owns()).
  #containing(index: number, offset: number): number {
    const r = this.#records;
    for (let id = this.#chunks[index].first; id !== -1; id = r.nextPhys[id]) {
      if (offset >= r.start[id] && offset < r.start[id] + r.size[id]) return id;
    }
    return -1;
  }

  // The used, non-handle block `view` starts; -1 for an empty view; throws otherwise.
  #blockOf(view: ArrayBufferView, op: "free" | "resize"): number {
    checkView(view, op);
    this.#ledger.guard(op);
    const buffer = view.buffer as ArrayBuffer;
    const index = buffer === this.#hotBuffer ? this.#hotIndex : this.#chunkOf.get(buffer);
    if (index !== undefined) {
      this.#hotBuffer = buffer;
      this.#hotIndex = index;
      const r = this.#records;
      const id = this.#chunks[index].used.get(view.byteOffset);
      if (id !== -1 && view.byteLength !== 0) {
        if (r.flags[id] & HANDLE) {
          throw new AllocationError(
            "invalid-free",
            `Cannot ${op} ${describe(view)}: it is a Handle's block; use handle.free()`,
          );
        }
        return id;
      }
      if (view.byteLength === 0) return -1;
      const at = this.#containing(index, view.byteOffset);
      if (at !== -1 && (r.flags[at] === FREE || r.flags[at] === CACHED)) {
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
