/**
 * Chunked bump allocation with `using` scopes.
 *
 * @module
 */
import { intrinsic } from "../../ffi/boundary.ts";
import { createStamp } from "../base/_stamp.ts";
import { anyTaken, THEFT, transferredError } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { ScopeHandle, type ScopeRecord } from "./_arena_scope.ts";
import { BumpCursor } from "./_bump_cursor.ts";
import { ChunkSource } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import { beginChange, endChange, LeaseTable, registerLeases } from "./_lease.ts";
import { resizeLastTold, rollBackTold, tellReset, tellScopeEnd } from "./_arena_holders.ts";
import {
  claimRefusal,
  claimUnderway,
  type Hooks,
  nextScopeSerial,
  notifyAlloc,
  notifyExits,
  notifyFree,
  notifyScopeEnter,
  readHooks,
  scopeHeldByClaim,
} from "./_arena_observers.ts";
import { Ledger } from "./_ledger.ts";
import { foreignBlockError, registerOwner } from "./_ownership.ts";
import {
  bufferOf,
  checkAlignment,
  checkSize,
  checkTypedArrayConstructor,
  checkView,
  describe,
  intrinsicConstructorOf,
  isDetached,
  lengthOf,
  MAX_BLOCK_SIZE,
  offsetOf,
  refuseArguments,
} from "../base/_validate.ts";
import type { Allocator, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { type AllocatorDump, makeDump, type RawBlock } from "./dump.ts";
import { addressOf } from "../base/native_info.ts";
import { parseArenaOptions, parseResetMode } from "./_arena_options.ts";
import type {
  ArenaGrowth,
  ArenaObserver,
  ArenaOptions,
  ArenaResetMode,
  ArenaScope,
  ArenaScopeStats,
  ArenaStats,
} from "./arena_types.ts";

// Each ArrayBuffer an arena makes carries the arena here: a property lookup
// instead of a Map, whose set+delete churn costs O(entries) in V8 and JSC.
const ARENAS = createStamp<Arena>(); // a private slot: no caller can mark a buffer

function mark(buffer: ArrayBuffer, arena: Arena): ArrayBuffer {
  ARENAS.set(buffer, arena);
  return buffer;
}

function ownsBuffer(arena: Arena, buffer: ArrayBufferLike): boolean {
  return ARENAS.get(buffer) === arena && !isDetached(buffer);
}

// The memory interface's temporary fast path (src/hal), not part of the API:
// a block carved and rolled back without what `tryAlloc` and `free` check
// again (the interface has checked the size and keeps the block's number in
// its record). Set in the class's static block, where the private fields are
// in reach.
/** The number of the block `carveBlock` returned last (see `rollBackBlock`). */
export let carvedSerial = 0;
/**
 * A block of `size` bytes (an integer from 1 to MAX_BLOCK_SIZE, checked by
 * the caller) at the arena's default alignment, as `tryAlloc` gives it, its
 * number in `carvedSerial`; null (nothing done) when the arena needs its full
 * path: timing, observers, an end, a theft found, or a block that does not
 * fit the current chunk or segment (the caller then asks `tryAlloc`).
 * Its view is not the one `free` rolls back: only `rollBackBlock` does.
 */
export let carveBlock: (arena: Arena, size: number) => Uint8Array<ArrayBuffer> | null;
/**
 * Rolls back the block numbered `serial` (a `carvedSerial`) when it is still
 * the most recent one, as `free` of it would; false (nothing done) otherwise
 * (`free(view)` then does what it does for any other block).
 */
export let rollBackBlock: (arena: Arena, serial: number) => boolean;
/** Whether the arena ended (disposed, or a transferred buffer found): for the memory interface's frames. */
export let arenaEnded: (arena: Arena) => boolean;
/** Whether the arena ended for good (not only busy while it calls its backing): for the thread's arena. */
export let arenaOver: (arena: Arena) => boolean;

/**
 * What `dispose()` of a live arena (and `reset()` of any) throws now, or null: a claim under way (see
 * `claiming`). For an owner that must refuse before changing anything of its own (the memory interface).
 */
export function bulkReleaseRefusal(op: string): AllocationError | null {
  return claimUnderway() ? claimRefusal(op) : null;
}

/**
 * A bump allocator over native chunks: `alloc` carves the next aligned bytes
 * of the current chunk as a view (tens of nanoseconds, no FFI call), and
 * memory comes back all at once, when a scope ends or on `reset()`. `free` of
 * the most recent block rolls it back; other frees are counted and ignored.
 *
 * Chunks returned to the backing are always detached first. With `safety`
 * (the default), views into memory released by a scope's end or `reset()`
 * are detached too (length 0): allocations are views into ArrayBuffers of
 * their own (segments) that cover what is allocated, not the chunk, because
 * Bun's cost of making and detaching one grows with its size. A scope's first
 * segment is the size the previous scope used, and each further one doubles,
 * so a scope of a frame loop costs one segment (about 0.5–0.8 µs here in both
 * runtimes, whatever the capacity) and a scope that allocates nothing costs
 * none. A block that does not fit the rest of a segment gets a new segment
 * from the allocation point, so an arena holds as much with safety as
 * without. With `safety: false` each chunk has one ArrayBuffer and allocations
 * are views into it; released views stay readable and see whatever is
 * allocated there next. The block rolled back by `free` is never detached:
 * it is the next one handed out.
 *
 * Only the view the arena handed out for the most recent block (what `alloc`,
 * `tryAlloc`, `array`, `clone` or an in-place `resize` returned) rolls it
 * back or resizes it in place: a view kept from a block rolled back before
 * starts at the same byte once that place is handed out again, and must never
 * free the block living there.
 *
 * Scopes are one LIFO stack per arena: two async tasks that each open a scope
 * and `await` inside it end each other's scopes (the earlier-opened scope's
 * end also ends the later one, whose views then read as length 0). Use one
 * arena per concurrent task.
 *
 * An allocation larger than the next chunk would be gets a chunk of its own,
 * and the current chunk stays current, so small allocations after a huge one
 * still use the space left before it.
 *
 * @example Temporaries in a scope
 * ```ts
 * import { Arena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena({ capacity: 1 << 20 });
 * for (let iteration = 0; iteration < 3; iteration++) {
 *   using _scope = arena.scope();
 *   const a = arena.array(Float64Array, 1000);
 *   const b = arena.clone(a);
 *   b.fill(iteration);
 * } // everything from the iteration is released here
 * assert.equal(arena.stats().allocatedBytes, 0);
 * arena.dispose(); // return the chunks
 * ```
 */
export class Arena implements Allocator, Disposable {
  /** Always `"arena"`. */
  readonly kind = "arena" as const;
  readonly #leases = new LeaseTable();
  readonly #ledger = new Ledger("arena", "Arena");
  readonly #at: BumpCursor;
  readonly #growth: ArenaGrowth;
  readonly #alignment: "natural" | number;
  readonly #defaultAlign: number;
  readonly #timing: boolean;
  readonly #safety: boolean;
  readonly #scopes: ScopeRecord[] = [];
  #observers: Hooks[] = [];
  #totalBytes = 0;
  #ignoredFrees = 0;
  #timedNs = 0;
  #timedCount = 0;

  /**
   * Creates an arena and takes its first chunk from the backing.
   *
   * @param options Capacity, growth, alignment, limits, backing, timing, safety.
   * @throws {TypeError} For options of the wrong type or unknown keys.
   * @throws {RangeError} For an out-of-range capacity or alignment.
   * @throws {AllocationError} "out-of-memory" when the first chunk cannot be had; "corruption" when the backing returns a block it must not.
   */
  constructor(options?: ArenaOptions) {
    if (options === undefined) options = {};
    registerLeases(this, this.#leases);
    const parsed = parseArenaOptions(options);
    this.#alignment = parsed.alignment;
    this.#defaultAlign = parsed.alignment === "natural" ? 16 : parsed.alignment;
    this.#growth = parsed.growth;
    const source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "Arena",
      this.#ledger,
      (reason, partial) => this.#revoke(reason, partial),
    );
    this.#at = new BumpCursor(
      source,
      this.#ledger,
      {
        policy: this.#growth,
        capacity: parsed.capacity,
        maxCapacity: parsed.maxCapacity,
        hasBacking: parsed.backing !== null,
      },
      (buffer) => mark(buffer, this),
      parsed.safety,
    );
    this.#timing = parsed.timing;
    this.#safety = parsed.safety;
    registerOwner(this, "arena", Arena.#holds);
    const first = this.#at.takeChunk(parsed.capacity);
    if (first === null) throw new AllocationError("out-of-memory", `Cannot create Arena: ${source.refusal}`);
    this.#at.adopt(first);
    this.#at.enter(0);
  }

  static {
    carveBlock = (arena: Arena, size: number): Uint8Array<ArrayBuffer> | null => {
      if (arena.#timing || arena.#observers.length !== 0 || arena.#ledger.ended !== null) return null;
      const at = arena.#at;
      if (at.covering.length !== 0 && at.coveringTaken()) return null; // tryAlloc ends the arena on it
      if (!at.bumpInPlace(size, arena.#defaultAlign)) return null;
      const peak = arena.#ledger.peakBytes;
      arena.#counted(size);
      let view: Uint8Array<ArrayBuffer>;
      try {
        view = new Uint8Array(at.lastBuffer!, at.lastOffset, size);
      } catch (error) {
        arena.#transferred(error, "allocate", size, peak);
      }
      carvedSerial = at.lastSerial;
      return view;
    };
    arenaEnded = (arena: Arena): boolean => arena.#ledger.ended !== null;
    arenaOver = (arena: Arena): boolean => arena.#ledger.over;
    rollBackBlock = (arena: Arena, serial: number): boolean => {
      const at = arena.#at;
      if (serial !== at.lastSerial || at.lastOversized !== null || arena.#observers.length !== 0) return false;
      if (arena.#leases.leased !== 0 || arena.#ledger.ended !== null) return false;
      arena.#ledger.freed(at.lastSize);
      at.rollBack();
      return true;
    };
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    return ownsBuffer(owner as Arena, buffer);
  }

  /**
   * Allocates `size` bytes, aligned to `align` or the arena's default.
   * @throws {TypeError} When size or align is not a number.
   * @throws {RangeError} When size or align is out of range.
   * @throws {AllocationError} "out-of-memory" (fixed growth or null backing, or the backing refused), "limit-exceeded" (`maxCapacity`), "use-after-free" after `dispose()`.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode Arena.alloc}, but `null` when the arena cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    const started = this.#timing ? performance.now() : 0;
    if (!Number.isInteger(size) || size < 0 || size > MAX_BLOCK_SIZE) checkSize(size, "allocate");
    const a = align === undefined ? this.#defaultAlign : checkAlignment(align, "allocate", native.pageSize);
    const view = this.#carve(size, a);
    if (view === null) return null;
    if (this.#timing) this.#timed(started);
    if (this.#observers.length !== 0 && size !== 0) notifyAlloc(this.#observers, view, a);
    return view;
  }

  /** A typed array of `length` elements, aligned to its element size under the "natural" policy (never less). */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
    if (!Number.isInteger(length) || length < 0 || length > MAX_BLOCK_SIZE / bytesPerElement) {
      checkSize(length, "allocate an array", "length", Math.floor(MAX_BLOCK_SIZE / bytesPerElement));
    }
    let a = align === undefined
      ? this.#arrayAlign(bytesPerElement)
      : checkAlignment(align, "allocate", native.pageSize);
    // A typed array cannot start between elements; a stricter alignment satisfies the request.
    if (a < bytesPerElement) a = bytesPerElement;
    if (this.#observers.length !== 0 || this.#timing) return this.#observedArray(ctor, length, bytesPerElement, a);
    // The common case makes one view, of the caller's type, and no other object.
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("allocate");
    const size = length * bytesPerElement;
    if (size === 0) return new ctor(new ArrayBuffer(0), 0, 0);
    const at = this.#at;
    if (!at.bump(size, a)) throw this.#ledger.failure(size, a);
    if (at.covering.length !== 0 && at.coveringTaken()) this.#theftFound("allocate");
    const peak = this.#ledger.peakBytes;
    this.#counted(size);
    try {
      const array = new ctor(at.lastBuffer!, at.lastOffset, length);
      at.lastView = array;
      return array;
    } catch (error) {
      this.#transferred(error, "allocate", size, peak);
    }
  }

  /**
   * A copy of `view` in the arena, of the same type (typed array or DataView).
   * @throws {TypeError} When `view` is not a typed array or DataView.
   */
  clone<T extends ArrayBufferView>(view: T): T {
    checkView(view, "clone");
    const buffer = bufferOf(view);
    const length = lengthOf(view);
    if (length === 0 && isDetached(buffer)) {
      throw new AllocationError(
        "use-after-free",
        "Cannot clone a view over a detached ArrayBuffer: its memory was already released",
      );
    }
    // The view's type from its internal slot (a subclass clones as its base type).
    const { ctor, bytesPerElement } = intrinsicConstructorOf(view);
    const align = this.#alignment === "natural" ? bytesPerElement : this.#defaultAlign;
    const source = intrinsic.uint8Array(buffer, offsetOf(view), length);
    const a = Math.max(align, bytesPerElement);
    const copy = this.#timedCarve(length, a);
    intrinsic.set(copy, source);
    const result = ctor === Uint8Array
      ? copy
      : this.#retyped(copy, new ctor(copy.buffer, copy.byteOffset, length / bytesPerElement));
    // Observers hear of the block once the copy is made and is the block's own view (see observe()).
    if (this.#observers.length !== 0 && length !== 0) notifyAlloc(this.#observers, copy, a);
    return result as unknown as T;
  }

  /**
   * Frees a block: the most recent one, through the view the arena handed out
   * for it, is rolled back (its bytes reused); any other block, or the most
   * recent one through another view of it (a subarray, a view of another
   * type), is counted (`ignoredFrees`) and reclaimed at the next reset or
   * scope end.
   *
   * A view of memory no block holds is a double free: a block rolled back
   * (both settings), or released by a scope's end or `reset()` (with `safety`
   * its view is detached; without, it is refused while the place is still
   * free). Not caught: a view kept from a released block whose place was
   * handed out again is counted and ignored like any other (it cannot be told
   * from another view of the new block, which it never frees); without
   * `safety` it also still reads and writes that new block.
   *
   * Memory an ArrayBuffer transferred away (`buffer.transfer()`, a
   * postMessage transfer list) still reaches is never freed or reused: the
   * `free` of a block with a chunk of its own, or of any block but the most
   * recent, whose buffer was transferred throws "corruption" and the arena
   * ends, keeping that memory. The most recent block of a regular chunk is
   * rolled back without that check (it costs every `free`); the arena's next
   * allocation from that memory, the scope's end or `reset()` finds the
   * theft and ends it the same way before any of it is handed out again.
   * A most recent block that memory found transferred away reaches (found by
   * the block's holder, a child allocator over it, as the free tells it) is
   * not rolled back: the free throws "corruption", and the block stays
   * allocated (a later free of it is ignored) until the scope's end or
   * `reset()` ends the arena.
   * @throws {AllocationError} "invalid-free" (foreign view), "mismatched-allocator", "double-free" (memory already released), "corruption" (the block's buffer was transferred away: see above).
   */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("free");
    const at = this.#at;
    // Only the view handed out for the most recent block rolls it back: a view
    // kept from a block rolled back before starts at the same byte of the same
    // buffer once its place is handed out again, and must never free the new
    // owner.
    if (view === at.lastView) {
      // A chunk of its own whose buffer was transferred away (a scope's end or reset forgets the block
      // first): the arena ends and keeps that memory. (A block of a regular chunk is not checked here, to
      // keep this path lean: its memory is reached only through that buffer, and the next allocation from
      // it, the scope's end or reset finds the theft before handing any of it out.)
      if (at.lastOversized !== null && isDetached(at.lastOversized.buffer)) this.#theftFound("free");
      this.#rollBack(view);
      return;
    }
    const buffer = bufferOf(view) as ArrayBuffer;
    if (!ownsBuffer(this, buffer)) {
      if (lengthOf(view) === 0 && !buffer.detached && buffer.byteLength === 0) return; // an alloc(0) view
      // One of its live buffers transferred away, not released by the arena: "corruption", not a double free.
      if (ARENAS.get(buffer) === this) this.#theftFound("free");
      throw this.#unknownBlock(view, "free");
    }
    if (lengthOf(view) === 0) return; // alloc(0)'s views hold no memory
    if (this.#released(view, buffer)) {
      throw new AllocationError(
        "double-free",
        `Cannot free ${describe(view)}: its memory was already released (rolled back by a free, or by a scope's end ` +
          `or reset() with safety off) and no block holds it now`,
      );
    }
    this.#ignoredFrees++;
    if (this.#observers.length !== 0) notifyFree(this.#observers, view, false);
  }

  /**
   * Resizes a block. The most recent block, through the view the arena handed
   * out for it, grows or shrinks in place when its chunk has room (the
   * returned view is over the same memory; with `safety`, it may be over a
   * new segment from the block's start); any other block (or view) is copied
   * into a new one with at least the old one's alignment, and the old one is
   * reclaimed at the next reset or scope end. Its old size is taken to be
   * `view.byteLength`. A holder of the most recent block (a child allocator
   * whose chunk it is) is told of an in-place resize as of a free: its views
   * read as length 0 and it throws "use-after-free".
   * @throws {AllocationError} As for `free` ("use-after-free" for memory already released; "corruption" for an in-place resize of memory a transferred buffer reaches), and "out-of-memory" / "limit-exceeded" when a copy is needed and fails.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("resize");
    const buffer = bufferOf(view) as ArrayBuffer;
    // One of the arena's buffers transferred away: found before anything changes.
    if (isDetached(buffer)) this.#theftFound("resize");
    if (newSize === 0) {
      const empty = this.#at.empty();
      this.free(view); // last: its observers run once the resize is done
      return empty;
    }
    const at = this.#at;
    // In place only through the most recent block's own view (as for free).
    if (view === at.lastView) {
      const oldSize = at.lastSize;
      if (at.covering.length !== 0 && at.coveringTaken()) this.#theftFound("resize"); // growing hands out memory
      // A holder of the block (a child's chunk, passed on by an Allocator in JavaScript) is told before its memory
      // changes in place, and only then: a resize that cannot be made in place copies and leaves the block be.
      // The arena is busy while the holder is told, and what it gives back waits until the resize is made (see
      // beginChange).
      const resized = (this.#leases.leased !== 0 || anyTaken()) && at.fitsLast(newSize)
        ? resizeLastTold(
          this.#ledger,
          this.#leases,
          this.#at,
          view,
          oldSize,
          () => this.#resizeLast(view, oldSize, newSize),
        )
        : this.#resizeLast(view, oldSize, newSize);
      if (resized !== null) return resized;
    } else if (!ownsBuffer(this, buffer) && !(lengthOf(view) === 0 && buffer.byteLength === 0 && !buffer.detached)) {
      throw this.#unknownBlock(view, "resize");
    } else if (lengthOf(view) !== 0 && this.#released(view, buffer)) {
      throw new AllocationError(
        "use-after-free",
        `Cannot resize ${describe(view)}: its memory was already released (rolled back by a free, or by a scope's ` +
          `end or reset() with safety off) and no block holds it now`,
      );
    }
    const oldSize = lengthOf(view);
    // Keep the alignment the block has (its address's lowest set bit, up to a page).
    const address = oldSize > 0 ? addressOf(view) : 0;
    const align = Math.min(native.pageSize, address === 0 ? native.pageSize : address & -address);
    const a = Math.max(align, this.#defaultAlign);
    const fresh = this.#timedCarve(newSize, a);
    try {
      intrinsic.set(fresh, intrinsic.uint8Array(buffer, offsetOf(view), Math.min(oldSize, newSize)));
    } catch (error) {
      this.#transferred(error, "resize");
    }
    if (oldSize > 0) this.#ignoredFrees++;
    // Only now, with the copy made and counted: an observer that frees or resets sees a finished resize.
    if (this.#observers.length !== 0) notifyAlloc(this.#observers, fresh, a);
    return fresh;
  }

  /** Whether `view` points into memory this arena has handed out and not yet released. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.over) return false;
    // By address, so views made by a child allocator over this arena's memory count too.
    if (lengthOf(view) === 0 && (bufferOf(view) as ArrayBuffer).detached) return false;
    const address = addressOf(view);
    const at = this.#at;
    for (let i = 0; i <= at.index && i < at.chunks.length; i++) {
      const chunk = at.chunks[i];
      const offset = address - chunk.address;
      const used = i < at.index ? chunk.size : at.cursor;
      if (offset >= 0 && offset < used) return true;
    }
    for (const chunk of at.oversized) {
      if (address >= chunk.address && address < chunk.address + chunk.size) return true;
    }
    return false;
  }

  /** Counters, including fragmentation of the free space left in the chunks. */
  stats(): ArenaStats {
    const at = this.#at;
    const free: number[] = [];
    if (at.index >= 0) free.push(at.chunkSize - at.cursor);
    for (let i = at.index + 1; i < at.chunks.length; i++) free.push(at.chunks[i].size);
    const available = free.reduce((sum, f) => sum + f, 0);
    const stats: ArenaStats = {
      ...this.#ledger.stats({
        capacityBytes: at.capacityBytes,
        availableBytes: available,
        largestFreeBlock: free.length ? Math.max(...free) : 0,
        freeBlocks: free,
      }),
      chunks: at.chunks.length + at.oversized.length,
      scopeDepth: this.#scopes.length,
      ignoredFrees: this.#ignoredFrees,
    };
    if (this.#timing) stats.avgAllocationNs = this.#timedCount ? this.#timedNs / this.#timedCount : 0;
    return stats;
  }

  /**
   * The arena's chunks as a versioned JSON description (see
   * {@linkcode AllocatorDump}). An arena keeps no record of its allocations
   * (recording them would cost every `alloc`), so a regular chunk's used
   * part shows as ONE used block tagged `owner: "bump"`, a run of
   * allocations with their alignment padding, `requested` equal to its size:
   * from the chunk's start to the allocation point in the current chunk,
   * the whole of a chunk the arena moved on from (its unused tail is not
   * known); retained chunks after the current one are free. An allocation
   * with a chunk of its own (larger than the next chunk would be) is known
   * exactly: one used block, `owner` null, its size the chunk's (whole
   * pages). For one block per allocation, allocate through a
   * `DebugAllocator` over the arena and dump that.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    this.#ledger.guard("dump the Arena");
    const at = this.#at;
    const run = (used: number): RawBlock[] => [{ offset: 0, size: used, free: false, owner: "bump" }];
    return makeDump(this.stats(), [
      ...at.chunks.map((chunk, i) => ({
        address: chunk.address,
        size: chunk.size,
        blocks: i < at.index ? run(chunk.size) : i === at.index ? run(at.cursor) : [],
      })),
      ...at.oversized.map((chunk) => ({
        address: chunk.address,
        size: chunk.size,
        // Its requested size is known while it is the most recent block (the one free() rolls back).
        blocks: [{
          offset: 0,
          size: chunk.size,
          free: false,
          requested: chunk === at.lastOversized ? at.lastSize : chunk.size,
          owner: null,
        }],
      })),
    ]);
  }

  /**
   * Opens a scope: everything allocated until it ends is released together.
   * Use it with `using`, or call `end()`. Ending a scope also ends every scope
   * opened after it and still open.
   *
   * Scopes are one LIFO stack per arena, not per task: two async tasks that
   * each open a scope and `await` inside it end each other's scopes (when the
   * earlier-opened one ends first, the later one ends with it, and its views
   * read as length 0 while its task still uses them). Use one arena per
   * concurrent task.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  scope(): ArenaScope {
    refuseArguments(arguments.length, "open a scope", "`using _scope = arena.scope();` ends it with its block");
    this.#ledger.guard("open a scope");
    const handle: ScopeHandle = new ScopeHandle(
      this.#scopes.length + 1,
      (h) => this.#endScope(h),
      (h) => this.#scopeStats(h),
    );
    const at = this.#at;
    this.#scopes.push({
      handle,
      // The allocation point, in the record itself (one object per scope).
      index: at.index,
      cursor: at.cursor,
      buffer: at.buffer,
      bufferBase: at.bufferBase,
      limit: at.limit,
      oversized: at.oversized.length,
      segments: at.segments.length,
      covering: at.covering.length,
      live: this.#ledger.live,
      allocatedBytes: this.#ledger.allocatedBytes,
      totalAllocations: this.#ledger.totalAllocations,
      totalBytes: this.#totalBytes,
      startedAt: performance.now(),
      serial: nextScopeSerial(),
    });
    at.forgetLast();
    if (this.#safety) at.closeBufferHere(); // the scope's first allocation opens its first segment
    if (this.#observers.length !== 0) notifyScopeEnter(this.#observers, handle);
    return handle;
  }

  /**
   * Releases every allocation at once (ending open scopes), and keeps or
   * returns chunks by `mode`: those kept are the oldest, and those returned
   * go back newest first (as a StackAllocator backing takes them). Chunks
   * returned are detached first; with `safety`, every view into the arena
   * is detached. When one of its
   * buffers was transferred away, the arena ends instead (keeping that
   * memory; later calls throw "corruption").
   * @param mode "free-all", "retain-capacity" (default) or `{ retainLimit }`.
   * @throws {TypeError} For a mode that is none of those, or an object with a key other than `retainLimit`; {RangeError} for a bad `retainLimit`.
   * @throws {AllocationError} "use-after-free" after `dispose()`; "unsupported" from an `onAlloc` observer told of a block another allocator is taking (see {@linkcode Arena.observe}).
   */
  reset(mode?: ArenaResetMode): void {
    if (mode === undefined) mode = "retain-capacity";
    const parsed = parseResetMode(mode);
    this.#ledger.guard("reset");
    if (claimUnderway()) throw claimRefusal("reset an Arena");
    // Holders of the memory it releases are told in the middle of the reset, and what they give back waits until
    // it is made (see beginChange).
    const changing = this.#leases.count !== 0;
    if (this.#scopes.length === 0 || this.#observers.length === 0) {
      if (!changing) {
        this.#reset(parsed, null);
        return;
      }
      beginChange();
      try {
        this.#reset(parsed, null);
      } finally {
        endChange();
      }
      return;
    }
    // The scopes it ends are told once the reset is done (or threw): an observer that allocates or opens a
    // scope then does so in the reset arena, not in the middle of it.
    const exits: ScopeHandle[] = [];
    if (changing) beginChange();
    try {
      this.#reset(parsed, exits);
    } finally {
      if (changing) endChange();
      notifyExits(this.#observers, exits);
    }
  }

  #reset(parsed: ReturnType<typeof parseResetMode>, exits: ScopeHandle[] | null): void {
    while (this.#scopes.length) this.#endScope(this.#scopes[this.#scopes.length - 1].handle, exits);
    if (this.#ledger.ended !== null) return; // a scope's end found a theft: the arena ended, keeping its memory
    const at = this.#at;
    // One of its buffers transferred away (a chunk of its own, or with safety off any chunk): the arena ends
    // and keeps that memory, rather than return it or hand it out again.
    if (at.anyTransferred()) {
      this.#revoke(null, true);
      return;
    }
    // With safety every view is over a segment or an oversized chunk's buffer:
    // all detached now, before any chunk goes back (rule 1).
    if (this.#safety) at.detachAll();
    if (this.#leases.count !== 0) tellReset(this.#ledger, this.#leases, this.#at);
    at.absorbOversized();
    // A backing that throws as a chunk goes back (that chunk is then the backing's: forgotten here) still leaves
    // the arena reset and usable; its error comes after.
    let failure: { error: unknown } | null = null;
    try {
      let keep = at.chunks.length;
      if (parsed === "free-all") keep = 0;
      else if (typeof parsed === "object") {
        let bytes = 0;
        keep = 0;
        while (keep < at.chunks.length && bytes + at.chunks[keep].size <= parsed.retainLimit) {
          bytes += at.chunks[keep++].size;
        }
      } else if (this.#growth === "adaptive" && at.chunks.length > 1) {
        // Merge: the next cycle runs in one chunk of everything the last one needed.
        const total = at.capacityBytes;
        at.releaseChunks(0);
        const merged = at.takeChunk(total);
        if (merged !== null) at.adopt(merged);
        keep = at.chunks.length;
      }
      at.releaseChunks(keep);
    } catch (error) {
      failure = { error };
    }
    this.#ledger.freedAll();
    at.forgetLast(); // the most recent block is gone: free() must not roll back to it
    if (at.chunks.length) at.enter(0);
    else at.clear();
    // Memory a transferred buffer may reach (found by the detaches above, or
    // anywhere below) must never be handed out again.
    if (at.reusesTaken()) this.#revoke(null, true);
    if (failure !== null) throw failure.error;
  }

  /**
   * Returns every chunk to the backing; every view the arena handed out
   * reads as length 0 and every later call but `owns` and `stats` throws "use-after-free". A second
   * call does nothing.
   * @throws {AllocationError} When the backing refuses to take a chunk back (the backing's category: "invalid-free"
   * from a StackAllocator with a newer block on top of it), after everything else is done: the allocator is
   * disposed all the same, every view reads as length 0, every other chunk went back, and the refused ones stay
   * allocated in the backing, its own to free.
   * @throws {AllocationError} "unsupported" from an `onAlloc` observer told of a block another allocator is taking (see {@linkcode Arena.observe}).
   */
  dispose(): void {
    if (claimUnderway() && this.#ledger.ended === null) throw claimRefusal("dispose an Arena");
    this.#ledger.refuseWhileBusy("dispose"); // code its backing runs cannot end it halfway through a call
    if (!this.#ledger.end("was disposed")) return;
    this.#leases.releasedAll("Arena.dispose() released it");
    this.#teardown();
    this.#at.drain();
    this.#at.source.giveAll(false);
  }

  /** Same as {@linkcode Arena.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Registers callbacks (each read once, now); returns a function that
   * unregisters them. Callbacks run after the whole public call they observe
   * is complete and its result final: `clone` and a copying `resize` tell
   * `onAlloc` once the copy is made, `array` once its typed view is made, a
   * scope's end (and `reset`) tells `onScopeExit` once every scope it ends has
   * ended. What a callback then does (free the block it is told about, reset,
   * allocate, open a scope) is an ordinary call after that one. One that
   * throws does not undo the operation or reach its caller: the error is
   * printed with `console.error`.
   *
   * `onAlloc` gets a Uint8Array over the block's bytes and its alignment. For
   * `alloc`, `tryAlloc`, a copying `resize`, `array(Uint8Array, …)` and
   * `clone` of a Uint8Array it is the view returned; for `array` and `clone`
   * of another type it is a second view of the same bytes, so freeing it is
   * a free through another view (counted in `ignoredFrees`, not rolled back).
   *
   * When the arena is another allocator's backing (a `StackAllocator`,
   * `PoolAllocator`, `FreeListAllocator`, `BuddyAllocator`, `Arena` or
   * `DebugAllocator` taking a chunk, a `DynamicArray` its storage), `onAlloc`
   * runs inside that allocator's call, before it has claimed the block: it
   * then always gets a second view (its free is counted, never a roll back),
   * and while it runs `reset()`, `dispose()` and the end of a scope opened
   * before it, on any arena, throw "unsupported" and change nothing (they
   * would hand that block out again under the allocator). Once the
   * allocator's call has returned, a reset reaches its chunk through the
   * chain as usual (the allocator ends, its views read as length 0).
   * @throws {TypeError} When `observer` is not an object, or one of its hooks is neither a function nor undefined.
   */
  observe(observer: ArenaObserver): () => void {
    const entry = readHooks(observer);
    this.#observers = [...this.#observers, entry];
    return () => {
      this.#observers = this.#observers.filter((o) => o !== entry);
    };
  }

  // ---------------------------------------------------------------- internals

  #rollBack(view: ArrayBufferView): void {
    const at = this.#at;
    if (this.#leases.leased !== 0 || anyTaken()) rollBackTold(this.#ledger, this.#leases, at, view);
    else {
      this.#ledger.freed(at.lastSize);
      at.rollBack();
    }
    if (this.#observers.length !== 0) notifyFree(this.#observers, view, true);
  }

  // Resizes the most recent block (its view `view`, `oldSize` bytes) in place to `newSize`; null when it cannot.
  #resizeLast(view: ArrayBufferView, oldSize: number, newSize: number): Uint8Array<ArrayBuffer> | null {
    const at = this.#at;
    if (view !== at.lastView || !at.resizeLast(newSize)) return null;
    this.#ledger.resized(oldSize, newSize);
    this.#totalBytes += Math.max(0, newSize - oldSize);
    // Grown past its segment (safety), the block's view is over a new segment from its start.
    if (at.covering.length !== 0 && at.coveringTaken()) this.#theftFound("resize");
    let resized: Uint8Array<ArrayBuffer>;
    try {
      resized = new Uint8Array(at.lastBuffer!, at.lastOffset, newSize);
    } catch (error) {
      this.#transferred(error, "resize");
    }
    at.lastView = resized;
    return resized;
  }

  // A block of `size` bytes aligned to `a` (both checked), as the Uint8Array that is its own view, or null
  // when the arena cannot grow. Tells no observer: the public operation does, once its result is final.
  #carve(size: number, a: number): Uint8Array<ArrayBuffer> | null {
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("allocate");
    if (size === 0) return this.#at.empty();
    const at = this.#at;
    if (!at.bump(size, a)) return null;
    if (at.covering.length !== 0 && at.coveringTaken()) this.#theftFound("allocate");
    const peak = this.#ledger.peakBytes;
    this.#counted(size);
    let view: Uint8Array<ArrayBuffer>;
    try {
      view = new Uint8Array(at.lastBuffer!, at.lastOffset, size);
    } catch (error) {
      this.#transferred(error, "allocate", size, peak);
    }
    at.lastView = view;
    return view;
  }

  // #carve for the operations that allocate on the way (clone, resize): throws as alloc() does, timed as an
  // allocation when `timing` is on.
  #timedCarve(size: number, a: number): Uint8Array<ArrayBuffer> {
    const started = this.#timing ? performance.now() : 0;
    const view = this.#carve(size, a);
    if (view === null) throw this.#ledger.failure(size, a);
    if (this.#timing) this.#timed(started);
    return view;
  }

  // array() with observers or timing: the block as bytes, then its typed view; observers hear of it last.
  #observedArray<T extends TypedArray>(
    ctor: TypedArrayConstructor<T>,
    length: number,
    bytesPerElement: number,
    a: number,
  ): T {
    const bytes = this.#timedCarve(length * bytesPerElement, a);
    // A Uint8Array is handed out as the block's bytes themselves: the view observers get is the one returned.
    const array = (ctor as unknown) === Uint8Array
      ? bytes as unknown as T
      : this.#retyped(bytes, new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, length));
    if (this.#observers.length !== 0 && length !== 0) notifyAlloc(this.#observers, bytes, a);
    return array;
  }

  // The view an allocation hands out when it is not the Uint8Array #carve made (array(), clone()): it is the
  // block's own view, which free() rolls back.
  #retyped<T extends ArrayBufferView>(bytes: Uint8Array<ArrayBuffer>, view: T): T {
    if (this.#at.lastView === bytes) this.#at.lastView = view;
    return view;
  }

  // Whether a non-empty view of one of the arena's live buffers starts in memory no block holds (a block
  // rolled back, or with safety off released by a scope's end or reset): freeing it again is a double free.
  #released(view: ArrayBufferView, buffer: ArrayBuffer): boolean {
    const at = this.#at;
    // In the current buffer (the common case) by offsets, without the address.
    if (buffer === at.buffer) return at.bufferBase + offsetOf(view) >= at.cursor;
    return at.isFree(addressOf(view));
  }

  #counted(size: number): void {
    this.#ledger.allocated(size);
    this.#totalBytes += size;
  }

  #arrayAlign(bytesPerElement: number): number {
    return this.#alignment === "natural" ? bytesPerElement : this.#defaultAlign;
  }

  #timed(started: number): void {
    this.#timedNs += (performance.now() - started) * 1e6;
    this.#timedCount++;
  }

  // Ends every scope (their handles report their final statistics).
  #teardown(): void {
    this.#at.detachSegments();
    for (const record of this.#scopes.splice(0)) {
      record.handle.final = this.#scopeStats(record.handle, record);
      record.handle.active = false;
    }
    this.#ledger.freedAll();
  }

  // A detached buffer where a live one was expected: when one of this
  // allocator's buffers was transferred away, it ends and throws "corruption".
  #theftFound(op: string): void {
    if (this.#at.anyTransferred()) this.#transferred(null, op);
  }

  // A view could not be made over one of the arena's buffers because someone
  // transferred it away: the arena ends (the memory another buffer may reach
  // is never freed) and says so. Any other error passes on.
  // An allocation counted before its view failed (`size` bytes, `peak` before) is taken back first.
  #transferred(error: unknown, op: string, size = 0, peak = 0): never {
    if (!this.#at.anyTransferred()) throw error;
    if (size !== 0) {
      this.#ledger.retract(size, peak);
      this.#totalBytes -= size;
    }
    this.#revoke(null, true);
    throw transferredError(op, "this Arena's memory");
  }

  // The backing released a chunk (its reset, scope end, dispose): end here
  // too. On a theft (memory another buffer may reach would be reused) the
  // arena ends as "corruption" and keeps that memory.
  #revoke(reason: string | null, partial: boolean): void {
    if (!this.#ledger.lose(reason)) return;
    this.#leases.releasedAll(`the Arena lost its memory (${reason ?? THEFT})`);
    this.#teardown();
    this.#at.drain();
    if (partial) this.#at.source.giveAll(true);
    else this.#at.source.detachAll();
  }

  // Ends `handle` and the scopes opened after it. Their observers hear of it once all of them have ended
  // (an observer that opens a scope or allocates must not land between two of them); with `exits`, the
  // caller (reset) tells them once it is done, and the ended scopes are added there.
  #endScope(handle: ScopeHandle, exits: ScopeHandle[] | null = null): void {
    // A scope sits at its depth while open (scopes end innermost first), so ending one is O(1) at any
    // nesting, not a search from the outermost (quadratic when thousands of nested scopes end in turn).
    const at = handle.depth - 1;
    if (this.#scopes[at]?.handle !== handle) return;
    // Not while the arena grows or shrinks through its backing (code the backing runs ending this scope).
    this.#ledger.refuseWhileBusy("end an Arena scope");
    if (scopeHeldByClaim(this.#scopes[at].serial)) throw claimRefusal("end an Arena scope");
    const ended = exits ?? (this.#observers.length !== 0 ? [] : null);
    // Holders of the memory the scopes release are told in the middle of their end, and what they give back
    // waits until it is made (see beginChange).
    if (this.#leases.count === 0) this.#popScopes(at, ended);
    else {
      beginChange();
      try {
        this.#popScopes(at, ended);
      } finally {
        endChange();
      }
    }
    if (exits === null && ended !== null) notifyExits(this.#observers, ended);
  }

  // Ends the scopes from depth `at` + 1 on, innermost first (see #endScope), adding them to `ended`.
  #popScopes(at: number, ended: ScopeHandle[] | null): void {
    const cursor = this.#at;
    let clean = true;
    while (this.#scopes.length > at) {
      const record = this.#scopes.pop()!;
      record.handle.final = this.#scopeStats(record.handle, record);
      record.handle.active = false;
      if (this.#leases.count !== 0) tellScopeEnd(this.#ledger, this.#leases, cursor, record);
      this.#ledger.totalFrees += this.#ledger.live - record.live;
      this.#ledger.live = record.live;
      this.#ledger.allocatedBytes = record.allocatedBytes;
      clean = cursor.restore(record, this.#safety) && clean;
      if (ended !== null) ended.push(record.handle);
    }
    // Memory the scope released that a transferred buffer may reach must never be handed out again.
    if (!clean) this.#revoke(null, true);
  }

  #scopeStats(handle: ScopeHandle, found?: ScopeRecord): ArenaScopeStats {
    const record = found ?? this.#scopes[handle.depth - 1];
    return {
      allocations: this.#ledger.totalAllocations - record.totalAllocations,
      bytes: this.#totalBytes - record.totalBytes,
      lifetimeMs: performance.now() - record.startedAt,
    };
  }

  #unknownBlock(view: ArrayBufferView, op: "free" | "resize"): AllocationError {
    // Detached: released by a scope's end, reset() or free of a returned chunk.
    return foreignBlockError(view, op, this, "Arena");
  }
}
