/**
 * Chunked bump allocation with `using` scopes.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { defaultBacking } from "./_default_backing.ts";
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
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { fragmentation } from "./fragmentation.ts";
import { addressOf } from "../base/native_info.ts";

/**
 * How an {@linkcode Arena} grows when its chunks are full: `"fixed"` never
 * (allocation fails with "out-of-memory"), `"linear"` by `capacity` each time,
 * `"exponential"` by twice the last chunk, `"adaptive"` like exponential, and
 * `reset("retain-capacity")` then merges its chunks into one, so a workload
 * that repeats settles on a single chunk of the size it needs.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaGrowth } from "@memkit/memkit";
 *
 * const growth: ArenaGrowth = "adaptive";
 * const arena = new Arena({ capacity: 4096, growth });
 * arena.reset("free-all");
 * ```
 */
export type ArenaGrowth = "fixed" | "linear" | "exponential" | "adaptive";

/**
 * The alignment an {@linkcode Arena} uses when a call gives none: `"natural"`
 * (16 for `alloc`, the element size for `array` and `clone`), `"cache-line"`
 * (64), `"page"` (the page size) or a power of two.
 *
 * @example
 * ```ts
 * import { addressOf, Arena, type ArenaAlignment } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const alignment: ArenaAlignment = "cache-line";
 * const arena = new Arena({ alignment });
 * assert.equal(addressOf(arena.alloc(10)) % 64, 0);
 * arena.reset("free-all");
 * ```
 */
export type ArenaAlignment = "natural" | "cache-line" | "page" | number;

/**
 * Options of {@linkcode Arena}.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaOptions } from "@memkit/memkit";
 *
 * const options: ArenaOptions = { capacity: 1 << 20, growth: "exponential", maxCapacity: 64 << 20 };
 * const arena = new Arena(options);
 * arena.reset("free-all");
 * ```
 */
export interface ArenaOptions {
  /** Size of the first chunk in bytes (rounded up to whole pages). @default {1048576} */
  capacity?: number;
  /** How to grow when full. @default {"exponential"} */
  growth?: ArenaGrowth;
  /** Default alignment when a call gives none. @default {"natural"} */
  alignment?: ArenaAlignment;
  /** Upper bound on the bytes held in chunks; beyond it allocation fails with "limit-exceeded". @default {2 ** 47} */
  maxCapacity?: number;
  /**
   * Where chunks come from. `null`: the first chunk comes from the system and
   * the arena never grows (it fails with "out-of-memory" instead).
   * @default {a shared SystemAllocator}
   */
  backing?: Allocator | null;
  /** Measure the average time of `alloc` (`stats().avgAllocationNs`). @default {false} */
  timing?: boolean;
  /**
   * Detach every view into memory released by `reset()` or a scope's end, so
   * stale views read as length 0 instead of seeing reused memory. Costs about
   * 0.5–1.5 µs per scope (one ArrayBuffer wrap and detach per 64 MiB the scope
   * uses in Deno, per MiB in Bun)
   * and one re-wrap per chunk on `reset()`; `false` leaves released views
   * readable over memory the arena hands out again. @default {true}
   */
  safety?: boolean;
}

/**
 * What {@linkcode Arena.reset} keeps: `"free-all"` returns every chunk,
 * `"retain-capacity"` keeps them all for reuse, `{ retainLimit }` keeps chunks
 * up to that many bytes and returns the rest.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaResetMode } from "@memkit/memkit";
 *
 * const arena = new Arena();
 * const mode: ArenaResetMode = { retainLimit: 1 << 20 };
 * arena.reset(mode);
 * ```
 */
export type ArenaResetMode = "free-all" | "retain-capacity" | { retainLimit: number };

/**
 * Callbacks an {@linkcode Arena} calls on allocation, free and scope changes.
 *
 * @example
 * ```ts
 * import { Arena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * let bytes = 0;
 * const stop = arena.observe({ onAlloc: (view) => (bytes += view.length) });
 * arena.alloc(100);
 * stop();
 * arena.alloc(100);
 * assert.equal(bytes, 100);
 * arena.reset("free-all");
 * ```
 */
