/**
 * A debugging allocator: leak reports, double-free and invalid-free detection,
 * canaries against overflow and underflow, poisoning, memory limits and
 * allocation stack traces, wrapped around any allocator.
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { defaultBacking } from "../alloc/_default_backing.ts";
import { beginChange, endChange, leaseTableOf, registerLeases } from "../alloc/_lease.ts";
import { isEmptyView, registerOwner } from "../alloc/_ownership.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { bufferOf, checkAlignment, checkSize, checkView, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import { isDetached, transferredError } from "../base/_detach.ts";
import type { AllocatorDump } from "../alloc/dump.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { cachedWordsOf, tagOf } from "./_block_layout.ts";
import { registerHeap } from "./_c_style.ts";
import { DebugHeap } from "./_debug_heap.ts";
import { dumpHeap } from "./_heap_dump.ts";
import { teardown } from "./_heap_release.ts";
import { resizeBlock } from "./_heap_resize.ts";
import { allocChecked, allocCounted, freeChecked, freeCounted } from "./_hot_path.ts";
import { checkGeneration, diagnose, registerDebugOwner } from "./_misuse.ts";
import { Tracer } from "./_traces.ts";
import { checkBacking } from "./_backing_intake.ts";
import { seeking } from "./_block_leases.ts";
import { fixed, hex, join, max, now as dateNow, split } from "./_builtins.ts";
/**
 * Options of {@linkcode DebugAllocator}. The names follow Zig's
 * `DebugAllocator` (`safety`, `stack_trace_frames`, `never_unmap`,
 * `retain_metadata`, memory limit).
 *
 * @example
 * ```ts
 * import { DebugAllocator, type DebugAllocatorOptions } from "@memkit/memkit";
 *
 * const options: DebugAllocatorOptions = { stackTraceFrames: 8, sampleEvery: 1, poison: true };
 * const debug = new DebugAllocator(undefined, options);
 * debug.deinit();
 * ```
 */
export interface DebugAllocatorOptions {
  /**
   * Canaries, double-free and invalid-free checks (and, with `detachFreed`,
   * detached views). `false` keeps only the counters (and the leak list):
   * blocks are the backing's own views, found by address, and misuse is left
   * to the backing. @default {true}
   */
  safety?: boolean;
  /** Frames of allocation stack trace to keep (0: none). @default {0} */
  stackTraceFrames?: number;
  /** Trace one allocation in this many when `stackTraceFrames` is set. @default {1} */
  sampleEvery?: number;
  /** Fill fresh blocks with 0xAA and freed ones with 0xDD. @default {false} */
  poison?: boolean;
  /**
   * Keep freed blocks' memory (poisoned when `poison`) until `deinit()`, so it is never reused. That memory is
   * not a leak: the check at exit leaves it out. @default {false}
   */
  neverUnmap?: boolean;
  /**
   * Keep freed blocks' records, and hold their memory back from the backing
   * (the most recent 64 MiB freed), so a double free through an address or a
   * stale view is reported even after the allocator would have reused the
   * address. The memory held back is not a leak: the check at exit leaves it
   * out. @default {false}
   */
  retainMetadata?: boolean;
  /** Most bytes live at once; beyond it allocation fails with "limit-exceeded". @default {unlimited} */
  memoryLimit?: number;
  /**
   * Report blocks whose every view was garbage-collected without `free` as
   * "unreachable" (needs each block's own ArrayBuffer: turns `detachFreed`
   * on, and `detachFreed: false` with it is a TypeError). @default {false}
   */
  reportUnreachable?: boolean;
  /**
   * Give each block its own ArrayBuffer and detach it on free, so every view
   * of a freed block reads as length 0: the only mode in which a freed view
   * can no longer reach the memory of a backing that carves its blocks from
   * larger buffers (a pool, an arena, a free list; a SystemAllocator, the
   * default backing, detaches each block's own buffer when it is freed). It
   * costs the wrap, about 0.5–1 µs per block (measured: about 30 times an
   * untracked 64-byte pool pair in Deno, 10 in Bun), so it is one option away
   * rather than the default.
   *
   * Off, blocks are views of the backing's memory, every other check stays,
   * and a use after free is caught as far as it can be without detaching:
   * a `free`, `resize` or `owns` through a freed view (one of the last 256
   * freed, or any with `retainMetadata`) is "double-free" or "use-after-free",
   * also after the address was reused; with `poison` a freed view reads 0xDD
   * until the memory is handed out again; with `poison` and `neverUnmap` or
   * `retainMetadata`, a write through a freed view is reported by `check()`
   * ("use-after-free"). A freed view can otherwise still read and write the
   * memory, which the backing may have handed out again.
   * @default {false, or true with `reportUnreachable`}
   */
  detachFreed?: boolean;
}

