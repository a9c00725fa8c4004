/**
 * Chunked bump allocation with `using` scopes.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { ScopeHandle, type ScopeRecord } from "./_arena_scope.ts";
import { type Chunk, ChunkSource, roundToPage } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import { LEASES, LeaseTable } from "./_lease.ts";
import { capChunkSize, plannedChunkSize } from "./_growth.ts";
import { Ledger } from "./_ledger.ts";
import { foreignBlockError, registerOwner } from "./_ownership.ts";
import {
  checkAlignment,
  checkSize,
  checkTypedArrayConstructor,
  checkView,
  describe,
  MAX_BLOCK_SIZE,
  parseOptions,
  powerOfTwo,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { addressOf } from "../base/native_info.ts";
import type {
  ArenaGrowth,
  ArenaObserver,
  ArenaOptions,
  ArenaResetMode,
  ArenaScope,
  ArenaScopeStats,
  ArenaStats,
} from "./arena_types.ts";

const GrowthSchema = z.enum(["fixed", "linear", "exponential", "adaptive"]);

const OptionsSchema = z.object({
  capacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
  growth: GrowthSchema.optional(),
  alignment: z.union([z.enum(["natural", "cache-line", "page"]), z.number()]).optional(),
  maxCapacity: z.number().int("must be an integer").min(1, "must be at least 1")
    .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`).optional(),
  backing: typeCheck<Allocator | null>(
    (v) => v === null || (typeof v === "object" && typeof (v as Allocator).alloc === "function"),
    "must be an Allocator or null",
  ).optional(),
  timing: z.boolean().optional(),
  safety: z.boolean().optional(),
}).strict();

const ResetSchema = z.union([
  z.enum(["free-all", "retain-capacity"]),
  z.object({
    retainLimit: z.number().int("must be an integer").min(0, "must be at least 0")
      .max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`),
  }).strict(),
]);

// Each ArrayBuffer an arena makes carries the arena here: a property lookup
// instead of a Map, whose set+delete churn costs O(entries) in V8 and JSC.
const ARENA = Symbol("memkit.arena");

function mark(buffer: ArrayBuffer, arena: Arena): ArrayBuffer {
  (buffer as unknown as Record<symbol, Arena>)[ARENA] = arena;
  return buffer;
}

function ownsBuffer(arena: Arena, buffer: ArrayBufferLike): boolean {
  return (buffer as unknown as Record<symbol, Arena | undefined>)[ARENA] === arena && !(buffer as ArrayBuffer).detached;
}

// Observers are notifications: one that throws must not undo or half-do the
// operation it observes, so its error is reported on its own.
function notify(call: () => void): void {
  try {
    call();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * A bump allocator over native chunks: `alloc` carves the next aligned bytes
 * of the current chunk as a view (tens of nanoseconds, no FFI call), and
 * memory comes back all at once, when a scope ends or on `reset()`. `free` of
 * the most recent block rolls it back; other frees are counted and ignored.
 *
 * Each chunk has one ArrayBuffer and allocations are views into it. Chunks
 * returned to the backing are always detached first. With `safety` (the
 * default), views into memory released by a scope's end or `reset()` are
 * detached too (length 0); with `safety: false` they stay readable and see
 * whatever is allocated there next, which saves about 1–2 µs per scope. The
 * block rolled back by `free` is never detached: it is the next one handed out.
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
  /** Leases on this arena's blocks (see _lease.ts). */
  readonly [LEASES]: LeaseTable = new LeaseTable();
  readonly #ledger = new Ledger("arena", "Arena");
  readonly #source: ChunkSource;
  readonly #growth: ArenaGrowth;
  readonly #capacity: number;
  readonly #maxCapacity: number;
  readonly #alignment: "natural" | number;
  readonly #defaultAlign: number;
  readonly #timing: boolean;
  readonly #safety: boolean;
  readonly #canGrow: boolean;
  readonly #nullBacking: boolean;

  // Invariants: #chunks are the regular chunks, used in order: those before
  // #index are full (or abandoned), #index is current, later ones are
  // retained and empty. #oversized holds chunks of one allocation each,
  // newest last. Every live block lies below the allocation point (#index,
  // #cursor) or in an oversized chunk.
  readonly #chunks: Chunk[] = [];
  readonly #oversized: Chunk[] = [];
  /** Safety segments: buffers over parts of chunks, detached when their scope ends. */
  readonly #segments: ArrayBuffer[] = [];
  readonly #scopes: ScopeRecord[] = [];
  #observers: ArenaObserver[] = [];

  // The allocation point: chunk index, offset in it, and the buffer views are
  // made from (the chunk's own, or a safety segment starting at #bufferBase).
  #index = -1;
  #cursor = 0;
  #chunkSize = -1;
  /** End (chunk offset) of the memory #buffer covers: the chunk's end, or a safety segment's. */
  #limit = -1;
  #buffer: ArrayBuffer | null = null;
  #bufferBase = 0;
  // The most recent block, which `free` rolls back: its buffer, its offset
  // there, its chunk offset (regular chunks) and size; #lastOversized when it
  // has a chunk of its own.
  #lastBuffer: ArrayBuffer | null = null;
  #lastOffset = 0;
  #lastStart = 0;
  #lastSize = 0;
  #lastOversized: Chunk | null = null;

  #capacityBytes = 0;
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
  constructor(options: ArenaOptions = {}) {
    const parsed = parseOptions(OptionsSchema, options, "create Arena");
    const pageSize = native.pageSize;
    let alignment: "natural" | number = 16;
    if (parsed.alignment === undefined || parsed.alignment === "natural") alignment = "natural";
    else if (parsed.alignment === "cache-line") alignment = 64;
    else if (parsed.alignment === "page") alignment = pageSize;
    else alignment = parseOptions(z.object({ alignment: powerOfTwo(pageSize) }), parsed, "create Arena").alignment;
    this.#alignment = alignment;
    this.#defaultAlign = alignment === "natural" ? 16 : alignment;
    this.#capacity = roundToPage(parsed.capacity ?? 1 << 20);
    this.#maxCapacity = parsed.maxCapacity ?? MAX_BLOCK_SIZE;
    if (this.#capacity > this.#maxCapacity) {
      throw new RangeError(
        `Cannot create Arena as 'capacity' (${this.#capacity} bytes in whole pages) must not exceed 'maxCapacity': ` +
          `current value is ${this.#maxCapacity}`,
      );
    }
    this.#growth = parsed.growth ?? "exponential";
    this.#nullBacking = parsed.backing === null;
    this.#canGrow = !this.#nullBacking && this.#growth !== "fixed";
    this.#source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "Arena",
      (reason, partial) => this.#revoke(reason, partial),
    );
    this.#timing = parsed.timing ?? false;
    this.#safety = parsed.safety ?? true;
    registerOwner(this, "arena", Arena.#holds);
    const first = this.#source.take(this.#capacity);
    if (first === null) throw new AllocationError("out-of-memory", `Cannot create Arena: ${this.#source.refusal}`);
    this.#adopt(first);
    this.#enterChunk(0);
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
  alloc(size: number, align?: number): Uint8Array {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode Arena.alloc}, but `null` when the arena cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    const started = this.#timing ? performance.now() : 0;
    if (!Number.isInteger(size) || size < 0 || size > MAX_BLOCK_SIZE) checkSize(size, "allocate");
    const a = align === undefined ? this.#defaultAlign : checkAlignment(align, "allocate", native.pageSize);
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("allocate");
    if (size === 0) return this.#empty();
    if (!this.#bump(size, a)) return null;
    const view = new Uint8Array(this.#lastBuffer!, this.#lastOffset, size);
    if (this.#observers.length !== 0) this.#notifyAlloc(view, a);
    if (this.#timing) this.#timed(started);
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
    if (this.#observers.length !== 0 || this.#timing) {
      const bytes = this.alloc(length * bytesPerElement, a);
      return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
    }
    // The common case makes one view, of the caller's type, and no other object.
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("allocate");
    const size = length * bytesPerElement;
    if (size === 0) return new ctor(new ArrayBuffer(0), 0, 0);
    if (!this.#bump(size, a)) throw this.#ledger.failure(size, a);
    return new ctor(this.#lastBuffer!, this.#lastOffset, length);
  }

  /**
   * A copy of `view` in the arena, of the same type (typed array or DataView).
   * @throws {TypeError} When `view` is not a typed array or DataView.
   */
  clone<T extends ArrayBufferView>(view: T): T {
    checkView(view, "clone");
    const length = view.byteLength;
    const bytesPerElement = (view as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    const align = this.#alignment === "natural" ? Math.max(bytesPerElement, 1) : this.#defaultAlign;
    const source = new Uint8Array(view.buffer, view.byteOffset, length);
    const copy = this.alloc(length, Math.max(align, bytesPerElement));
    copy.set(source);
    if (view instanceof Uint8Array && view.constructor === Uint8Array) return copy as unknown as T;
    if (view instanceof DataView) return new DataView(copy.buffer, copy.byteOffset, length) as unknown as T;
    const ctor = view.constructor as new (buffer: ArrayBufferLike, offset: number, length: number) => T;
    return new ctor(copy.buffer, copy.byteOffset, length / bytesPerElement);
  }

  /**
   * Frees a block: the most recent one is rolled back (its bytes reused);
   * others are counted (`ignoredFrees`) and reclaimed at the next reset or
   * scope end.
   * @throws {AllocationError} "invalid-free" (foreign view), "mismatched-allocator", "double-free" (memory already released, with `safety`).
   */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("free");
    const buffer = view.buffer as ArrayBuffer;
    if (this.#isLast(buffer, view)) {
      this.#rollBack("Arena.free() released it");
      if (this.#observers.length !== 0) this.#notifyFree(view, true);
      return;
    }
    if (!ownsBuffer(this, buffer)) {
      if (view.byteLength === 0 && !buffer.detached && buffer.byteLength === 0) return; // an alloc(0) view
      throw this.#unknownBlock(view, "free");
    }
    if (view.byteLength === 0) return; // alloc(0)'s views hold no memory
    this.#ignoredFrees++;
    if (this.#observers.length !== 0) this.#notifyFree(view, false);
  }

  /**
   * Resizes a block. The most recent block grows or shrinks in place when its
   * chunk has room (the returned view is over the same memory); any other
   * block is copied into a new one with at least the old one's alignment,
   * and the old one is reclaimed at the next reset or scope end. Its old
   * size is taken to be `view.byteLength`.
   * @throws {AllocationError} As for `free`, and "out-of-memory" / "limit-exceeded" when a copy is needed and fails.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    if (this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("resize");
    const buffer = view.buffer as ArrayBuffer;
    if (newSize === 0) {
      this.free(view);
      return this.#empty();
    }
    if (this.#isLast(buffer, view)) {
      const oversized = this.#lastOversized;
      if (oversized !== null ? newSize <= oversized.size : this.#lastStart + newSize <= this.#limit) {
        if (oversized === null) this.#cursor = this.#lastStart + newSize;
        this.#ledger.resized(this.#lastSize, newSize);
        this.#totalBytes += Math.max(0, newSize - this.#lastSize);
        this.#lastSize = newSize;
        return new Uint8Array(buffer, view.byteOffset, newSize);
      }
    } else if (!ownsBuffer(this, buffer) && !(view.byteLength === 0 && buffer.byteLength === 0 && !buffer.detached)) {
      throw this.#unknownBlock(view, "resize");
    }
    const oldSize = view.byteLength;
    // Keep the alignment the block has (its address's lowest set bit, up to a page).
    const address = oldSize > 0 ? addressOf(view) : 0;
    const align = Math.min(native.pageSize, address === 0 ? native.pageSize : address & -address);
    const fresh = this.alloc(newSize, Math.max(align, this.#defaultAlign));
    fresh.set(new Uint8Array(buffer, view.byteOffset, Math.min(oldSize, newSize)));
    if (oldSize > 0) this.#ignoredFrees++;
    return fresh;
  }

  /** Whether `view` points into memory this arena has handed out and not yet released. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.ended !== null) return false;
    // By address, so views made by a child allocator over this arena's memory count too.
    if (view.byteLength === 0 && (view.buffer as ArrayBuffer).detached) return false;
    const address = addressOf(view);
    for (let i = 0; i <= this.#index && i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i];
      const offset = address - chunk.address;
      const used = i < this.#index ? chunk.size : this.#cursor;
      if (offset >= 0 && offset < used) return true;
    }
    for (const chunk of this.#oversized) {
      if (address >= chunk.address && address < chunk.address + chunk.size) return true;
    }
    return false;
  }

  /** Counters, including fragmentation of the free space left in the chunks. */
  stats(): ArenaStats {
    const free: number[] = [];
    if (this.#index >= 0) free.push(this.#chunkSize - this.#cursor);
    for (let i = this.#index + 1; i < this.#chunks.length; i++) free.push(this.#chunks[i].size);
    const available = free.reduce((sum, f) => sum + f, 0);
    const stats: ArenaStats = {
      ...this.#ledger.stats({
        capacityBytes: this.#capacityBytes,
        availableBytes: available,
        largestFreeBlock: free.length ? Math.max(...free) : 0,
        freeBlocks: free,
      }),
      chunks: this.#chunks.length + this.#oversized.length,
      scopeDepth: this.#scopes.length,
      ignoredFrees: this.#ignoredFrees,
    };
    if (this.#timing) stats.avgAllocationNs = this.#timedCount ? this.#timedNs / this.#timedCount : 0;
    return stats;
  }

  /**
   * Opens a scope: everything allocated until it ends is released together.
   * Use it with `using`, or call `end()`.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  scope(): ArenaScope {
    this.#ledger.guard("open a scope");
    const handle: ScopeHandle = new ScopeHandle(
      this.#scopes.length + 1,
      (h) => this.#endScope(h),
      (h) => this.#scopeStats(h),
    );
    this.#scopes.push({
      handle,
      index: this.#index,
      cursor: this.#cursor,
      buffer: this.#buffer,
      bufferBase: this.#bufferBase,
      limit: this.#limit,
      oversized: this.#oversized.length,
      segments: this.#segments.length,
      live: this.#ledger.live,
      allocatedBytes: this.#ledger.allocatedBytes,
      totalAllocations: this.#ledger.totalAllocations,
      totalBytes: this.#totalBytes,
      startedAt: performance.now(),
    });
    this.#lastBuffer = null;
    if (this.#safety && this.#index >= 0) this.#openSegment(this.#chunks[this.#index], this.#cursor, 0);
    if (this.#observers.length !== 0) {
      for (const o of this.#observers) notify(() => o.onScopeEnter?.(handle));
    }
    return handle;
  }

  /**
   * Releases every allocation at once (ending open scopes), and keeps or
   * returns chunks by `mode`. Chunks returned are detached first; with
   * `safety`, every view into the arena is detached.
   * @param mode "free-all", "retain-capacity" (default) or `{ retainLimit }`.
   * @throws {TypeError} For a mode that is none of those; {RangeError} for a bad `retainLimit`.
   */
  reset(mode: ArenaResetMode = "retain-capacity"): void {
    const parsed = ResetSchema.safeParse(mode);
    if (!parsed.success) {
      if (
        typeof mode === "object" && mode !== null && typeof (mode as { retainLimit?: unknown }).retainLimit === "number"
      ) {
        throw new RangeError(
          `Cannot reset as 'retainLimit' must be an integer from 0 to ${MAX_BLOCK_SIZE}: current value is ${
            describe((mode as { retainLimit: number }).retainLimit)
          }`,
        );
      }
      throw new TypeError(
        `Cannot reset as 'mode' must be "free-all", "retain-capacity" or { retainLimit }: current value is ${
          describe(mode)
        }`,
      );
    }
    this.#ledger.guard("reset");
    while (this.#scopes.length) this.#endScope(this.#scopes[this.#scopes.length - 1].handle);
    const reason = "Arena.reset() released it";
    const leases = this[LEASES];
    if (leases.count !== 0) {
      for (const chunk of [...this.#chunks, ...this.#oversized]) {
        leases.released(chunk.address, chunk.address + chunk.size, reason);
      }
    }
    // Oversized chunks join the regular ones: the next cycle reuses them.
    for (const chunk of this.#oversized.splice(0)) this.#chunks.push(chunk);
    let keep = this.#chunks.length;
    if (parsed.data === "free-all") keep = 0;
    else if (typeof parsed.data === "object") {
      let bytes = 0;
      keep = 0;
      while (keep < this.#chunks.length && bytes + this.#chunks[keep].size <= parsed.data.retainLimit) {
        bytes += this.#chunks[keep++].size;
      }
    } else if (this.#growth === "adaptive" && this.#chunks.length > 1) {
      // Merge: the next cycle runs in one chunk of everything the last one needed.
      const total = this.#capacityBytes;
      this.#releaseChunks(0);
      const merged = this.#source.take(total);
      if (merged !== null) this.#adopt(merged);
      keep = this.#chunks.length;
    }
    this.#releaseChunks(keep);
    if (this.#safety) { for (const chunk of this.#chunks) this.#rewrap(chunk); }
    this.#ledger.freedAll();
    this.#lastBuffer = null;
    if (this.#chunks.length) this.#enterChunk(0);
    else {
      this.#index = -1;
      this.#chunkSize = -1;
      this.#limit = -1;
      this.#cursor = 0;
      this.#buffer = null;
    }
  }

  /**
   * Returns every chunk to the backing; every view the arena handed out
   * reads as length 0 and every later call throws "use-after-free". A second
   * call does nothing.
   */
  dispose(): void {
    if (!this.#ledger.end("was disposed")) return;
    this[LEASES].releasedAll("Arena.dispose() released it");
    this.#teardown();
    for (const chunk of [...this.#chunks, ...this.#oversized]) this.#source.give(chunk);
    this.#chunks.length = 0;
    this.#oversized.length = 0;
    this.#capacityBytes = 0;
  }

  /** Same as {@linkcode Arena.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Registers callbacks; returns a function that unregisters them. A
   * callback that throws does not undo the operation it observes: its error
   * is reported on its own (as an uncaught error in a microtask).
   * @throws {TypeError} When `observer` is not an object.
   */
  observe(observer: ArenaObserver): () => void {
    if (typeof observer !== "object" || observer === null) {
      throw new TypeError(`Cannot observe as 'observer' must be an object: current value is ${describe(observer)}`);
    }
    this.#observers = [...this.#observers, observer];
    return () => {
      this.#observers = this.#observers.filter((o) => o !== observer);
    };
  }

  // ---------------------------------------------------------------- internals

  // The most recent block, if `view` starts at its first byte. An empty view
  // there is an earlier empty block unless the most recent one is empty too.
  #isLast(buffer: ArrayBuffer, view: ArrayBufferView): boolean {
    return buffer === this.#lastBuffer && view.byteOffset === this.#lastOffset && view.byteLength !== 0;
  }

  #rollBack(reason: string): void {
    const leases = this[LEASES];
    const oversized = this.#lastOversized;
    if (leases.count !== 0) {
      const address = oversized !== null ? oversized.address : this.#chunks[this.#index].address + this.#lastStart;
      leases.freed(address, reason);
    }
    if (oversized !== null) {
      this.#oversized.pop();
      this.#capacityBytes -= oversized.size;
      this.#source.give(oversized);
    } else {
      this.#cursor = this.#lastStart;
    }
    this.#ledger.freed(this.#lastSize);
    this.#lastBuffer = null;
    this.#lastOversized = null;
  }

  // alloc(0): an empty view, neither counted nor the block `free` rolls back,
  // as two empty blocks can share an offset.
  #empty(): Uint8Array {
    if (this.#buffer === null || this.#cursor - this.#bufferBase > this.#buffer.byteLength) return new Uint8Array(0);
    return new Uint8Array(this.#buffer, this.#cursor - this.#bufferBase, 0);
  }

  #arrayAlign(bytesPerElement: number): number {
    return this.#alignment === "natural" ? bytesPerElement : this.#defaultAlign;
  }

  // Reserves `size` bytes aligned to `align`; the block is #lastBuffer at
  // #lastOffset. False (with the failure recorded) when it cannot be had.
  #bump(size: number, align: number): boolean {
    // Chunks start page-aligned, so aligning the offset aligns the address.
    const rem = this.#cursor % align;
    let start = rem === 0 ? this.#cursor : this.#cursor + align - rem;
    if (start + size > this.#limit) {
      start = this.#grow(start, size);
      if (start === -1) return false;
      if (start === -2) {
        this.#counted(size);
        return true; // an oversized chunk: #grow set the last block
      }
    }
    this.#cursor = start + size;
    this.#lastBuffer = this.#buffer;
    this.#lastOffset = start - this.#bufferBase;
    this.#lastStart = start;
    this.#lastOversized = null;
    this.#counted(size);
    return true;
  }

  #counted(size: number): void {
    this.#ledger.allocated(size);
    this.#totalBytes += size;
    this.#lastSize = size;
  }

  #timed(started: number): void {
    this.#timedNs += (performance.now() - started) * 1e6;
    this.#timedCount++;
  }

  // Makes room for `size` bytes: at `start` in a new safety segment of this
  // chunk, at offset 0 of another chunk (returns that offset), or in an
  // oversized chunk of its own (returns -2); -1 when none can be had.
  #grow(start: number, size: number): number {
    if (this.#limit < this.#chunkSize && start + size <= this.#chunkSize) {
      this.#openSegment(this.#chunks[this.#index], start, size);
      return start;
    }
    // Move on to a retained chunk that fits; chunks start aligned to the page.
    while (this.#index + 1 < this.#chunks.length) {
      if (size <= this.#chunks[this.#index + 1].size) {
        this.#enterChunk(this.#index + 1, size);
        return 0;
      }
      this.#enterChunk(this.#index + 1);
    }
    if (!this.#canGrow && this.#chunks.length > 0) {
      const reason = this.#nullBacking
        ? `its ${this.#capacityBytes}-byte chunk is full and it has no backing to grow from`
        : `its ${this.#capacityBytes} bytes are full and its growth policy is fixed`;
      return this.#refuse("out-of-memory", reason);
    }
    const last = this.#chunks.length ? this.#chunks[this.#chunks.length - 1].size : 0;
    const wanted = plannedChunkSize(this.#growth, this.#capacity, last, this.#capacityBytes);
    const needed = roundToPage(Math.max(size, 1));
    // Larger than the next chunk would be: a chunk of its own, and the current
    // chunk stays current (so the space left in it is not abandoned).
    const oversized = needed > wanted && this.#chunks.length > 0;
    const chunkSize = capChunkSize(
      oversized ? needed : Math.max(wanted, needed),
      needed,
      this.#capacityBytes,
      this.#maxCapacity,
    );
    if (chunkSize < 0) {
      return this.#refuse(
        "limit-exceeded",
        `a ${needed}-byte chunk would exceed maxCapacity (${this.#maxCapacity} bytes, ${this.#capacityBytes} held)`,
      );
    }
    const chunk = this.#source.take(chunkSize);
    if (chunk === null) return this.#refuse("out-of-memory", this.#source.refusal);
    mark(chunk.buffer, this);
    this.#capacityBytes += chunk.size;
    if (oversized) {
      this.#oversized.push(chunk);
      this.#lastBuffer = chunk.buffer;
      this.#lastOffset = 0;
      this.#lastStart = 0;
      this.#lastOversized = chunk;
      return -2;
    }
    this.#chunks.push(chunk);
    this.#enterChunk(this.#chunks.length - 1, size);
    return 0;
  }

  #refuse(category: "out-of-memory" | "limit-exceeded", reason: string): -1 {
    this.#ledger.fail(category, reason);
    return -1;
  }

  #adopt(chunk: Chunk): void {
    mark(chunk.buffer, this);
    this.#chunks.push(chunk);
    this.#capacityBytes += chunk.size;
  }

  #enterChunk(index: number, atLeast = 0): void {
    const chunk = this.#chunks[index];
    this.#index = index;
    this.#cursor = 0;
    this.#chunkSize = chunk.size;
    if (this.#safety && this.#scopes.length > 0) this.#openSegment(chunk, 0, atLeast);
    else {
      this.#buffer = chunk.buffer;
      this.#bufferBase = 0;
      this.#limit = chunk.size;
    }
  }

  // A fresh ArrayBuffer over part of a chunk, detached when the scope ends.
  // Segments are at most native.wrapChunkBytes (unless one allocation needs
  // more): Bun's cost of wrapping native memory grows with its size.
  #openSegment(chunk: Chunk, from: number, atLeast: number): void {
    const length = Math.min(chunk.size - from, Math.max(native.wrapChunkBytes, atLeast));
    // SAFETY: [from, from + length) lies in a chunk the arena holds; scope end,
    // reset and dispose detach the segment before that memory is reused or returned.
    const buffer = length > 0 ? native.wrap(chunk.address + from, length) : new ArrayBuffer(0);
    this.#segments.push(mark(buffer, this));
    this.#buffer = buffer;
    this.#bufferBase = from;
    this.#limit = from + length;
  }

  #rewrap(chunk: Chunk): void {
    this.#source.rewrap(chunk);
    mark(chunk.buffer, this);
  }

  #releaseChunks(keep: number): void {
    while (this.#chunks.length > keep) {
      const chunk = this.#chunks.pop()!;
      this.#capacityBytes -= chunk.size;
      // Rule 1: the buffer is detached before the chunk goes back. Safety
      // segments over it died with their scopes (reset ends them first).
      this.#source.give(chunk);
    }
  }

  // Detaches every buffer the arena made and forgets every block.
  #teardown(): void {
    for (const segment of this.#segments.splice(0)) segment.transfer(0);
    for (const record of this.#scopes.splice(0)) {
      record.handle.final = this.#scopeStats(record.handle, record);
      record.handle.active = false;
    }
    this.#ledger.freedAll();
    this.#index = -1;
    this.#chunkSize = -1;
    this.#limit = -1;
    this.#cursor = 0;
    this.#buffer = null;
    this.#lastBuffer = null;
    this.#lastOversized = null;
  }

  // The backing released a chunk (its reset, scope end, dispose): end here too.
  #revoke(reason: string, partial: boolean): void {
    if (!this.#ledger.end(`lost its memory: ${reason}`)) return;
    this[LEASES].releasedAll(`the Arena lost its memory (${reason})`);
    this.#teardown();
    for (const chunk of [...this.#chunks, ...this.#oversized]) {
      if (partial) this.#source.giveQuietly(chunk);
      else chunk.buffer.transfer(0);
    }
    this.#chunks.length = 0;
    this.#oversized.length = 0;
    this.#capacityBytes = 0;
  }

  #endScope(handle: ScopeHandle): void {
    const at = this.#scopes.findIndex((s) => s.handle === handle);
    if (at < 0) return;
    while (this.#scopes.length > at) {
      const record = this.#scopes.pop()!;
      record.handle.final = this.#scopeStats(record.handle, record);
      record.handle.active = false;
      this.#releaseSince(record);
      this.#ledger.totalFrees += this.#ledger.live - record.live;
      this.#ledger.live = record.live;
      this.#ledger.allocatedBytes = record.allocatedBytes;
      while (this.#segments.length > record.segments) this.#segments.pop()!.transfer(0);
      if (record.index >= 0 && record.index < this.#chunks.length) {
        this.#index = record.index;
        this.#cursor = record.cursor;
        this.#chunkSize = this.#chunks[record.index].size;
        this.#buffer = record.buffer;
        this.#bufferBase = record.bufferBase;
        this.#limit = record.limit;
      } else if (this.#chunks.length) {
        this.#enterChunk(0);
      }
      this.#lastBuffer = null;
      this.#lastOversized = null;
      if (this.#observers.length !== 0) {
        for (const o of this.#observers) notify(() => o.onScopeExit?.(record.handle));
      }
    }
  }

  // Tells lease holders what a scope's end releases, and returns the
  // oversized chunks allocated inside it.
  #releaseSince(record: ScopeRecord): void {
    const reason = "the Arena scope it was allocated in ended";
    const leases = this[LEASES];
    if (leases.count !== 0) {
      const first = Math.max(record.index, 0);
      for (let i = first; i <= this.#index && i < this.#chunks.length; i++) {
        const chunk = this.#chunks[i];
        const from = i === record.index ? record.cursor : 0;
        leases.released(chunk.address + from, chunk.address + chunk.size, reason);
      }
    }
    while (this.#oversized.length > record.oversized) {
      const chunk = this.#oversized.pop()!;
      if (leases.count !== 0) leases.released(chunk.address, chunk.address + chunk.size, reason);
      this.#capacityBytes -= chunk.size;
      this.#source.give(chunk);
    }
  }

  #scopeStats(handle: ScopeHandle, found?: ScopeRecord): ArenaScopeStats {
    const record = found ?? this.#scopes.find((s) => s.handle === handle)!;
    return {
      allocations: this.#ledger.totalAllocations - record.totalAllocations,
      bytes: this.#totalBytes - record.totalBytes,
      lifetimeMs: performance.now() - record.startedAt,
    };
  }

  #notifyAlloc(view: Uint8Array, align: number): void {
    for (const o of this.#observers) notify(() => o.onAlloc?.(view, align));
  }

  #notifyFree(view: ArrayBufferView, rolledBack: boolean): void {
    for (const o of this.#observers) notify(() => o.onFree?.(view, rolledBack));
  }

  #unknownBlock(view: ArrayBufferView, op: "free" | "resize"): AllocationError {
    // Detached: released by a scope's end, reset() or free of a returned chunk.
    return foreignBlockError(view, op, this, "Arena");
  }
}