export interface ArenaObserver {
  /** After each allocation, with the new view and its alignment. */
  onAlloc?(view: Uint8Array, align: number): void;
  /** After each `free`; `rolledBack` tells whether the memory was reclaimed. */
  onFree?(view: ArrayBufferView, rolledBack: boolean): void;
  /** After a scope begins. */
  onScopeEnter?(scope: ArenaScope): void;
  /** After a scope ends, with its final statistics. */
  onScopeExit?(scope: ArenaScope): void;
}

/**
 * Counters of one {@linkcode ArenaScope}.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaScopeStats } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * using scope = arena.scope();
 * arena.alloc(64);
 * const stats: ArenaScopeStats = scope.stats();
 * assert.equal(stats.allocations, 1);
 * ```
 */
export interface ArenaScopeStats {
  /** Allocations made while the scope was open (nested scopes included). */
  allocations: number;
  /** Bytes requested by those allocations. */
  bytes: number;
  /** How long the scope has been (or was) open. */
  lifetimeMs: number;
}

/**
 * A region of an arena's lifetime: when it ends (leaving a `using` block, or
 * `end()`), everything allocated since it began is released at once. Scopes
 * nest; ending an outer scope ends the inner ones first.
 *
 * @example
 * ```ts
 * import { Arena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * const kept = arena.alloc(16);
 * {
 *   using _scope = arena.scope();
 *   arena.array(Float64Array, 10_000); // a temporary
 * } // released here
 * assert.equal(arena.stats().allocatedBytes, 16);
 * assert.equal(kept.length, 16); // allocated before the scope: still valid
 * arena.reset("free-all");
 * ```
 */
export interface ArenaScope extends Disposable {
  /** Nesting depth, 1 for an outermost scope. */
  readonly depth: number;
  /** False once the scope has ended. */
  readonly active: boolean;
  /** Allocations, bytes and lifetime of the scope so far. */
  stats(): ArenaScopeStats;
  /** Ends the scope (and any inner ones); a second call does nothing. */
  end(): void;
}

/**
 * {@linkcode AllocatorStats} of an arena, plus its own counters.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaStats } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena({ timing: true });
 * arena.alloc(8);
 * const stats: ArenaStats = arena.stats();
 * assert.equal(stats.chunks, 1);
 * assert.ok(stats.avgAllocationNs !== undefined);
 * arena.reset("free-all");
 * ```
 */
export interface ArenaStats extends AllocatorStats {
  /** Average time of one `alloc` in nanoseconds, when `timing` is on. */
  avgAllocationNs?: number;
  /** Chunks held. */
  chunks: number;
  /** Scopes open now. */
  scopeDepth: number;
  /** `free` calls for blocks other than the most recent one, which an arena cannot reclaim. */
  ignoredFrees: number;
}

interface Chunk {
  /** The block the backing gave (null once returned). */
  readonly block: Uint8Array;
  readonly address: number;
  readonly size: number;
  /** The arena's own ArrayBuffer over the whole chunk (replaced after a safety reset). */
  buffer: ArrayBuffer;
}

interface ScopeRecord {
  readonly handle: ScopeHandle;
  readonly index: number;
  readonly cursor: number;
  readonly buffer: ArrayBuffer | null;
  readonly bufferBase: number;
  readonly limit: number;
  readonly live: number;
  readonly allocatedBytes: number;
  readonly totalAllocations: number;
  readonly totalBytes: number;
  readonly segments: number;
  readonly startedAt: number;
}

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

class ScopeHandle implements ArenaScope {
  readonly #end: (handle: ScopeHandle) => void;
  readonly #stats: (handle: ScopeHandle) => ArenaScopeStats;
  readonly depth: number;
  active = true;
  final: ArenaScopeStats | null = null;

  constructor(
    depth: number,
    end: (handle: ScopeHandle) => void,
    stats: (handle: ScopeHandle) => ArenaScopeStats,
  ) {
    this.depth = depth;
    this.#end = end;
    this.#stats = stats;
  }

  stats(): ArenaScopeStats {
    return this.final ?? this.#stats(this);
  }

  end(): void {
    if (this.active) this.#end(this);
  }