/**
 * A block still allocated, as {@linkcode DebugAllocator.leaks} reports it.
 *
 * @example
 * ```ts
 * import { DebugAllocator, type LeakRecord } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const debug = new DebugAllocator();
 * debug.alloc(10);
 * const [leak]: LeakRecord[] = debug.leaks();
 * assert.equal(leak.size, 10);
 * debug.deinit();
 * ```
 */
export interface LeakRecord {
  /** Address of the block's first byte. */
  address: number;
  /** Bytes requested. */
  size: number;
  /** Alignment requested. */
  align: number;
  /** Milliseconds since it was allocated. */
  ageMs: number;
  /** Where it was allocated, when traced. */
  stack?: string;
  /** True when every view of it was garbage-collected without a free. */
  unreachable?: boolean;
}

// The range first, then `int()`: zod's int() also refuses integers past 2^53, and its message would not say so.
const OptionsSchema = z.object({
  safety: z.boolean().optional(),
  stackTraceFrames: z.number().min(0, "must be at least 0").max(100, "must be at most 100").int("must be an integer")
    .optional(),
  sampleEvery: z.number().min(1, "must be at least 1").max(Number.MAX_SAFE_INTEGER, "must be at most 2^53 - 1")
    .int("must be an integer").optional(),
  poison: z.boolean().optional(),
  neverUnmap: z.boolean().optional(),
  retainMetadata: z.boolean().optional(),
  memoryLimit: z.number().min(0, "must be at least 0").max(MAX_BLOCK_SIZE, "must be at most 2^47")
    .int("must be an integer").optional(),
  reportUnreachable: z.boolean().optional(),
  detachFreed: z.boolean().optional(),
}).strict();

// The backing's methods a DebugAllocator calls (alloc too: an Allocator without it is none).
const CALLED = ["alloc", "tryAlloc", "free", "resize", "stats"] as const;

// #slotOf with safety off: not a block of this allocator; the backing judges it.
const UNKNOWN = -2;
// What a lease on a freed block says released it.
const FREED = "DebugAllocator.free() released it";

