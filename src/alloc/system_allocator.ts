/**
 * The allocator that asks the operating system for every block.
 *
 * @module
 */
import { intrinsic } from "../../ffi/boundary.ts";
import { native } from "../../ffi/native.ts";
import { createStamp } from "../base/_stamp.ts";
import { type CensusEntry, type CensusOwner, censusOwner, enterCensus, leaveCensus } from "../base/_native_census.ts";
import { typedArrayOf } from "./_typed_array_of.ts";
import { detach, isDetached, mayRelease, transferredError } from "../base/_detach.ts";
import { beginChange, endChange, LeaseTable, registerLeases, tellFreed } from "./_lease.ts";
import { Ledger } from "./_ledger.ts";
import { type Extent, RetainedExtents } from "./_retained_extents.ts";
import { registerTrimmer } from "../base/_trimmers.ts";
import { foreignBlockError, isEmptyView, registerOwner } from "./_ownership.ts";
import { describeBlock, interiorError, type ListedBlock, unlistBlock } from "./_own_blocks.ts";
import { platformError } from "../base/_platform_error.ts";
import {
  bufferOf,
  checkAlignment,
  checkSize,
  checkView,
  integerIn,
  MAX_BLOCK_SIZE,
  offsetOf,
  parseOptions,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { type AllocatorDump, makeDump } from "./dump.ts";

/**
 * Options of {@linkcode SystemAllocator}.
 *
 * @example
 * ```ts
 * import { SystemAllocator, type SystemAllocatorOptions } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const options: SystemAllocatorOptions = { zero: true, mmapThreshold: 1 << 20 };
 * const allocator = new SystemAllocator(options);
 * const block = allocator.alloc(100);
 * assert.equal(block[99], 0);
 * allocator.free(block);
 * ```
 */
export interface SystemAllocatorOptions {
  /**
   * Blocks of at least this many bytes get their own `mmap` (page-aligned,
   * zero-filled, returned to the OS on free); smaller ones use `malloc` or
   * `posix_memalign`. The default is glibc's own upper mmap threshold: below
   * it, malloc already maps large blocks and learns to reuse sizes the program
   * frees and allocates again, which is 5× faster than a fresh mapping.
   * A `malloc` block that `resize` grows past it stays a `malloc` block.
   * @default {33554432}
   */
  mmapThreshold?: number;
  /**
   * Zero-fill every block.
   * @default {false}
   */
  zero?: boolean;
  /**
   * Bytes of freed large blocks (128 KiB and up) kept, with their pages, for
   * the next large allocation or growth instead of going back to libc: a
   * reused block takes no page faults (a fresh page costs one on first
   * touch). 0 turns it off. `trim()`, `dispose()` and a `PressureMonitor`
   * reaching High give them back to the system.
   * @default {67108864}
   */
  retainBytes?: number;
}

const OptionsSchema = z.object({
  mmapThreshold: integerIn(1, MAX_BLOCK_SIZE).optional(),
  zero: z.boolean().optional(),
  retainBytes: integerIn(0, MAX_BLOCK_SIZE).optional(),
}).strict();

interface Block {
  readonly address: number;
  readonly size: number;
  readonly align: number;
  /** Bytes mapped with mmap, or 0 for a malloc block. */
  readonly mapped: number;
  /** Bytes libc holds for it (at least `size`: a reused retained extent may be larger). */
  readonly capacity: number;
  /** Memory that was used before (a retained extent): its old bytes are still there. */
  readonly reused?: boolean;
}

interface LiveBlock extends Block, ListedBlock {
  readonly owner: SystemAllocator;
  /** Its line in the census of native memory (the leak check at exit). */
  readonly census: CensusEntry;
  /** Position in the owner's list of live blocks. */
  index: number;
  /** The block's buffer, to detach it on dispose. */
  buffer: ArrayBuffer;
}

// Each block's ArrayBuffer carries its record in a private slot: no other
// code can reach or edit it, and it costs a property add, not a Map or
// WeakMap entry per block (see _stamp.ts).
const BLOCKS = createStamp<LiveBlock>();

// The record, while `buffer` is still the block's own: a same-size resize
// wraps the block again, and the old buffer's stamp must not reach it.
function blockOf(buffer: ArrayBufferLike): LiveBlock | undefined {
  const block = BLOCKS.get(buffer);
  return block !== undefined && block.buffer === buffer ? block : undefined;
}

/**
 * Gives every block its own native allocation: `malloc` (or `posix_memalign`
 * above 16-byte alignment), and a private `mmap` for blocks of `mmapThreshold`
 * bytes (32 MiB) or more. Each
 * block gets its own ArrayBuffer, which `free` and a moving `resize` detach
 * (length 0) before the memory goes back, so no view outlives its memory.
 * Memory is not zeroed unless `zero` is set (mmap blocks always are).
 *
 * This is the baseline the other allocators are measured against, and their
 * usual backing: about 1 µs per block, most of it spent creating the
 * ArrayBuffer over native memory.
 *
 * @example Allocate, resize, free
 * ```ts
 * import { SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const allocator = new SystemAllocator();
 * let block = allocator.alloc(100);
 * block.fill(7);
 * block = allocator.resize(block, 200); // contents kept, old view detached
 * assert.equal(block[99], 7);
 * const samples = allocator.array(Float64Array, 1000);
 * samples[0] = Math.PI;
 * assert.equal(allocator.stats().liveAllocations, 2);
 * allocator.free(block);
 * allocator.free(samples);
 * assert.equal(samples.length, 0); // detached
 * ```
 */
export class SystemAllocator implements Allocator, Disposable {
  /** Always `"system"`. */
  readonly kind = "system" as const;
  readonly #leases = new LeaseTable();
  readonly #ledger = new Ledger("system", "SystemAllocator");
  readonly #blocks: LiveBlock[] = [];
  readonly #mmapThreshold: number;
  readonly #zero: boolean;
  readonly #retained: RetainedExtents;
  // Blocks taken with no memkit owner's call running are this allocator's own.
  readonly #censusOwner = censusOwner("SystemAllocator");

  /**
   * Creates an allocator; it holds no memory until the first `alloc`.
   *
   * @param options Where mmap takes over and whether to zero blocks.
   * @throws {TypeError} For options of the wrong type or unknown keys.
   * @throws {RangeError} For an out-of-range `mmapThreshold`.
   * @throws {AllocationError} "unsupported" when libc cannot be opened (e.g. Deno without `--allow-ffi`).
   */
  constructor(options?: SystemAllocatorOptions) {
    if (options === undefined) options = {};
    registerLeases(this, this.#leases);
    const parsed = parseOptions(OptionsSchema, options, "create SystemAllocator");
    if (native.libcError) throw new AllocationError("unsupported", native.libcError);
    this.#mmapThreshold = parsed.mmapThreshold ?? 32 << 20;
    this.#zero = parsed.zero ?? false;
    this.#retained = new RetainedExtents(parsed.retainBytes ?? 64 << 20);
    registerOwner(this, "system", SystemAllocator.#holds);
    registerTrimmer(this, () => this.trim());
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const block = blockOf(buffer);
    return block !== undefined && block.owner === owner && block.index >= 0;
  }

  // The live block of this allocator behind `buffer`, if any.
  #own(buffer: ArrayBufferLike): LiveBlock | undefined {
    const block = blockOf(buffer);
    return block !== undefined && block.owner === this && block.index >= 0 ? block : undefined;
  }

  /**
   * Allocates `size` bytes aligned to `align` (default 16).
   * @throws {TypeError} When size or align is not a number.
   * @throws {RangeError} When size is negative, fractional or above 2^47, or align is not a power of two up to the page size.
   * @throws {AllocationError} "out-of-memory" when the system refuses, or the runtime cannot view that many bytes at once.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align ?? 16);
    return view;
  }

  /** Like {@linkcode SystemAllocator.alloc}, but `null` when the system is out of memory. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    checkSize(size, "allocate");
    const alignment = checkAlignment(align, "allocate", native.pageSize);
    this.#ledger.guard("allocate");
    if (size === 0) return new Uint8Array(0);
    if (size > native.maxViewBytes) return this.#fail(viewLimitError()); // before any memory is taken
    const block = this.#allocateBlock(size, alignment);
    if (block === null) return null;
    return this.#adopt(block);
  }

  /**
   * A typed array of `length` elements in its own block, aligned to at least
   * its element size and 16.
   * @throws {TypeError} When `ctor` is not a typed array constructor.
   */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  /**
   * Returns a block to the system and detaches its views.
   * @throws {TypeError} When `view` is not a typed array or DataView.
   * @throws {AllocationError} "double-free", "invalid-free" (foreign or interior view) or "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    // The checks LockedBlocks.free makes too, inline here: this is the hot path, and the block lookup differs.
    checkView(view, "free");
    this.#ledger.guard("free");
    const buffer = bufferOf(view);
    if (isEmptyView(view)) return; // an empty view holds nothing (alloc(0)'s, or any other): nothing to return
    const block = this.#own(buffer);
    if (block === undefined) throw this.#unknownBlock(view, "free");
    if (offsetOf(view) !== 0) throw interiorError(view, block, "free");
    if (isDetached(block.buffer)) throw transferredError("free", describeBlock(block));
    this.#release(buffer, block, "SystemAllocator.free() released it", "free");
  }

  /**
   * Resizes a block, keeping `min(old, new)` bytes. Always returns a new view
   * and detaches the old one, whether or not the memory moved (so a stale
   * view is caught at once).
   * @throws {AllocationError} "out-of-memory" (the old block stays valid), "use-after-free", "invalid-free", "mismatched-allocator".
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    // The checks LockedBlocks.resize makes too, inline for the reasons of free.
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    this.#ledger.guard("resize");
    const buffer = bufferOf(view);
    if (isEmptyView(view)) return this.alloc(newSize); // size 0 is not a block: see Allocator
    const block = this.#own(buffer);
    if (block === undefined) throw this.#unknownBlock(view, "resize");
    if (offsetOf(view) !== 0) throw interiorError(view, block, "resize");
    if (isDetached(block.buffer) || !mayRelease(block.address, block.size)) {
      throw transferredError("resize", describeBlock(block));
    }
    // A block a holder may keep memory in: the holder is told in the middle of the resize, and what it gives back
    // waits until the resize is made (see withChange).
    if (this.#leases.leased === 0) return this.#resize(buffer, block, newSize);
    beginChange();
    try {
      return this.#resize(buffer, block, newSize);
    } finally {
      endChange();
    }
  }

  // Resizes live `block` (over `buffer`, checked) to `newSize`: see resize.
  #resize(buffer: ArrayBufferLike, block: LiveBlock, newSize: number): Uint8Array<ArrayBuffer> {
    const reason = "SystemAllocator.resize() moved it";
    if (newSize === 0) {
      this.#release(buffer, block, reason, "resize");
      return new Uint8Array(0);
    }
    if (newSize === block.size) {
      // Same place, same size: only the old views are detached, as promised.
      const leases = this.#leases;
      if (leases.leased !== 0) tellFreed(this.#ledger, "resize", leases, block.address, reason, block.size);
      detach(buffer, block.address, block.size);
      // SAFETY: the same live block, wrapped again.
      block.buffer = native.wrap(block.address, block.size);
      BLOCKS.set(block.buffer, block);
      return new Uint8Array(block.buffer);
    }

    if (newSize > native.maxViewBytes) {
      // Refused before anything changes: past here the old block is let go before the new one is viewed.
      this.#fail(viewLimitError());
      throw new AllocationError("out-of-memory", `Cannot resize to ${newSize} bytes: ${this.#lastReason}`);
    }
    if (newSize <= block.capacity && 2 * newSize >= block.capacity) {
      // Within the memory it already has (a reused extent is larger than its
      // block), and not shrinking it below half: no libc call, no copy.
      this.#forget(buffer, block, reason, "resize");
      const fresh = this.#adopt(
        { address: block.address, size: newSize, align: block.align, mapped: block.mapped, capacity: block.capacity },
        block.census.owner,
        false,
      );
      if (fresh === null) {
        throw new AllocationError("out-of-memory", `Cannot resize to ${newSize} bytes: ${this.#lastReason}`);
      }
      if ((this.#zero || block.mapped !== 0) && newSize > block.size) intrinsic.fill(fresh, 0, block.size);
      return fresh;
    }
    if (
      block.mapped === 0 && block.align <= 16 && !this.#retained.fits(newSize, 16) &&
      (this.#leases.leased === 0 || !this.#leases.holds(block.address, block.capacity))
    ) {
      // realloc may grow in place and keeps malloc's 16-byte alignment; a block
      // that grows past mmapThreshold stays with it too, since glibc moves large
      // blocks with mremap (no copy, no fresh page faults for the old bytes).
      // (A retained extent that fits is better still: no fresh pages at all,
      // so the general path below takes it.) Not for a leased block, whether
      // the lease is at its start or anywhere inside it (a part of it passed
      // on by an Allocator in JavaScript): realloc frees the old memory before
      // its holders could be told and say whether a buffer of theirs was
      // transferred away, so the general path below (tell them, then release
      // only what no stolen buffer reaches) moves it.
      const address = native.heap.realloc(block.address, newSize);
      if (address === 0) {
        const error = platformError("realloc", `${newSize}`, "out-of-memory");
        this.#ledger.fail("out-of-memory", error.message, error);
        throw new AllocationError("out-of-memory", `Cannot resize to ${newSize} bytes: ${error.message}`, error);
      }
      this.#forget(buffer, block, reason, "resize");
      const fresh = this.#adopt(
        { address, size: newSize, align: block.align, mapped: 0, capacity: newSize },
        block.census.owner,
        false,
      );
      if (fresh === null) {
        throw new AllocationError("out-of-memory", `Cannot resize to ${newSize} bytes: ${this.#lastReason}`);
      }
      if (this.#zero && newSize > block.size) intrinsic.fill(fresh, 0, block.size);
      return fresh;
    }
    const next = this.#allocateBlock(newSize, block.align);
    const fresh = next === null ? null : this.#adopt(next, block.census.owner);
    if (fresh === null) {
      throw new AllocationError("out-of-memory", `Cannot resize to ${newSize} bytes: ${this.#lastReason}`);
    }
    intrinsic.set(fresh, intrinsic.uint8Array(buffer, 0, Math.min(block.size, newSize)));
    this.#release(buffer, block, reason, "resize");
    return fresh;
  }

  /** Whether `view` points into a live block of this allocator. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    return this.#own(bufferOf(view)) !== undefined;
  }

  /**
   * Counters; `overheadBytes` is what libc and page rounding add (measured
   * with `malloc_usable_size` where libc has it). O(live blocks).
   */
  stats(): AllocatorStats {
    let capacity = 0;
    const usable = native.heap.usableSize;
    for (const block of this.#blocks) {
      capacity += block.mapped || (usable ? usable(block.address) : block.size);
    }
    return this.#ledger.stats({ capacityBytes: capacity, availableBytes: 0, largestFreeBlock: 0, freeBlocks: 0 });
  }

  /**
   * Each live block as its own chunk (one `malloc` or `mmap` each; page rounding shows as a free tail) as a versioned JSON description: chunks and their blocks (offset,
   * size, free or used, owner). See {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    this.#ledger.guard("dump the SystemAllocator");
    return makeDump(
      this.stats(),
      this.#blocks.map((block) => ({
        address: block.address,
        size: Math.max(block.mapped, block.size),
        blocks: [{ offset: 0, size: block.size, free: false }],
      })),
    );
  }

  /**
   * Frees every live block (its views read as length 0) and ends the
   * allocator: every later call but `owns` (false) and `stats` (the final
   * counters) throws "use-after-free". A second call does nothing.
   */
  dispose(): void {
    this.#ledger.refuseWhileBusy("dispose"); // code a holder of its blocks runs cannot end it halfway through a call
    if (!this.#ledger.end("was disposed")) return;
    this.#leases.releasedAll("SystemAllocator.dispose() released it");
    for (const block of [...this.#blocks]) {
      this.#forgetRecord(block);
      detach(block.buffer, block.address, block.size);
      this.#giveBack(block);
    }
    this.trim();
  }

  /** Same as {@linkcode SystemAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #lastReason = "";

  #allocateBlock(size: number, align: number): Block | null {
    // From mmapThreshold up a block is an mmap (page-aligned, zero-filled): only a mapped extent can stand in for one.
    const mapped = size >= this.#mmapThreshold;
    const kept = this.#retained.take(size, mapped ? Math.max(align, native.pageSize) : align, mapped);
    if (kept !== null) {
      return { address: kept.address, size, align, mapped: kept.mapped, capacity: kept.capacity, reused: true };
    }
    const libc = native.libc;
    if (size >= this.#mmapThreshold) {
      const length = Math.ceil(size / native.pageSize) * native.pageSize;
      const p = native.platform;
      const address = libc.mmap(0, length, p.PROT_READ | p.PROT_WRITE, p.MAP_PRIVATE | p.MAP_ANONYMOUS, -1, 0);
      if (address >= 2 ** 63 || address === 0) {
        return this.#fail(platformError("mmap", `${length} bytes`, "out-of-memory"));
      }
      return { address, size, align, mapped: length, capacity: length };
    }
    if (align <= 16) {
      // malloc already aligns to 16 on every 64-bit libc memkit supports.
      const address = native.heap.malloc(size);
      if (address === 0) return this.#fail(platformError("malloc", `${size}`, "out-of-memory"));
      return { address, size, align, mapped: 0, capacity: size };
    }
    const address = native.heap.memalign(align, size);
    if (address <= 0) {
      const code = -address;
      return this.#fail(
        new AllocationError(
          "out-of-memory",
          `posix_memalign returned ${code === 12 ? "ENOMEM (out of memory)" : `error ${code}`}`,
          { call: "posix_memalign", errno: code },
        ),
      );
    }
    return { address, size, align, mapped: 0, capacity: size };
  }

  #fail(error: AllocationError): null {
    this.#lastReason = error.message;
    return this.#ledger.fail("out-of-memory", error.message, error);
  }

  // A view over a fresh block, or null (the block given back) when the
  // runtime refuses to view that many bytes at once.
  #adopt(block: Block, keep: CensusOwner | null = null, fill = true): Uint8Array<ArrayBuffer> | null {
    let buffer: ArrayBuffer;
    try {
      // SAFETY: the block is `size` bytes this allocator owns; free/resize/dispose detach the buffer first.
      buffer = native.wrap(block.address, block.size);
    } catch (error) {
      // No native resource may outlive a failed wrap.
      this.#giveBack(block);
      return this.#fail(
        new AllocationError(
          "out-of-memory",
          `the runtime cannot view ${block.size} bytes in one ArrayBuffer (${(error as Error).message})`,
        ),
      );
    }
    const census = enterCensus(block.address, block.size, this.#censusOwner, keep);
    const live: LiveBlock = { ...block, owner: this, census, index: this.#blocks.length, buffer };
    this.#blocks.push(live);
    BLOCKS.set(buffer, live);
    this.#ledger.allocated(block.size);
    const view = new Uint8Array(buffer);
    // mmap blocks are zero-filled by the system; a reused one is filled here to keep that promise.
    // (`fill` false: a resize in place or by realloc, whose contents are the block's own.)
    if (fill && (this.#zero ? block.mapped === 0 || block.reused : block.mapped !== 0 && block.reused)) {
      intrinsic.fill(view, 0);
    }
    return view;
  }

  // Detaches every view of the block, then forgets it (the memory is not freed). Its holders are told first, the
  // allocator busy meanwhile: inside withChange, so what they give back waits until the free or resize is made.
  #forget(buffer: ArrayBufferLike, block: LiveBlock, reason: string, op: string): void {
    const leases = this.#leases;
    if (leases.leased !== 0) tellFreed(this.#ledger, op, leases, block.address, reason, block.size);
    detach(buffer, block.address, block.size); // attached: free and resize check that first
    this.#forgetRecord(block);
  }

  #forgetRecord(block: LiveBlock): void {
    unlistBlock(this.#blocks, block);
    leaveCensus(block.census);
    this.#ledger.freed(block.size);
  }

  #release(buffer: ArrayBufferLike, block: LiveBlock, reason: string, op: string): void {
    // The first rule of the safety model: detach before the memory goes back.
    if (this.#leases.leased !== 0) {
      this.#releaseTold(buffer, block, reason, op);
      return;
    }
    this.#forget(buffer, block, reason, op);
    this.#giveBack(block);
  }

  // #release of a block a holder may lease (off the hot path): what the holders give back waits until it is done.
  #releaseTold(buffer: ArrayBufferLike, block: LiveBlock, reason: string, op: string): void {
    beginChange();
    try {
      this.#forget(buffer, block, reason, op);
      this.#giveBack(block);
    } finally {
      endChange();
    }
  }

  #giveBack(block: Block): void {
    // Memory another buffer may still reach (a memkit buffer over it was transferred away) is kept.
    if (!mayRelease(block.address, block.capacity)) return;
    if (this.#ledger.ended === null && this.#retained.keep(block, SystemAllocator.#toSystem)) return; // its pages serve the next large block
    SystemAllocator.#toSystem(block);
  }

  static #toSystem(extent: Extent): void {
    if (extent.mapped) native.libc.munmap(extent.address, extent.mapped);
    else native.heap.free(extent.address);
  }

  /**
   * Gives the retained extents (freed large blocks kept for reuse) back to
   * the system. Called by `dispose()` and, for every SystemAllocator, when a
   * `PressureMonitor` reaches High.
   * @returns The bytes given back.
   *
   * @example
   * ```ts
   * import { SystemAllocator } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using allocator = new SystemAllocator();
   * allocator.free(allocator.alloc(1 << 20)); // kept: the next 1 MiB block reuses its pages
   * assert.equal(allocator.retainedBytes, 1 << 20);
   * assert.equal(allocator.trim(), 1 << 20);
   * assert.equal(allocator.retainedBytes, 0);
   * ```
   */
  trim(): number {
    return this.#retained.drain(SystemAllocator.#toSystem);
  }

  /** Bytes of freed large blocks kept for reuse (see `retainBytes`). */
  get retainedBytes(): number {
    return this.#retained.bytes;
  }

  #unknownBlock(view: ArrayBufferView, op: "free" | "resize"): AllocationError {
    // Freed blocks' buffers are detached, so a detached view means its memory was released.
    return foreignBlockError(view, op, this, "SystemAllocator");
  }
}

/** A block larger than the runtime can view in one ArrayBuffer (4 GiB in Bun): refused before any native call. */
function viewLimitError(): AllocationError {
  return new AllocationError(
    "out-of-memory",
    `more than one ArrayBuffer holds: ${
      native.runtime === "bun" ? "Bun" : "Deno"
    } allows at most ${native.maxViewBytes} ` +
      "bytes per ArrayBuffer (nativeInfo().maxViewBytes); allocate smaller blocks, or reserve the memory with " +
      "mapPages(size) and use it through windows (mapping.view(offset, length))",
  );
}