  [Symbol.dispose](): void {
    this.end();
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
 * arena.reset("free-all"); // return the chunks
 * ```
 */
export class Arena implements Allocator {
  /** Always `"arena"`. */
  readonly kind = "arena" as const;
  readonly #backing: Allocator;
  readonly #growth: ArenaGrowth;
  readonly #capacity: number;
  readonly #maxCapacity: number;
  readonly #alignment: "natural" | number;
  readonly #defaultAlign: number;
  readonly #timing: boolean;
  readonly #safety: boolean;
  readonly #canGrow: boolean;
  readonly #nullBacking: boolean;
  readonly #chunks: Chunk[] = [];

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
  #lastBuffer: ArrayBuffer | null = null;
  #lastStart = 0;
  #lastSize = 0;

  #capacityBytes = 0;
  #allocatedBytes = 0;
  #peakBytes = 0;
  #live = 0;
  #totalAllocations = 0;
  #totalBytes = 0;
  #totalFrees = 0;
  #ignoredFrees = 0;
  #failedAllocations = 0;
  #lastFailure = "";
  #lastCategory: "out-of-memory" | "limit-exceeded" = "out-of-memory";
  #timedNs = 0;
  #timedCount = 0;

  /**
   * Creates an arena and takes its first chunk from the backing.
   *
   * @param options Capacity, growth, alignment, limits, backing, timing, safety.
   * @throws {TypeError} For options of the wrong type or unknown keys.
   * @throws {RangeError} For an out-of-range capacity or alignment.
   * @throws {AllocationError} "out-of-memory" when the first chunk cannot be had.
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
    this.#backing = parsed.backing ?? defaultBacking();
    this.#timing = parsed.timing ?? false;
    this.#safety = parsed.safety ?? true;
    registerOwner(this, "arena", Arena.#holds);
    if (!this.#addChunk(this.#capacity)) {
      throw new AllocationError(
        "out-of-memory",
        `Cannot create Arena: no ${this.#capacity}-byte chunk from the backing`,
      );
    }
    this.#enterChunk(0);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    return ownsBuffer(owner as Arena, buffer);
  }

  /**
   * Allocates `size` bytes, aligned to `align` or the arena's default.
   * @throws {TypeError} When size or align is not a number.
   * @throws {RangeError} When size or align is out of range.
   * @throws {AllocationError} "out-of-memory" (fixed growth or null backing, or the backing refused) or "limit-exceeded" (`maxCapacity`).
   */
  alloc(size: number, align?: number): Uint8Array {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#failure(size);
    return view;
  }

  /** Like {@linkcode Arena.alloc}, but `null` when the arena cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    const started = this.#timing ? performance.now() : 0;
    if (!Number.isInteger(size) || size < 0 || size > MAX_BLOCK_SIZE) checkSize(size, "allocate");
    const a = align === undefined ? this.#defaultAlign : checkAlignment(align, "allocate", native.pageSize);
    if (size === 0) return this.#empty();
    const start = this.#bump(size, a);
    if (start < 0) return null;
    const view = new Uint8Array(this.#buffer!, start - this.#bufferBase, size);
    if (this.#observers.length !== 0) { for (const o of this.#observers) o.onAlloc?.(view, a); }
    if (this.#timing) this.#timed(started);
    return view;
  }

  /** A typed array of `length` elements, aligned to its element size under the "natural" policy. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
    if (!Number.isInteger(length) || length < 0 || length > MAX_BLOCK_SIZE / bytesPerElement) {
      checkSize(length, "allocate an array", "length", Math.floor(MAX_BLOCK_SIZE / bytesPerElement));
    }
    if (this.#observers.length !== 0 || this.#timing) {
      const bytes = this.alloc(length * bytesPerElement, align ?? this.#arrayAlign(bytesPerElement));
      return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
    }
    // The common case makes one view, of the caller's type, and no other object.
    const a = align === undefined
      ? this.#arrayAlign(bytesPerElement)
      : checkAlignment(align, "allocate", native.pageSize);
    const size = length * bytesPerElement;
    const start = this.#bump(size, a);
    if (start < 0) throw this.#failure(size);
    return new ctor(this.#buffer!, start - this.#bufferBase, length);
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
    const copy = this.alloc(length, align);
    copy.set(new Uint8Array(view.buffer, view.byteOffset, length));
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
    const buffer = view.buffer as ArrayBuffer;
    if (this.#isLast(buffer, view)) {
      this.#cursor = this.#lastStart;
      this.#allocatedBytes -= this.#lastSize;
      this.#live--;
      this.#totalFrees++;
      this.#lastBuffer = null;
      if (this.#observers.length !== 0) { for (const o of this.#observers) o.onFree?.(view, true); }
      return;
    }
    if (!ownsBuffer(this, buffer)) {
      if (view.byteLength === 0 && !buffer.detached && buffer.byteLength === 0) return; // an alloc(0) view
      throw this.#unknownBlock(view, "free");
    }
    if (view.byteLength === 0) return; // alloc(0)'s views hold no memory
    this.#ignoredFrees++;
    if (this.#observers.length !== 0) { for (const o of this.#observers) o.onFree?.(view, false); }
  }

  /**
   * Resizes a block. The most recent block grows or shrinks in place when its
   * chunk has room (the returned view is over the same memory); any other
   * block is copied into a new one, and the old one is reclaimed at the next
   * reset or scope end. Its old size is taken to be `view.byteLength`.
   * @throws {AllocationError} As for `free`, and "out-of-memory" / "limit-exceeded" when a copy is needed and fails.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const buffer = view.buffer as ArrayBuffer;
    if (newSize === 0) {
      this.free(view);
      return this.#empty();
    }
    if (this.#isLast(buffer, view)) {
      if (this.#lastStart + newSize <= this.#limit) {
        this.#cursor = this.#lastStart + newSize;
        this.#allocatedBytes += newSize - this.#lastSize;
        this.#totalBytes += Math.max(0, newSize - this.#lastSize);
        if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
        this.#lastSize = newSize;
        return new Uint8Array(buffer, view.byteOffset, newSize);
      }
    } else if (
      !ownsBuffer(this, buffer) && !(view.byteLength === 0 && buffer.byteLength === 0 && !buffer.detached)
    ) {
      throw this.#unknownBlock(view, "resize");
    }
    const oldSize = view.byteLength;
    const fresh = this.alloc(newSize, this.#defaultAlign);
    fresh.set(new Uint8Array(buffer, view.byteOffset, Math.min(oldSize, newSize)));
    if (oldSize > 0) this.#ignoredFrees++;
    return fresh;
  }

  /** Whether `view` points into memory this arena has handed out and not yet released. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    // By address, so views made by a child allocator over this arena's memory count too.
    if (view.byteLength === 0 && (view.buffer as ArrayBuffer).detached) return false;
    const address = addressOf(view);
    for (let i = 0; i <= this.#index && i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i];
      const offset = address - chunk.address;
      const used = i < this.#index ? chunk.size : this.#cursor;
      if (offset >= 0 && offset < used) return true;
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
      kind: "arena",
      capacityBytes: this.#capacityBytes,
      allocatedBytes: this.#allocatedBytes,
      availableBytes: available,
      peakBytes: this.#peakBytes,
      liveAllocations: this.#live,
      totalAllocations: this.#totalAllocations,
      totalFrees: this.#totalFrees,
      failedAllocations: this.#failedAllocations,
      largestFreeBlock: free.length ? Math.max(...free) : 0,
      fragmentation: fragmentation(free),
      overheadBytes: this.#capacityBytes - available - this.#allocatedBytes,
      chunks: this.#chunks.length,
      scopeDepth: this.#scopes.length,
      ignoredFrees: this.#ignoredFrees,
    };
    if (this.#timing) stats.avgAllocationNs = this.#timedCount ? this.#timedNs / this.#timedCount : 0;
    return stats;
  }

  /**
   * Opens a scope: everything allocated until it ends is released together.
   * Use it with `using`, or call `end()`.
   */
  scope(): ArenaScope {
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
      live: this.#live,
      allocatedBytes: this.#allocatedBytes,
      totalAllocations: this.#totalAllocations,
      totalBytes: this.#totalBytes,
      segments: this.#segments.length,
      startedAt: performance.now(),
    });
    this.#lastBuffer = null;
    if (this.#safety && this.#index >= 0) this.#openSegment(this.#chunks[this.#index], this.#cursor, 0);
    if (this.#observers.length !== 0) { for (const o of this.#observers) o.onScopeEnter?.(handle); }
    return handle;
  }

  /**
   * Releases every allocation at once (ending open scopes), and keeps or
   * returns chunks by `mode`. Chunks returned are detached first; with
   * `safety`, every view into the arena is detached.
   * @param mode "free-all", "retain-capacity" (default) or `{ retainLimit }`.
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
    while (this.#scopes.length) this.#endScope(this.#scopes[this.#scopes.length - 1].handle);
    let keep = this.#chunks.length;
    if (mode === "free-all") keep = 0;
    else if (typeof mode === "object") {
      let bytes = 0;
      keep = 0;
      while (keep < this.#chunks.length && bytes + this.#chunks[keep].size <= mode.retainLimit) {
        bytes += this.#chunks[keep++].size;
      }
    } else if (this.#growth === "adaptive" && this.#chunks.length > 1) {
      // Merge: next cycle runs in one chunk of everything the last one needed.
      const total = this.#capacityBytes;
      this.#releaseChunks(0);
      if (this.#addChunk(total)) keep = 1;
      else keep = 0;
    }
    this.#releaseChunks(keep);
    if (this.#safety) { for (const chunk of this.#chunks) this.#rewrap(chunk); }
    this.#totalFrees += this.#live;
    this.#live = 0;
    this.#allocatedBytes = 0;
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
   * Registers callbacks; returns a function that unregisters them.
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
    return buffer === this.#lastBuffer && view.byteOffset === this.#lastStart - this.#bufferBase &&
      view.byteLength !== 0;
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

  // Reserves `size` bytes aligned to `align` and returns their chunk offset
  // (views are made over #buffer at offset - #bufferBase), or -1.
  #bump(size: number, align: number): number {
    // Chunks start page-aligned, so aligning the offset aligns the address.
    const rem = this.#cursor % align;
    let start = rem === 0 ? this.#cursor : this.#cursor + align - rem;
    if (start + size > this.#limit) {
      start = this.#grow(start, size);
      if (start < 0) return -1;
    }
    this.#cursor = start + size;
    this.#allocatedBytes += size;
    this.#totalBytes += size;
    if (this.#allocatedBytes > this.#peakBytes) this.#peakBytes = this.#allocatedBytes;
    this.#live++;
    this.#totalAllocations++;
    this.#lastBuffer = this.#buffer;
    this.#lastStart = start;
    this.#lastSize = size;
    return start;
  }

  #timed(started: number): void {
    this.#timedNs += (performance.now() - started) * 1e6;
    this.#timedCount++;
  }

  // Makes room for `size` bytes at `start` in a new safety segment of this
  // chunk, or at offset 0 of another chunk; returns the offset, or -1.
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
      this.#failedAllocations++;
      this.#lastFailure = this.#nullBacking
        ? `its ${this.#capacityBytes}-byte chunk is full and it has no backing to grow from`
        : `its ${this.#capacityBytes} bytes are full and its growth policy is fixed`;
      this.#lastCategory = "out-of-memory";
      return -1;
    }
    const last = this.#chunks.length ? this.#chunks[this.#chunks.length - 1].size : 0;
    const wanted = this.#growth === "exponential" || this.#growth === "adaptive"
      ? Math.max(this.#capacity, last * 2, this.#growth === "adaptive" ? this.#capacityBytes : 0)
      : this.#capacity;
    const needed = roundToPage(Math.max(size, 1));
    let chunkSize = Math.max(roundToPage(wanted), needed);
    if (this.#capacityBytes + chunkSize > this.#maxCapacity) chunkSize = needed;
    if (this.#capacityBytes + chunkSize > this.#maxCapacity) {
      this.#failedAllocations++;
      this.#lastFailure = `a ${chunkSize}-byte chunk would exceed maxCapacity (${this.#maxCapacity} bytes, ` +
        `${this.#capacityBytes} held)`;
      this.#lastCategory = "limit-exceeded";
      return -1;
    }
    if (!this.#addChunk(chunkSize)) {
      this.#failedAllocations++;
      this.#lastFailure = `the backing allocator refused a ${chunkSize}-byte chunk`;
      this.#lastCategory = "out-of-memory";
      return -1;
    }
    this.#enterChunk(this.#chunks.length - 1, size);
    return 0;
  }

  #failure(size: number): AllocationError {
    return new AllocationError(this.#lastCategory, `Cannot allocate ${size} bytes in the arena: ${this.#lastFailure}`);
  }

  #addChunk(size: number): boolean {
    const block = this.#backing.tryAlloc(size, native.pageSize);
    if (block === null) return false;
    const address = native.addressOf(block);
    const chunk: Chunk = { block, address, size, buffer: native.wrap(address, size) };
    this.#chunks.push(chunk);
    mark(chunk.buffer, this);
    this.#capacityBytes += size;
    return true;
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
    const buffer = length > 0 ? native.wrap(chunk.address + from, length) : new ArrayBuffer(0);
    this.#segments.push(buffer);
    mark(buffer, this);
    this.#buffer = buffer;
    this.#bufferBase = from;
    this.#limit = from + length;
  }

  #rewrap(chunk: Chunk): void {
    chunk.buffer.transfer(0);
    chunk.buffer = native.wrap(chunk.address, chunk.size);
    mark(chunk.buffer, this);
  }

  #releaseChunks(keep: number): void {
    while (this.#chunks.length > keep) {
      const chunk = this.#chunks.pop()!;
      // Rule 1: no view may outlive memory returned to the backing. Safety
      // segments over the chunk died with their scopes (reset ends them first).
      chunk.buffer.transfer(0);
      this.#capacityBytes -= chunk.size;
      this.#backing.free(chunk.block);
    }
  }

  #endScope(handle: ScopeHandle): void {
    const at = this.#scopes.findIndex((s) => s.handle === handle);
    if (at < 0) return;
    while (this.#scopes.length > at) {
      const record = this.#scopes.pop()!;
      record.handle.final = this.#scopeStats(record.handle, record);
      record.handle.active = false;
      this.#totalFrees += this.#live - record.live;
      this.#live = record.live;
      this.#allocatedBytes = record.allocatedBytes;
      while (this.#segments.length > record.segments) {
        const segment = this.#segments.pop()!;
        segment.transfer(0);
      }
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
      if (this.#observers.length !== 0) { for (const o of this.#observers) o.onScopeExit?.(record.handle); }
    }
  }

  #scopeStats(handle: ScopeHandle, found?: ScopeRecord): ArenaScopeStats {
    const record = found ?? this.#scopes.find((s) => s.handle === handle)!;
    return {
      allocations: this.#totalAllocations - record.totalAllocations,
      bytes: this.#totalBytes - record.totalBytes,
      lifetimeMs: performance.now() - record.startedAt,
    };
  }

  #unknownBlock(view: ArrayBufferView, op: "free" | "resize"): AllocationError {
    // Detached: released by a scope's end, reset() or free of a returned chunk.
    return foreignBlockError(view, op, this, "Arena");
  }
}

// Each ArrayBuffer an arena makes carries the arena here: a property lookup
// instead of a Map, whose set+delete churn costs O(entries) in V8 and JSC.
const ARENA = Symbol("memkit.arena");

function mark(buffer: ArrayBuffer, arena: Arena): void {
  (buffer as unknown as Record<symbol, Arena>)[ARENA] = arena;
}

function ownsBuffer(arena: Arena, buffer: ArrayBufferLike): boolean {
  return (buffer as unknown as Record<symbol, Arena | undefined>)[ARENA] === arena && !(buffer as ArrayBuffer).detached;
}

function roundToPage(bytes: number): number {
  const page = native.pageSize;
  return Math.ceil(bytes / page) * page;
}

let threadArena: Arena | null = null;

/**
 * This thread's arena (the seed's ThreadLocalArena): each Worker, and the main
 * thread, gets its own, created on first call with `options` (later calls
 * return the same arena and ignore `options`). Nothing is shared between
 * threads, so no locking is needed.
 *
 * @param options Options for the arena when this call creates it.
 * @returns The arena of the calling thread.
 *
 * @example
 * ```ts
 * import { workerArena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = workerArena({ capacity: 64 << 20 });
 * assert.equal(workerArena(), arena);
 * {
 *   using _scope = arena.scope();
 *   arena.array(Float32Array, 1024);
 * }
 * ```
 */
export function workerArena(options?: ArenaOptions): Arena {
  threadArena ??= new Arena(options);
  return threadArena;
}