/**
 * Wraps an allocator (by default a SystemAllocator) and checks every use of it,
 * like Zig's `DebugAllocator` and AssemblyScript's rtrace:
 *
 * - **leaks**: `leaks()`, `report()` and `deinit()` list every block still
 *   allocated, with its size, address, age and (when traced) allocation site;
 *   zero-size blocks hold nothing and are never counted;
 * - **double free**, also through a stale view or address after the memory
 *   was reused; **invalid free** of a foreign or interior view; **free into
 *   the wrong allocator**;
 * - **use after free**: a free, resize or `owns` through a freed view, also
 *   after the address was reused; with `poison`, freed memory reads 0xDD, and
 *   with a quarantine (`neverUnmap`, `retainMetadata`) `check()` reports a
 *   write to it; with `detachFreed: true`, each block gets its own
 *   ArrayBuffer, detached on free, so every freed view reads as length 0;
 * - **overflow and underflow** written through raw pointers: a 16-byte canary
 *   after every block and a 16-byte header and canary before it, checked on
 *   free and by `check()`. When the backing cannot serve the padded size (a
 *   pool whose block size is the request), the block is checked out of band:
 *   no canaries, every other check;
 * - **memory limit**: `memoryLimit` bytes live at most, for `alloc` and `resize`.
 *
 * It serves every request its backing can serve, and it follows its backing:
 * when the backing releases memory by itself (an arena's `reset()` or scope
 * end, `dispose()`), the blocks in it read as length 0 and a later free of
 * one says what released it; when the backing is gone, so is this allocator.
 * Over an Allocator written in JavaScript that passes on memory memkit owns (a
 * SystemAllocator's, an Arena's or a pool's blocks, a mapping, a FramePool's
 * frame), it follows that memory's owner the same way: a release by an owner
 * that lives on (its free, a reset, a window's close) retires the blocks in
 * it; the owner's end (an unmap, a dispose) ends this allocator, every later
 * call "use-after-free" naming that release. A backing that refuses for its
 * own state (disposed, lost its memory) is named in the error, with its
 * category, and its error is the cause.
 *
 * Stack traces cost nothing when off; on, they are captured unformatted (and
 * only for one allocation in `sampleEvery`) and formatted only in reports.
 *
 * @example Finding a leak
 * ```ts
 * import { DebugAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const debug = new DebugAllocator(undefined, { stackTraceFrames: 6 });
 * const kept = debug.alloc(100);
 * debug.free(debug.alloc(50));
 * assert.equal(debug.leaks().length, 1);
 * console.log(debug.report()); // 1 leaked block, 100 bytes, with where it was allocated
 * debug.free(kept);
 * assert.equal(debug.deinit(), "ok");
 * ```
 *
 * @example Following an arena
 * ```ts
 * import { AllocationError, Arena, DebugAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using arena = new Arena({ capacity: 1 << 16 });
 * const debug = new DebugAllocator(arena);
 * const block = debug.alloc(64);
 * arena.reset(); // the arena takes its memory back
 * assert.equal(block.length, 0);
 * assert.throws(() => debug.free(block), (e) => e instanceof AllocationError && e.category === "use-after-free");
 * assert.equal(debug.deinit(), "ok");
 * ```
 *
 * @example Use after free, with and without detaching
 * ```ts
 * import { AllocationError, DebugAllocator, PoolAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pool = new PoolAllocator({ blockSize: 64 }); // freed blocks stay readable in a pool
 * const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
 *
 * // The default: views of the pool's memory. What memkit sees of a freed view is caught.
 * const debug = new DebugAllocator(pool, { poison: true, retainMetadata: true });
 * const block = debug.alloc(16);
 * debug.free(block);
 * assert.equal(block[0], 0xdd); // poisoned
 * assert.throws(() => debug.free(block), isCategory("double-free"));
 * block[3] = 1; // a write after free…
 * assert.throws(() => debug.check(), isCategory("use-after-free")); // …found in the held-back memory
 * debug.deinit();
 *
 * // One option away: every view of a freed block reads as length 0.
 * const strict = new DebugAllocator(pool, { detachFreed: true });
 * const view = strict.alloc(16);
 * strict.free(view);
 * assert.equal(view.length, 0);
 * strict.deinit();
 * ```
 */
export class DebugAllocator implements Allocator, Disposable {
  /** Always `"debug"`. */
  readonly kind = "debug" as const;
  readonly #heap: DebugHeap;
  readonly #safety: boolean;
  readonly #detach: boolean;

