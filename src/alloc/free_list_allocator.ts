/**
 * A general-purpose allocator: Two-Level Segregated Fit over native chunks,
 * with relocatable handles and compaction.
 *
 * @module
 */
import { intrinsic } from "../../ffi/boundary.ts";
import { anyTaken, isDetached, mayRelease, THEFT, transferredError } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { CACHED, FREE, GRANULE, HANDLE, USED } from "./_block_records.ts";
import { ChunkSource, roundToPage } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import {
  createHandle,
  detachHandle,
  type HandleHooks,
  handleOf,
  type HandleState,
  isStolen,
  tagHandleView,
} from "./_handle.ts";
import {
  beginChange,
  endChange,
  ownLeaseTable,
  registerLeases,
  resizedUnderLease,
  tellFreed,
  withChange,
} from "./_lease.ts";
import { capChunkSize, plannedChunkSize } from "./_growth.ts";
import { Ledger } from "./_ledger.ts";
import { foreignBlockError, isEmptyView, registerOwner } from "./_ownership.ts";
import { TlsfHeap } from "./_tlsf_heap.ts";
import { typedArrayOf } from "./_typed_array_of.ts";
import {
  bufferOf,
  checkAlignment,
  checkSize,
  checkView,
  describe,
  integerIn,
  MAX_BLOCK_SIZE,
  offsetOf,
  parseOptions,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { checkViewLimit } from "../base/_view_limit.ts";
import { type AllocatorDump, makeDump, type RawBlock } from "./dump.ts";
import type { DefragReport, FreeListAllocatorOptions, Handle } from "./free_list_types.ts";

const OptionsSchema = z.object({
  capacity: integerIn(1, MAX_BLOCK_SIZE).optional(),
  growth: z.enum(["fixed", "linear", "exponential"]).optional(),
  maxCapacity: integerIn(1, MAX_BLOCK_SIZE).optional(),
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
}).strict();

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
  readonly #leases = ownLeaseTable();
  readonly #ledger = new Ledger("free-list", "FreeListAllocator");
  readonly #source: ChunkSource;
  readonly #growth: "fixed" | "linear" | "exponential";
  readonly #capacity: number;
  readonly #maxCapacity: number;
  readonly #heap = new TlsfHeap();
  #defragmenting = false;
  // The chunk the last free() looked up, so runs of frees skip the Map.
  #hotBuffer: ArrayBuffer | null = null;
  #hotIndex = 0;
  // Live handles by block id; each handle's buffer carries it (see _handle.ts).
  readonly #handles: (HandleState | undefined)[] = [];
  readonly #hooks: HandleHooks;

  /**
   * Creates the heap and takes its first chunk.
   *
   * @param options Capacity, growth, limit and backing.
   * @throws {TypeError} For mistyped options.
   * @throws {RangeError} For out-of-range sizes.
   * @throws {AllocationError} "unsupported" for a capacity above what one ArrayBuffer holds in this runtime
   *   (`nativeInfo().maxViewBytes`, 4 GiB in Bun), before the backing is asked; "out-of-memory" when the backing
   *   refuses the first chunk; "corruption" when it returns a block it must not.
   */
  constructor(options?: FreeListAllocatorOptions) {
    if (options === undefined) options = {};
    registerLeases(this, this.#leases);
    const parsed = parseOptions(OptionsSchema, options, "create FreeListAllocator");
    this.#capacity = roundToPage(parsed.capacity ?? 1 << 20);
    this.#maxCapacity = parsed.maxCapacity ?? MAX_BLOCK_SIZE;
    if (this.#capacity > this.#maxCapacity) {
      throw new RangeError(
        `Cannot create FreeListAllocator as 'capacity' (${this.#capacity}) must not exceed 'maxCapacity': current ` +
          `value is ${this.#maxCapacity}`,
      );
    }
    // The first chunk is viewed as one ArrayBuffer: a larger one could be mapped but never used. Later chunks are
    // planned at most that size (#grow), so 'maxCapacity' may be larger.
    checkViewLimit(
      this.#capacity,
      "create FreeListAllocator",
      "its first chunk",
      `pass a 'capacity' of at most ${native.maxViewBytes} bytes: the heap grows by further chunks up to ` +
        "'maxCapacity', which may be larger",
    );
    this.#growth = parsed.growth ?? "exponential";
    this.#source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "FreeListAllocator",
      this.#ledger,
      (reason, partial) => this.#revoke(reason, partial),
    );
    this.#hooks = {
      view: (h) => this.#handleView(h),
      size: (h) => this.#heap.records.requested[h.id],
      free: (h) => this.#freeHandle(h),
      ended: () => this.#ledger.ended,
      busy: () => this.#ledger.ended !== null && !this.#ledger.over,
    };
    if (!this.#addChunk(this.#capacity)) {
      throw new AllocationError("out-of-memory", `Cannot create FreeListAllocator: ${this.#source.refusal}`);
    }
    registerOwner(this, "free-list", FreeListAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const heap = owner as FreeListAllocator;
    return heap.#heap.chunkOf.has(buffer as ArrayBuffer) || handleOf(buffer)?.owner === heap;
  }

  /**
   * Allocates `size` bytes aligned to `align` (default 16).
   * @throws {AllocationError} "out-of-memory" / "limit-exceeded" when the heap cannot grow; "unsupported" during `defragment()`.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode FreeListAllocator.alloc}, but `null` when the heap cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    if (!Number.isInteger(size) || size < 0 || size > MAX_BLOCK_SIZE) checkSize(size, "allocate");
    const a = align === undefined ? GRANULE : checkAlignment(align, "allocate", native.pageSize);
    if (this.#ledger.ended !== null || this.#defragmenting) this.#usable("allocate");
    if (size === 0) return new Uint8Array(0);
    const peak = this.#ledger.peakBytes;
    const id = this.#allocate(size, a, 0);
    if (id < 0) return null;
    const heap = this.#heap;
    try {
      return new Uint8Array(heap.chunks[heap.records.chunk[id]].chunk.buffer, heap.records.start[id], size);
    } catch (error) {
      this.#transferred(error, "allocate", size, peak);
    }
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
    // A handle's view is a buffer of its own over chunk memory: never over a chunk someone can reach through a
    // transferred buffer.
    this.#theftFound("allocate a handle");
    const id = this.#allocate(size, GRANULE, HANDLE);
    if (id < 0) throw this.#ledger.failure(size);
    const state = createHandle(this, this.#hooks, id);
    this.#handles[id] = state;
    return state.handle;
  }

  /**
   * Frees a block in O(1), merging it with free neighbours.
   * @throws {AllocationError} "double-free", "invalid-free" (interior, foreign, or this heap's handle's view: use
   *   `handle.free()`), "mismatched-allocator" (a block or handle of another allocator).
   */
  free(view: ArrayBufferView): void {
    const id = this.#blockOf(view, "free");
    if (id < 0) return;
    if (this.#defragmenting) this.#usable("free");
    if (!this.#release(id, "FreeListAllocator.free() released it")) {
      throw transferredError("free", `the block ${describe(view)} names`);
    }
  }

  /**
   * Resizes in place when the block, or the block and its free neighbour, can
   * hold `newSize`; otherwise moves it, keeping its alignment (use only the
   * returned view).
   * @throws {AllocationError} "out-of-memory" (the old block stays valid), and as for `free`.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const id = this.#blockOf(view, "resize");
    if (id < 0) return this.alloc(newSize);
    this.#usable("resize");
    if (newSize === 0) {
      if (!this.#release(id, "FreeListAllocator.resize(view, 0) released it", "resize")) {
        throw transferredError("resize", `the block ${describe(view)} names`);
      }
      return new Uint8Array(0);
    }
    const heap = this.#heap;
    const r = heap.records;
    const buffer = heap.chunks[r.chunk[id]].chunk.buffer;
    if (isDetached(buffer)) this.#theftFound("resize"); // before anything changes
    const oldSize = r.requested[id];
    const address = heap.chunks[r.chunk[id]].chunk.address + r.start[id];
    // A holder of the block is told (and a theft it finds refuses the resize) only once the resize is certain:
    // one that fails for want of room leaves it as it was. The heap is busy while it is told, and what it gives
    // back waits until the resize is made (see beginChange).
    const leased = this.#leases.leased !== 0 || anyTaken();
    if (heap.fitsInPlace(id, newSize)) {
      let resized: Uint8Array<ArrayBuffer> | null;
      if (!leased) resized = this.#resizeInPlace(id, buffer, oldSize, newSize);
      else {
        beginChange();
        try {
          resizedUnderLease(this.#ledger, this.#leases, address, oldSize, view, "FreeListAllocator");
          resized = this.#resizeInPlace(id, buffer, oldSize, newSize);
        } finally {
          endChange();
        }
      }
      if (resized !== null) return resized;
    }
    const peak = this.#ledger.peakBytes;
    const moved = this.#allocate(newSize, r.align[id], 0);
    if (moved < 0) throw this.#ledger.failure(newSize);
    if (!leased) return this.#move(id, moved, buffer, newSize, peak);
    beginChange();
    try {
      try {
        resizedUnderLease(this.#ledger, this.#leases, address, oldSize, view, "FreeListAllocator");
      } catch (error) {
        // The holder found a theft: the block taken to move into goes back, and the resize changes nothing more.
        this.#ledger.retract(newSize, peak);
        heap.release(moved);
        throw error;
      }
      return this.#move(id, moved, buffer, newSize, peak);
    } finally {
      endChange();
    }
  }

  // Resizes used block `id` (in `buffer`, `oldSize` bytes) in place to `newSize`; null when it cannot.
  #resizeInPlace(id: number, buffer: ArrayBuffer, oldSize: number, newSize: number): Uint8Array<ArrayBuffer> | null {
    if (!this.#heap.resizeInPlace(id, newSize)) return null;
    this.#ledger.resized(oldSize, newSize);
    try {
      return new Uint8Array(buffer, this.#heap.records.start[id], newSize);
    } catch (error) {
      this.#transferred(error, "resize");
    }
  }

  // Moves used block `id` (in `buffer`) into block `moved` of `newSize` bytes, taken (`peak`: peakBytes before).
  #move(id: number, moved: number, buffer: ArrayBuffer, newSize: number, peak: number): Uint8Array<ArrayBuffer> {
    const heap = this.#heap;
    const r = heap.records;
    let fresh: Uint8Array<ArrayBuffer>;
    try {
      fresh = new Uint8Array(heap.chunks[r.chunk[moved]].chunk.buffer, r.start[moved], newSize);
      intrinsic.set(fresh, intrinsic.uint8Array(buffer, r.start[id], Math.min(r.requested[id], newSize)));
    } catch (error) {
      this.#transferred(error, "resize", newSize, peak);
    }
    this.#release(id, "FreeListAllocator.resize() moved it", "resize");
    return fresh;
  }

  /** Whether `view` lies in a live block (or is a live handle's view). */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.over) return false;
    const buffer = bufferOf(view) as ArrayBuffer;
    const handle = handleOf(buffer);
    if (handle !== undefined) return handle.owner === this && !handle.freed;
    const index = this.#heap.chunkOf.get(buffer);
    if (index === undefined) return false;
    const id = this.#heap.containing(index, offsetOf(view));
    const r = this.#heap.records;
    return id !== -1 && (r.flags[id] & USED) !== 0 && offsetOf(view) < r.start[id] + r.requested[id];
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
    const heap = this.#heap;
    const r = heap.records;
    const started = performance.now();
    heap.flushQuick(); // cached blocks become mergeable free space
    const before = heap.freeSummary();
    let total = 0;
    for (const handle of this.#handles) {
      // A handle whose view was transferred away stays where it is, as if pinned.
      if (handle !== undefined && handle.pins === 0 && !isStolen(handle)) total += r.requested[handle.id];
    }
    let movedBytes = 0, movedBlocks = 0;
    const leases = this.#leases;
    const compact = () => {
      this.#defragmenting = true;
      heap.noCache = true;
      try {
        for (const heapChunk of heap.chunks) {
          let bytes: Uint8Array<ArrayBuffer>;
          try {
            bytes = new Uint8Array(heapChunk.chunk.buffer);
          } catch (error) {
            this.#defragmenting = false;
            this.#transferred(error, "defragment");
          }
          let id = heapChunk.first;
          while (id !== -1) {
            const next = r.nextPhys[id];
            if (r.flags[id] === FREE && next !== -1 && r.flags[next] === (USED | HANDLE)) {
              const handle = this.#handles[next]!;
              if (handle.pins === 0 && !isStolen(handle) && this.#told(heapChunk.chunk.address, next, handle)) {
                heap.slideDown(heapChunk, id, next, bytes);
                detachHandle(handle); // its old views point at the old place
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
        heap.noCache = false;
      }
    };
    // Holders of a handle's bytes (a chain over them) are told of its move, and what they give back waits until
    // the compaction is done (see withChange).
    if (leases.leased !== 0) withChange(compact);
    else compact();
    const after = heap.freeSummary();
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
    const heap = this.#heap;
    const ended = this.#ledger.over;
    const free = ended ? { largest: 0, fragmentation: 0 } : heap.freeSummary();
    const capacity = ended ? 0 : heap.capacityBytes;
    const available = ended ? 0 : heap.freeBytes;
    return this.#ledger.stats({
      capacityBytes: capacity,
      availableBytes: available,
      largestFreeBlock: free.largest,
      freeBlocks: free.fragmentation,
      // Rounding to the 16-byte granule and alignment gaps too small to list.
      overheadBytes: capacity - available - this.#ledger.allocatedBytes,
    });
  }

  /**
   * The heap's chunks and every block in them (cached free blocks count as free) as a versioned JSON description: chunks and their blocks (offset,
   * size, free or used, owner). See {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    this.#ledger.guard("dump the FreeListAllocator");
    const r = this.#heap.records;
    return makeDump(
      this.stats(),
      this.#heap.chunks.map(({ chunk, first }) => {
        const blocks: RawBlock[] = [];
        for (let id = first; id !== -1; id = r.nextPhys[id]) {
          const free = (r.flags[id] & (FREE | CACHED)) !== 0;
          const owner = r.flags[id] & HANDLE ? "handle" : null;
          blocks.push({ offset: r.start[id], size: r.size[id], free, requested: r.requested[id], owner });
        }
        return { address: chunk.address, size: chunk.size, blocks };
      }),
    );
  }

  /**
   * Returns every chunk to the backing; every view and handle it handed out
   * reads as length 0 / throws "use-after-free", as does every later call. A
   * second call does nothing.
   * @throws {AllocationError} When the backing refuses to take a chunk back (the backing's category: "invalid-free"
   * from a StackAllocator with a newer block on top of it), after everything else is done: the allocator is
   * disposed all the same, every view reads as length 0, every other chunk went back, and the refused ones stay
   * allocated in the backing, its own to free.
   */
  dispose(): void {
    this.#ledger.refuseWhileBusy("dispose"); // code its backing runs cannot end it halfway through a call
    if (!this.#ledger.end("was disposed")) return;
    this.#leases.releasedAll("FreeListAllocator.dispose() released it");
    this.#teardown();
    this.#source.giveAll(false);
  }

  /** Same as {@linkcode FreeListAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------------------------------------------------------------- internals

  // A detached buffer where a live one was expected: when one of this
  // allocator's buffers was transferred away, it ends and throws "corruption".
  #theftFound(op: string): void {
    if (this.#source.anyTransferred()) this.#transferred(null, op);
  }

  // A view could not be made over one of this allocator's buffers because
  // someone transferred it away: the allocator ends (the memory another
  // buffer may reach is never freed) and says so. Any other error passes on.
  // An allocation counted before its view failed (`size` bytes, `peak` before) is taken back first.
  #transferred(error: unknown, op: string, size = 0, peak = 0): never {
    if (!this.#source.anyTransferred()) throw error;
    if (size !== 0) this.#ledger.retract(size, peak);
    this.#revoke(null, true);
    throw transferredError(op, "this FreeListAllocator's memory");
  }

  // The backing released a chunk (its reset, scope end, dispose): end here
  // too. On a theft the heap ends as "corruption" and keeps that memory.
  #revoke(reason: string | null, partial: boolean): void {
    if (!this.#ledger.lose(reason)) return;
    this.#leases.releasedAll(`the FreeListAllocator lost its memory (${reason ?? THEFT})`);
    this.#teardown();
    if (partial) this.#source.giveAll(true);
    else this.#source.detachAll();
  }

  #teardown(): void {
    this.#hotBuffer = null;
    for (const handle of this.#handles) if (handle !== undefined) detachHandle(handle);
    this.#handles.length = 0;
    this.#ledger.freedAll();
  }

  #usable(op: string): void {
    this.#ledger.guard(op);
    if (this.#defragmenting) {
      throw new AllocationError("unsupported", `Cannot ${op} during defragment(): blocks are being moved`);
    }
  }

  // Finds, splits and marks a block, growing the heap when none fits; its id, or -1.
  #allocate(size: number, align: number, kind: number): number {
    const heap = this.#heap;
    let id = heap.take(size, align, kind);
    if (id === -1) {
      if (this.#grow(heap.searchSize(size, align))) id = heap.take(size, align, kind);
      if (id === -1) return -1;
    }
    this.#ledger.allocated(size);
    return id;
  }

  // Frees a used block (telling a lease holder first) and merges it; false, keeping it allocated for good, when
  // the holder of a lease on it (a child allocator, an array) found as it let go that a buffer over its memory
  // was transferred away. `op` is the public call, for its refusal when the holder's code ended the heap.
  #release(id: number, reason: string, op = "free"): boolean {
    if (this.#leases.leased !== 0 || anyTaken()) return this.#releaseTold(id, reason, op);
    const heap = this.#heap;
    this.#ledger.freed(heap.records.requested[id]);
    heap.release(id);
    return true;
  }

  // #release of a block a holder may lease, or a transferred buffer reach (off the hot path): the holder is told
  // first, the heap busy meanwhile, and what it gives back waits until the block is freed (see beginChange).
  #releaseTold(id: number, reason: string, op: string): boolean {
    const heap = this.#heap;
    const r = heap.records;
    const address = heap.chunks[r.chunk[id]].chunk.address + r.start[id];
    const size = r.requested[id];
    beginChange();
    try {
      if (this.#leases.leased !== 0) tellFreed(this.#ledger, op, this.#leases, address, reason, size);
      if (!mayRelease(address, size)) return false;
      this.#ledger.freed(size);
      heap.release(id);
      return true;
    } finally {
      endChange();
    }
  }

  #handleView(handle: HandleState): Uint8Array<ArrayBuffer> {
    const id = handle.id;
    const r = this.#heap.records;
    const chunk = this.#heap.chunks[r.chunk[id]].chunk;
    if (isDetached(chunk.buffer)) this.#theftFound("read the bytes of a Handle");
    // SAFETY: the handle's block lies in a chunk the heap holds; a move, free or dispose detaches this buffer first.
    const address = chunk.address + r.start[id];
    const buffer = native.wrap(address, r.requested[id]);
    return tagHandleView(new Uint8Array(buffer), handle, address, r.requested[id]);
  }

  // Before handle `id` (in the chunk at `chunkAddress`) moves: a holder of its bytes (a chain an Allocator in
  // JavaScript built over them) is told, as the handle's free tells it (its views read as length 0), the heap busy
  // meanwhile. False when a buffer over that memory was transferred away (the holder may have just found it): the
  // memory is kept, so the handle stays where it is for good, as one whose own view was transferred.
  #told(chunkAddress: number, id: number, handle: HandleState): boolean {
    const leases = this.#leases;
    if (leases.leased === 0 && !anyTaken()) return true;
    const address = chunkAddress + this.#heap.records.start[id];
    const size = this.#heap.records.requested[id];
    if (leases.leased !== 0) {
      tellFreed(this.#ledger, "defragment", leases, address, "FreeListAllocator.defragment() moved it", size);
    }
    if (mayRelease(address, size)) return true;
    handle.stolen = true;
    return false;
  }

  #freeHandle(handle: HandleState): void {
    this.#usable("free a handle");
    if (isStolen(handle)) throw transferredError("free", "a Handle of this FreeListAllocator"); // it stays allocated
    handle.freed = true;
    detachHandle(handle);
    this.#handles[handle.id] = undefined;
    this.#release(handle.id, "its Handle was freed", "free a Handle");
  }

  #grow(needed: number): boolean {
    if (this.#growth === "fixed") {
      this.#ledger.fail(
        "out-of-memory",
        `no free block of ${needed} bytes in its ${this.#heap.capacityBytes} bytes, and growth is fixed`,
      );
      return false;
    }
    const chunks = this.#heap.chunks;
    const held = this.#heap.capacityBytes;
    const last = chunks.length ? chunks[chunks.length - 1].chunk.size : this.#capacity;
    const planned = plannedChunkSize(this.#growth, this.#capacity, last, held);
    // A planned chunk above what one ArrayBuffer holds (4 GiB in Bun) could never be viewed: plan at most that.
    const viewable = Math.max(roundToPage(needed), Math.floor(native.maxViewBytes / native.pageSize) * native.pageSize);
    const size = capChunkSize(
      Math.max(Math.min(planned, viewable), roundToPage(needed)),
      needed,
      held,
      this.#maxCapacity,
    );
    if (size < 0) {
      this.#ledger.fail(
        "limit-exceeded",
        `a ${roundToPage(needed)}-byte chunk would exceed maxCapacity (${this.#maxCapacity} bytes, ${held} held)`,
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
    this.#heap.addChunk(chunk);
    return true;
  }

  // The used, non-handle block `view` starts; -1 for an empty view; throws otherwise.
  #blockOf(view: ArrayBufferView, op: "free" | "resize"): number {
    checkView(view, op);
    this.#ledger.guard(op);
    if (isEmptyView(view)) return -1;
    const buffer = bufferOf(view) as ArrayBuffer;
    const heap = this.#heap;
    const index = buffer === this.#hotBuffer ? this.#hotIndex : heap.chunkOf.get(buffer);
    if (index !== undefined) {
      const offset = offsetOf(view);
      // A view over a chunk's buffer that someone transferred away (its offset reads 0).
      if (offset === 0 && isDetached(buffer)) this.#theftFound(op);
      this.#hotBuffer = buffer;
      this.#hotIndex = index;
      const r = heap.records;
      // A block's start. (An empty view there is that block's too: alloc(0) views have buffers of their own.)
      const id = heap.chunks[index].used.get(offset);
      if (id !== -1) {
        if (r.flags[id] & HANDLE) throw handleBlockError(view, op, "block");
        return id;
      }
      const at = heap.containing(index, offsetOf(view));
      if (at !== -1 && (r.flags[at] === FREE || r.flags[at] === CACHED)) {
        throw new AllocationError(
          op === "free" ? "double-free" : "use-after-free",
          `Cannot ${op} ${describe(view)} at offset ${offsetOf(view)}: that memory is already free`,
        );
      }
      throw new AllocationError(
        "invalid-free",
        `Cannot ${op} ${describe(view)} at offset ${offsetOf(view)}: it starts inside a block, not at its first byte`,
      );
    }
    // Only this heap's own Handle: another heap's is a block of another allocator, as any of its blocks is.
    if (handleOf(buffer)?.owner === this && !buffer.detached) throw handleBlockError(view, op, "view");
    throw foreignBlockError(view, op, this, "FreeListAllocator");
  }
}

// A live Handle's block named by a view passed to the heap's free or resize: the Handle owns it, so the heap
// refuses, with the advice that fits the operation (a Handle has free() but no resize()).
function handleBlockError(view: ArrayBufferView, op: "free" | "resize", what: "block" | "view"): AllocationError {
  const advice = op === "free"
    ? "free it with handle.free()"
    : "a Handle cannot be resized: allocate a new one with heap.handle(newSize), copy the bytes over, then call " +
      "handle.free() on the old one";
  return new AllocationError("invalid-free", `Cannot ${op} ${describe(view)}: it is a Handle's ${what}; ${advice}`);
}