  /**
   * Creates a debugging allocator over `backing`.
   *
   * @param backing Where blocks come from (default: a shared SystemAllocator).
   * @param options What to check and record.
   * @throws {TypeError} For a backing that is not an Allocator (one of the methods it calls is missing), mistyped options, or `reportUnreachable` with `detachFreed: false`.
   * @throws {RangeError} For out-of-range numbers.
   */
  constructor(backing?: Allocator, options?: DebugAllocatorOptions) {
    if (options === undefined) options = {};
    if (backing !== undefined) checkBacking(backing, "DebugAllocator", CALLED);
    const parsed = parseOptions(OptionsSchema, options, "create DebugAllocator");
    this.#safety = parsed.safety ?? true;
    const reportUnreachable = parsed.reportUnreachable ?? false;
    if (reportUnreachable && parsed.detachFreed === false) {
      throw new TypeError(
        "Cannot create DebugAllocator as 'reportUnreachable' and 'detachFreed: false' do not go together: " +
          "unreachable blocks are found through each block's own ArrayBuffer, which only detachFreed gives",
      );
    }
    // Detaching costs a wrap per block (see detachFreed): on when asked, or when reportUnreachable needs it.
    this.#detach = this.#safety && (parsed.detachFreed ?? reportUnreachable);
    this.#heap = new DebugHeap(this, backing ?? defaultBacking(), {
      safety: this.#safety,
      detach: this.#detach,
      poison: parsed.poison ?? false,
      neverUnmap: parsed.neverUnmap ?? false,
      retainMetadata: parsed.retainMetadata ?? false,
      limit: parsed.memoryLimit ?? Infinity,
      tracer: new Tracer(parsed.stackTraceFrames ?? 0, parsed.sampleEvery ?? 1),
      reportUnreachable,
    });
    const heap = this.#heap;
    // Arrays and child allocators lease its blocks; with safety off the blocks, and their leases, are the backing's,
    // unless the backing keeps no leases (an Allocator written in JavaScript): then this heap hears of its blocks'
    // frees and releases (see _block_leases.ts) and tells their holders.
    registerLeases(this, this.#safety || heap.leasing ? heap.leases : () => leaseTableOf(heap.backing));
    registerOwner(this, "debug", DebugAllocator.#holds);
    registerHeap(this, this.#heap);
    if (this.#safety) registerDebugOwner(this.#heap);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const debug = owner as DebugAllocator;
    if (!debug.#safety) return false; // its blocks are the backing's
    if (seeking.self === owner) return false; // it looks for the owner of memory its backing passed on
    const tag = tagOf(buffer);
    if (tag !== undefined) return tag.owner === owner && !tag.freed;
    const host = cachedWordsOf(buffer);
    const blocks = debug.#heap.blocks;
    if (host === undefined) return false;
    // Its blocks are views of its backing's buffer, which other memory shares: while a DebugAllocator looks for
    // the owner of memory its backing passed on (see _block_leases.ts), only a block of this one holding it counts.
    const any = seeking.self === null;
    const sought = seeking.address;
    for (let slot = 0; slot < blocks.end; slot++) {
      if (
        blocks.ids[slot] !== 0 && blocks.hosts[slot] === host &&
        (any || (blocks.addresses[slot] <= sought && sought < blocks.addresses[slot] + blocks.sizes[slot]))
      ) return true;
    }
    return false;
  }

  /**
   * Allocates `size` bytes (an empty view for 0, which is not a block).
   * @throws {AllocationError} "limit-exceeded" past `memoryLimit`; "out-of-memory" when the backing refuses; "corruption" when it returns a block it must not; "use-after-free" after `deinit()`, or once the memory under it is gone; the backing's own category when it refuses for its state ("The DebugAllocator cannot take a 40-byte block: its backing, an Arena, was disposed", the backing's error the cause).
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    checkSize(size, "allocate");
    const a = checkAlignment(align, "allocate", native.pageSize);
    const heap = this.#heap;
    if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("allocate");
    if (size === 0) return new Uint8Array(0);
    const view = heap.leanChecks && a === 16
      ? allocChecked(heap, size, this.alloc, 1)
      : this.#safety
      ? heap.allocBlock(size, a, this.alloc, 1)
      : allocCounted(heap, size, a, this.alloc, 1);
    if (view === null) throw heap.ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode DebugAllocator.alloc}, but `null` instead of an out-of-memory or limit error. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    checkSize(size, "allocate");
    const a = checkAlignment(align, "allocate", native.pageSize);
    const heap = this.#heap;
    if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("allocate");
    if (size === 0) return new Uint8Array(0);
    const view = heap.leanChecks && a === 16
      ? allocChecked(heap, size, this.tryAlloc, 1)
      : this.#safety
      ? heap.allocBlock(size, a, this.tryAlloc, 1)
      : allocCounted(heap, size, a, this.tryAlloc, 1);
    // Not a tail call: Bun (JavaScriptCore) drops the caller's frame of a tail call, and traces start at this frame.
    if (view === null) return null;
    return view;
  }

  /** A typed array of `length` elements (aligned to at least its element size). */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const heap = this.#heap;
    const made: { block: Uint8Array<ArrayBuffer> | null } = { block: null };
    const array = typedArrayOf(
      (size, a) => {
        if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("allocate an array");
        if (size === 0) return new Uint8Array(0);
        const block = heap.allocBlock(size, a, this.array, 3);
        if (block === null) throw heap.ledger.failure(size, a);
        made.block = block;
        return block;
      },
      ctor,
      length,
      align,
    );
    if (made.block !== null && !this.#detach && this.#safety) {
      // The typed array is the view handed out (the block's generation, see _freed_records.ts).
      const slot = heap.locate(made.block);
      if (slot >= 0) heap.blocks.handed[slot] = array;
    }
    return array;
  }

  /**
   * Frees a block after checking it: canaries intact, freed once, its own.
   * Nothing changes when the backing refuses (a stack freed out of order).
   * A holder of the block (a child allocator or an array built over it, also through an Allocator written in
   * JavaScript) is told once it is freed, as by any allocator: code it runs then cannot call back in
   * ("unsupported"; `owns` and `stats` answer), and what a revoked child gives back goes back right after.
   * @throws {AllocationError} "double-free", "invalid-free", "mismatched-allocator", "use-after-free" (its backing released it, or after `deinit()`), "corruption" (a canary was overwritten; the block is still freed), "unsupported" from code its backing runs while it calls the backing, or a holder runs while it is told of a free, resize or release.
   */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    const heap = this.#heap;
    if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("free");
    if (isEmptyView(view)) return; // it names no block, not even one it starts at
    // The flat paths take the common case; they change nothing when they decline it.
    if (
      heap.leanChecks ? freeChecked(heap, view, FREED, this.free, 1) : !this.#safety && freeCounted(heap, view, FREED)
    ) {
      return;
    }
    const slot = this.#slotOf(view, "free");
    if (slot < 0) {
      if (slot === UNKNOWN) passFree(heap, view);
      return;
    }
    const corruption = this.#safety ? heap.corruption(slot) : null;
    heap.freeBlock(slot, FREED, this.free, 1);
    if (corruption !== null) throw corruption;
  }

  /**
   * Resizes a block, keeping its contents up to the smaller size; `newSize` 0
   * frees it. The block moves (new block, copy, free), so the old view reads
   * as length 0 and stale pointers to it are caught, except where the backing
   * can only resize in place (the top block of a stack). The block keeps its
   * alignment. A failure leaves the block and every counter as they were.
   * @throws {AllocationError} As for `alloc` and `free` ("limit-exceeded" checked before the backing is asked); "corruption" when the block's canaries are damaged (nothing is changed), or when the backing's resize throws what no Allocator throws to refuse (not an AllocationError, RangeError or TypeError: a Symbol, a Proxy, a plain Error; the value is the cause, read without running its code, and the block is as it was); a backing's refusal to resize the block in place, with its category, said about the backing (its error the cause).
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const heap = this.#heap;
    if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("resize");
    // The holders of the block told of its move or change (see DebugHeap.tellFreed) give back what they put off
    // once the view to hand out has been taken.
    beginChange();
    try {
      return this.#resize(heap, view, newSize);
    } finally {
      endChange();
    }
  }

  #resize(heap: DebugHeap, view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    const slot = isEmptyView(view) ? -1 : this.#slotOf(view, "resize");
    if (slot < 0) {
      if (slot === UNKNOWN) return passResize(heap, view, newSize);
      if (newSize === 0) return new Uint8Array(0);
      const fresh = heap.allocBlock(newSize, 16, this.resize, 1);
      if (fresh === null) throw heap.ledger.failure(newSize);
      return fresh;
    }
    const corruption = this.#safety ? heap.corruption(slot) : null;
    if (newSize === 0) {
      heap.freeBlock(slot, "DebugAllocator.resize(view, 0) released it", this.resize, 1);
      if (corruption !== null) throw corruption;
      return new Uint8Array(0);
    }
    if (corruption !== null) throw corruption;
    resizeBlock(heap, slot, newSize, true, this.resize, 1);
    const fresh = heap.lastView!;
    heap.lastView = null;
    return fresh;
  }

  /** Whether `view` starts a live block of this allocator. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    const heap = this.#heap;
    // (Answered while it is busy too: code its backing or a holder runs may ask, as of any allocator.)
    if (heap.ledger.over) return false;
    const slot = heap.locate(view);
    if (slot < 0) return false;
    if (this.#detach || !this.#safety || view === heap.blocks.handed[slot]) return true;
    const stale = heap.records.byView(view);
    return stale === null || stale.id === heap.blocks.ids[slot];
  }

  /** Counters of the blocks as the user sees them (canaries are overhead); the backing's free space. */
  stats(): AllocatorStats {
    const heap = this.#heap;
    const ledger = heap.ledger;
    if (ledger.over) {
      return ledger.stats({
        capacityBytes: 0,
        availableBytes: 0,
        largestFreeBlock: 0,
        freeBlocks: 0,
        overheadBytes: 0,
      });
    }
    const backing = heap.backing.stats();
    return ledger.stats({
      capacityBytes: backing.capacityBytes,
      availableBytes: backing.availableBytes,
      largestFreeBlock: backing.largestFreeBlock,
      freeBlocks: backing.fragmentation,
      overheadBytes: Math.max(0, backing.allocatedBytes - ledger.allocatedBytes),
    });
  }

  /**
   * Its blocks as a versioned JSON description (see {@linkcode AllocatorDump}),
   * read from the records it keeps anyway: nothing is recorded for it when
   * blocks come and go. Each block it took from its backing is a chunk, in
   * allocation order: the user's bytes as a used block, tagged (`owner`)
   * with the first frame of the program where it was allocated when it was
   * traced (`stackTraceFrames`), else null, and its header and canaries as
   * used blocks tagged `"canary"` (guard bytes, not allocations: `requested`
   * 0). Freed blocks held back from the backing (`neverUnmap`,
   * `retainMetadata`) follow as free chunks tagged `"quarantine"`. With
   * `safety: false` a chunk is the backing's block, with no guard bytes.
   * @throws {AllocationError} "use-after-free" after `deinit()` or `dispose()`, or once its backing is gone.
   *
   * @example
   * ```ts
   * import { DebugAllocator, PoolAllocator } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using pool = new PoolAllocator({ blockSize: 128 });
   * const debug = new DebugAllocator(pool, { stackTraceFrames: 4 });
   * const block = debug.alloc(64);
   * const [chunk] = debug.dump().chunks;
   * const used = chunk.blocks.filter((b) => !b.free && b.owner !== "canary");
   * assert.equal(used[0].requested, 64); // 16 guard bytes on each side
   * console.log(used[0].owner); // where it was allocated: the line above that called alloc
   * debug.free(block);
   * debug.deinit();
   * ```
   */
  dump(): AllocatorDump {
    const heap = this.#heap;
    heap.ledger.guard("dump the DebugAllocator");
    return dumpHeap(heap, this.stats());
  }

  /**
   * Every block still allocated, oldest first. Read with the built-ins memkit
   * captured when it loaded, so a program that replaced one (a no-op
   * `Array.prototype.map`) still sees every leak, here and at exit; a trace
   * that cannot be formatted (a throwing `Error.prepareStackTrace` under a
   * frozen `Error`) is left out.
   */
  leaks(): LeakRecord[] {
    const now = dateNow();
    const heap = this.#heap;
    const blocks = heap.blocks;
    const slots = blocks.liveSlots();
    const records: LeakRecord[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      const record: LeakRecord = {
        address: blocks.addresses[slot],
        size: blocks.sizes[slot],
        align: blocks.aligns[slot],
        ageMs: max(0, now - blocks.born[slot]),
      };
      const stack = heap.tracer.format(blocks.traces[slot]);
      if (stack !== undefined) record.stack = stack;
      if (blocks.unreachable[slot]) record.unreachable = true;
      records[i] = record;
    }
    return records;
  }

  /**
   * Checks every live block's canaries and, with `poison` and freed memory
   * held back (`neverUnmap` or `retainMetadata`), that no freed block was
   * written after its free (its bytes still read 0xDD); a block that left
   * the quarantine written is reported by the next call.
   * @throws {AllocationError} "corruption" naming the first damaged block; "use-after-free" naming a freed block written after its free, and after `deinit()`.
   */
  check(): void {
    const heap = this.#heap;
    heap.ledger.guard("check");
    const slots = heap.blocks.liveSlots();
    for (let i = 0; i < slots.length; i++) {
      const error = heap.corruption(slots[i]);
      if (error !== null) throw error;
    }
    const late = heap.lateWrite;
    if (late !== null) {
      heap.lateWrite = null; // reported once: that memory went back to the backing
      throw late;
    }
    for (const held of heap.quarantine?.held() ?? []) {
      const error = heap.writtenAfterFree(held);
      if (error !== null) throw error;
    }
  }

  /** A report a person can act on: counts, bytes, and each leaked block (built as {@linkcode DebugAllocator.leaks} is). */
  report(): string {
    const leaks = this.leaks();
    if (leaks.length === 0) return "memkit: no leaks";
    let bytes = 0, unreachable = 0;
    for (let i = 0; i < leaks.length; i++) {
      bytes += leaks[i].size;
      if (leaks[i].unreachable) unreachable++;
    }
    const lines = [
      `memkit: ${leaks.length} leaked block${leaks.length === 1 ? "" : "s"}, ${bytes} bytes` +
      (unreachable ? ` (${unreachable} unreachable: every view was garbage-collected without free)` : ""),
    ];
    const listed = leaks.length < 50 ? leaks.length : 50;
    for (let i = 0; i < listed; i++) {
      const leak = leaks[i];
      lines[lines.length] =
        `  ${leak.size} bytes at 0x${hex(leak.address)}, align ${leak.align}, age ${fixed(leak.ageMs, 0)} ms` +
        (leak.unreachable ? ", unreachable" : "");
      if (leak.stack) {
        const frames = split(leak.stack, "\n");
        for (let f = 0; f < frames.length; f++) lines[lines.length] = `      ${frames[f]}`;
      }
    }
    if (leaks.length > 50) lines[lines.length] = `  … and ${leaks.length - 50} more`;
    return join(lines, "\n");
  }

  /**
   * Ends the allocator's life: returns every block (live, and kept by
   * `neverUnmap` or `retainMetadata`) to the backing, and says whether
   * anything leaked. Afterwards every call throws "use-after-free", and
   * every view it handed out reads as length 0 where a block has a buffer of
   * its own (`detachFreed`, or the default SystemAllocator backing); views
   * into a backing that carves blocks from larger buffers (a pool, an arena,
   * a free list) follow that backing's rules, as its blocks do. A second call
   * returns "ok".
   * @returns "leak" when blocks were still allocated, else "ok".
   * @throws {AllocationError} "unsupported" from code its backing runs while it calls the backing (an Arena observer), or a holder of its memory runs while it is told of a free, resize or release.
   */
  deinit(): "ok" | "leak" {
    const leaked = teardown(this.#heap, "was deinitialized", "DebugAllocator.deinit() released it");
    return leaked === true ? "leak" : "ok";
  }

  /** {@linkcode DebugAllocator.deinit} without the verdict, for `using`; a second call does nothing. */
  dispose(): void {
    teardown(this.#heap, "was disposed", "DebugAllocator.dispose() released it");
  }

  /** Same as {@linkcode DebugAllocator.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // The live block `view` starts; -1 for an empty view that holds nothing;
  // UNKNOWN (safety off) for a view the backing must judge; with safety on,
  // throws for every kind of misuse.
  #slotOf(view: ArrayBufferView, op: "free" | "resize"): number {
    const heap = this.#heap;
    const slot = heap.locate(view);
    // A detached view reads offset 0: without own buffers (whose views all start at 0), locate() matched the
    // view's offset to the block's, so only a block at offset 0 of the backing's buffer can be seen through one.
    if (slot >= 0 && (this.#detach || heap.blocks.userOffsets[slot] === 0) && isDetached(bufferOf(view))) {
      // A live block seen through a detached buffer: transferred away (memkit detaches only what it releases).
      heap.keepBlock(slot);
      throw transferredError(
        op,
        `the ${heap.blocks.sizes[slot]}-byte block at 0x${heap.blocks.addresses[slot].toString(16)}`,
      );
    }
    if (slot >= 0) {
      if (!this.#detach && this.#safety && view !== heap.blocks.handed[slot]) checkGeneration(view, slot, op, heap);
      return slot;
    }
    if (this.#safety) return diagnose(view, op, heap);
    return isEmptyView(view) ? -1 : UNKNOWN;
  }
}

// A view the backing must judge (safety off), passed on with the heap busy: code the backing runs cannot call back.
// In a change: what the holders the backing tells give back waits until the heap is no longer busy.
function passFree(heap: DebugHeap, view: ArrayBufferView): void {
  beginChange();
  const calling = heap.ledger.busy();
  try {
    heap.backing.free(view);
  } finally {
    if (calling) heap.ledger.idle();
    endChange();
  }
}

function passResize(heap: DebugHeap, view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
  const calling = heap.ledger.busy();
  try {
    // A block this heap does not know (safety off): the backing's answer, as it typed it; a backing of memkit's
    // own returns ArrayBuffer memory, and a DebugAllocator refuses shared buffers for the blocks it records.
    return heap.backing.resize(view, newSize) as Uint8Array<ArrayBuffer>;
  } finally {
    if (calling) heap.ledger.idle();
  }
}
