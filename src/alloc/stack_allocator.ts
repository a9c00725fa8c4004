/**
 * A last-in, first-out allocator with markers.
 *
 * @module
 */
import { anyTaken, isDetached, mayRelease, THEFT, transferredError } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { type Chunk, ChunkSource, roundToPage } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import {
  beginChange,
  endChange,
  LeaseTable,
  registerLeases,
  resizedUnderLease,
  tellFreed,
  tellHolders,
} from "./_lease.ts";
import { Ledger } from "./_ledger.ts";
import { isEmptyView, ownerKindOf, registerOwner } from "./_ownership.ts";
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
  withArticle,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { checkViewLimit } from "../base/_view_limit.ts";
import { type AllocatorDump, makeDump, type RawBlock } from "./dump.ts";

/**
 * Options of {@linkcode StackAllocator}.
 *
 * @example
 * ```ts
 * import { StackAllocator, type StackAllocatorOptions } from "@memkit/memkit";
 *
 * const options: StackAllocatorOptions = { capacity: 64 << 10 };
 * const stack = new StackAllocator(options);
 * stack.dispose();
 * ```
 */
export interface StackAllocatorOptions {
  /** Bytes of the stack (rounded up to whole pages); it never grows. */
  capacity: number;
  /** Where its one chunk comes from. @default {a shared SystemAllocator} */
  backing?: Allocator;
}

/**
 * A position in a {@linkcode StackAllocator}, from `mark()`, to `rewind()` to.
 *
 * @example
 * ```ts
 * import { StackAllocator, type StackMarker } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const stack = new StackAllocator({ capacity: 4096 });
 * const marker: StackMarker = stack.mark();
 * stack.alloc(100);
 * stack.rewind(marker);
 * assert.equal(stack.stats().liveAllocations, 0);
 * stack.dispose();
 * ```
 */
export interface StackMarker {
  /** Blocks live when the marker was taken. */
  readonly depth: number;
}

const OptionsSchema = z.object({
  capacity: integerIn(1, MAX_BLOCK_SIZE),
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
}).strict();

class Marker implements StackMarker {
  // `topId` names the block below the marker, so a marker whose blocks were
  // freed and replaced is recognised as stale. Private: a marker whose depth
  // a program could set would rewind the stack to any place (live blocks
  // handed out again, a NaN cursor).
  readonly #owner: StackAllocator;
  readonly #depth: number;
  readonly #topId: number;

  constructor(owner: StackAllocator, depth: number, topId: number) {
    this.#owner = owner;
    this.#depth = depth;
    this.#topId = topId;
  }

  get depth(): number {
    return this.#depth;
  }

  /** The parts of a marker `mark()` made, or null for anything else (no code of the program runs). */
  static parts(value: unknown): { owner: StackAllocator; depth: number; topId: number } | null {
    if (typeof value !== "object" || value === null || !(#depth in value)) return null;
    return { owner: value.#owner, depth: value.#depth, topId: value.#topId };
  }
}

/**
 * Blocks are freed in the reverse order of allocation (LIFO), so allocation
 * and free are a pointer bump each. Freeing out of order throws
 * `AllocationError("invalid-free")`; `mark()` and `rewind(marker)` free
 * everything allocated after a point at once. One fixed chunk: when it is
 * full, allocation fails with "out-of-memory".
 *
 * All blocks are views over the stack's one ArrayBuffer, so a freed block's
 * views stay readable until `dispose()` (which detaches them) and see later
 * allocations; use {@linkcode Arena} with `safety` for scoped temporaries
 * that must not be read after their release.
 *
 * @example
 * ```ts
 * import { StackAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const stack = new StackAllocator({ capacity: 1 << 16 });
 * const a = stack.alloc(100);
 * const b = stack.array(Float32Array, 10);
 * stack.free(b); // most recent first
 * stack.free(a);
 * assert.equal(stack.stats().allocatedBytes, 0);
 * stack.dispose();
 * ```
 */
export class StackAllocator implements Allocator, Disposable {
  /** Always `"stack"`. */
  readonly kind = "stack" as const;
  readonly #leases = new LeaseTable();
  readonly #ledger = new Ledger("stack", "StackAllocator");
  readonly #source: ChunkSource;
  readonly #chunk: Chunk;
  readonly #size: number;
  // Live blocks, bottom to top: chunk offset, requested size, and an id so a
  // stale marker is recognised. Invariant: starts increase, and every block
  // ends at or before the next one's start; #cursor is the top block's end.
  #starts: number[] = [];
  #sizes: number[] = [];
  #ids: number[] = [];
  #nextId = 1;
  #cursor = 0;

  /**
   * Takes the stack's chunk from the backing.
   *
   * @param options The capacity, and optionally the backing.
   * @throws {TypeError} For missing or mistyped options.
   * @throws {RangeError} For a capacity that is not an integer from 1 to 2^47.
   * @throws {AllocationError} "unsupported" for a capacity above what one ArrayBuffer holds in this runtime
   *   (`nativeInfo().maxViewBytes`, 4 GiB in Bun), before the backing is asked; "out-of-memory" when the backing
   *   refuses the chunk; "corruption" when it returns a block it must not.
   */
  constructor(options: StackAllocatorOptions) {
    registerLeases(this, this.#leases);
    const parsed = parseOptions(OptionsSchema, options, "create StackAllocator");
    this.#size = roundToPage(parsed.capacity);
    // The chunk is viewed as one ArrayBuffer: a larger one could be mapped but never used.
    checkViewLimit(
      this.#size,
      "create StackAllocator",
      "its chunk",
      `pass a 'capacity' of at most ${native.maxViewBytes} bytes, or use several StackAllocators`,
    );
    this.#source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "StackAllocator",
      this.#ledger,
      (reason, partial) => this.#revoke(reason, partial),
    );
    const chunk = this.#source.take(this.#size);
    if (chunk === null) {
      throw new AllocationError("out-of-memory", `Cannot create StackAllocator: ${this.#source.refusal}`);
    }
    this.#chunk = chunk;
    registerOwner(this, "stack", StackAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const stack = owner as StackAllocator;
    return !stack.#ledger.over && stack.#chunk.buffer === buffer;
  }

  /**
   * Allocates `size` bytes on top of the stack.
   * @throws {AllocationError} "out-of-memory" when the stack is full, "use-after-free" after `dispose()`.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode StackAllocator.alloc}, but `null` when the stack is full. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    const peak = this.#ledger.peakBytes;
    const start = this.#push(size, align, "allocate");
    if (start < 0) return null;
    try {
      return new Uint8Array(this.#chunk.buffer, start, size);
    } catch (error) {
      if (size !== 0) this.#unpush(peak);
      this.#transferred(error, "allocate");
    }
  }

  /** A typed array of `length` elements on top of the stack, aligned to at least its element size. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  /**
   * Frees the top block.
   * @throws {AllocationError} "invalid-free" for a block below the top (out of order), an interior or foreign view; "double-free" for a block already freed; "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    const depth = this.#find(view, "free");
    if (depth < 0) return; // an empty view holds nothing
    this.#popTop("StackAllocator.free() released it");
  }

  /**
   * Resizes the top block in place; `newSize` 0 frees it. Other blocks cannot change size in a stack.
   * @throws {AllocationError} "out-of-memory" when the stack lacks room, "unsupported" below the top.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize");
    const top = this.#starts.length - 1;
    const depth = this.#locate(view, "resize");
    if (depth < 0) return this.alloc(newSize);
    if (depth !== top) {
      throw new AllocationError(
        "unsupported",
        `Cannot resize ${describe(view)}: it is block ${depth + 1} of ${top + 1}, and only the top block of a ` +
          "stack can change size",
      );
    }
    if (newSize === 0) {
      // A 0-byte block would hold nothing yet block every free below it.
      this.#popTop("StackAllocator.resize(view, 0) released it", "resize");
      return new Uint8Array(0);
    }
    const start = this.#starts[top];
    if (start + newSize > this.#size) {
      this.#ledger.fail("out-of-memory", "the stack is full");
      throw new AllocationError(
        "out-of-memory",
        `Cannot resize to ${newSize} bytes: the stack has ${this.#size - start} bytes above the block's start`,
      );
    }
    // Only now that it fits: a resize that fails for want of room leaves a holder of the block as it was.
    const leases = this.#leases;
    const told = leases.leased !== 0 || anyTaken();
    const shrinks = leases.count !== 0 && newSize < this.#sizes[top];
    if (!told && !shrinks) return this.#resizeTop(top, start, newSize);
    // Holders of the block, and of what lies in the tail it gives up, are told first, the stack busy meanwhile,
    // and what they give back waits until the resize is made (see beginChange).
    beginChange();
    try {
      if (told) {
        resizedUnderLease(this.#ledger, leases, this.#chunk.address + start, this.#sizes[top], view, "StackAllocator");
      }
      if (shrinks) this.#tellReleased(start + newSize, this.#cursor, "the block shrank", "resize");
      return this.#resizeTop(top, start, newSize);
    } finally {
      endChange();
    }
  }

  // Resizes the top block `top` at `start` in place to `newSize` (which fits), its holders told.
  #resizeTop(top: number, start: number, newSize: number): Uint8Array<ArrayBuffer> {
    let resized: Uint8Array<ArrayBuffer>;
    try {
      resized = new Uint8Array(this.#chunk.buffer, start, newSize); // first: a throw here changes nothing
    } catch (error) {
      this.#transferred(error, "resize");
    }
    this.#ledger.resized(this.#sizes[top], newSize);
    this.#sizes[top] = newSize;
    const end = this.#cursor;
    this.#cursor = start + newSize;
    this.#reusable(this.#cursor, end);
    // The tail it gave up is reached by a transferred buffer: the stack ended keeping it (resized reads 0 bytes).
    if (this.#ledger.over) throw this.#ledger.usedAfterEnd("resize");
    return resized;
  }

  /** Whether `view` lies in a live block of this stack. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.over || bufferOf(view) !== this.#chunk.buffer || this.#starts.length === 0) return false;
    // Inside some block (not in the alignment padding between blocks).
    const offset = offsetOf(view);
    let lo = 0, hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return offset >= this.#starts[lo] && offset < this.#starts[lo] + this.#sizes[lo];
  }

  /** A marker for the current top, to {@linkcode StackAllocator.rewind} to. */
  mark(): StackMarker {
    this.#ledger.guard("mark");
    const depth = this.#starts.length;
    return new Marker(this, depth, depth === 0 ? 0 : this.#ids[depth - 1]);
  }

  /**
   * Frees every block allocated after `marker` was taken.
   * @throws {TypeError} When `marker` is not a marker.
   * @throws {AllocationError} "mismatched-allocator" for another stack's marker; "invalid-free" when blocks it covered were already freed (the marker is stale).
   */
  rewind(marker: StackMarker): void {
    const parts = Marker.parts(marker);
    if (parts === null) {
      throw new TypeError(`Cannot rewind as 'marker' must come from mark(): current value is ${describe(marker)}`);
    }
    if (parts.owner !== this) {
      throw new AllocationError("mismatched-allocator", "Cannot rewind to a marker of another StackAllocator");
    }
    this.#ledger.guard("rewind");
    const depth = this.#starts.length;
    if (parts.depth > depth || (parts.depth > 0 && this.#ids[parts.depth - 1] !== parts.topId)) {
      throw new AllocationError(
        "invalid-free",
        `Cannot rewind to a marker at depth ${parts.depth}: the stack is at depth ${depth} and the blocks the ` +
          "marker covered were already freed",
      );
    }
    this.#popTo(parts.depth, "StackAllocator.rewind() released it", "rewind");
  }

  /** Frees every block. */
  reset(): void {
    this.#ledger.guard("reset");
    this.#popTo(0, "StackAllocator.reset() released it", "reset");
  }

  /**
   * Returns the chunk to the backing; every view the stack handed out reads
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
    this.#leases.releasedAll("StackAllocator.dispose() released it");
    this.#teardown();
    this.#source.giveAll(false);
  }

  /** Same as {@linkcode StackAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Counters; the free space is the one region above the top. */
  stats(): AllocatorStats {
    const ended = this.#ledger.over;
    const capacity = ended ? 0 : this.#size;
    const available = capacity - this.#cursor;
    return this.#ledger.stats({
      capacityBytes: capacity,
      availableBytes: available,
      largestFreeBlock: available,
      freeBlocks: [available],
      overheadBytes: this.#cursor - this.#ledger.allocatedBytes,
    });
  }

  /**
   * The stack's chunk and its live blocks, bottom to top as a versioned JSON description: chunks and their blocks (offset,
   * size, free or used, owner). See {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    this.#ledger.guard("dump the StackAllocator");
    const blocks: RawBlock[] = this.#starts.map((offset, i) => ({ offset, size: this.#sizes[i], free: false }));
    return makeDump(this.stats(), [{ address: this.#chunk.address, size: this.#size, blocks }]);
  }

  // The backing released the chunk (its reset, scope end, dispose): end here
  // too. On a theft (memory another buffer may reach) the stack ends as
  // "corruption", and the chunk stays allocated in the backing.
  #revoke(reason: string | null, partial: boolean): void {
    if (!this.#ledger.lose(reason)) return;
    this.#leases.releasedAll(`the StackAllocator lost its memory (${reason ?? THEFT})`);
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
    throw transferredError(op, "this StackAllocator's memory");
  }

  #teardown(): void {
    this.#ledger.freedAll();
    this.#starts = [];
    this.#sizes = [];
    this.#ids = [];
    this.#cursor = 0;
  }

  // Reserves a block on top; returns its offset, or -1 when full. Size 0
  // reserves nothing (alloc(0) views are not blocks).
  #push(size: number, align: number | undefined, op: string): number {
    checkSize(size, op);
    const a = checkAlignment(align, op, native.pageSize);
    this.#ledger.guard(op);
    if (size === 0) return this.#cursor; // an empty view: not a block, nothing to free
    const rem = this.#cursor % a;
    const start = rem === 0 ? this.#cursor : this.#cursor + a - rem;
    if (start + size > this.#size) {
      this.#ledger.fail("out-of-memory", `the stack has ${this.#size - this.#cursor} of its ${this.#size} bytes left`);
      return -1;
    }
    this.#starts.push(start);
    this.#sizes.push(size);
    this.#ids.push(this.#nextId++);
    this.#cursor = start + size;
    this.#ledger.allocated(size);
    return start;
  }

  // Frees the top block alone (a lease on it is revoked; watchers hear only of bulk releases).
  #popTop(reason: string, op = "free"): void {
    const top = this.#starts.length - 1;
    if (this.#leases.leased !== 0) {
      this.#popTold(top, reason, op);
      return;
    }
    // (#pop, inline: this is free's hot path.)
    this.#starts.pop();
    this.#ids.pop();
    this.#ledger.freed(this.#sizes.pop()!);
    const end = this.#cursor;
    this.#cursor = top === 0 ? 0 : this.#starts[top - 1] + this.#sizes[top - 1];
    this.#reusable(this.#cursor, end);
  }

  // #popTop of a block a holder may lease (off the hot path): the holder is told first, the stack busy meanwhile,
  // and what it gives back waits until the block is freed (see beginChange).
  #popTold(top: number, reason: string, op: string): void {
    beginChange();
    try {
      const address = this.#chunk.address + this.#starts[top];
      tellFreed(this.#ledger, op, this.#leases, address, reason, this.#sizes[top]);
      this.#pop(top);
    } finally {
      endChange();
    }
  }

  // Tells the holders and watchers of memory in [lo, hi) (offsets in the chunk) that `reason` released it, the
  // stack busy meanwhile (see tellHolders).
  #tellReleased(lo: number, hi: number, reason: string, op: string): void {
    const leases = this.#leases, base = this.#chunk.address;
    tellHolders(this.#ledger, op, () => leases.released(base + lo, base + hi, reason));
  }

  // Frees the top block `top` (its holders told).
  #pop(top: number): void {
    this.#starts.pop();
    this.#ids.pop();
    this.#ledger.freed(this.#sizes.pop()!);
    const end = this.#cursor;
    this.#cursor = top === 0 ? 0 : this.#starts[top - 1] + this.#sizes[top - 1];
    this.#reusable(this.#cursor, end);
  }

  // Frees every block above `depth` at once (a rewind or reset).
  #popTo(depth: number, reason: string, op: string): void {
    const cursor = depth === 0 ? 0 : this.#starts[depth - 1] + this.#sizes[depth - 1];
    if (this.#leases.count === 0) {
      this.#popAll(depth, cursor);
      return;
    }
    // Their holders are told first, the stack busy meanwhile, and what they give back waits until the blocks are
    // freed (see beginChange).
    beginChange();
    try {
      this.#tellReleased(cursor, this.#cursor, reason, op);
      this.#popAll(depth, cursor);
    } finally {
      endChange();
    }
  }

  // Frees every block above `depth` (its holders told); `cursor` is where the block at `depth` ends.
  #popAll(depth: number, cursor: number): void {
    while (this.#starts.length > depth) {
      this.#starts.pop();
      this.#ids.pop();
      this.#ledger.freed(this.#sizes.pop()!);
    }
    const top = this.#cursor;
    this.#cursor = cursor;
    this.#reusable(cursor, top);
  }

  // Undoes #push of the top block whose view could not be made (nothing changes).
  #unpush(peak: number): void {
    this.#starts.pop();
    this.#ids.pop();
    this.#nextId--;
    this.#ledger.retract(this.#sizes.pop()!, peak);
    const top = this.#starts.length - 1;
    this.#cursor = top < 0 ? 0 : this.#starts[top] + this.#sizes[top];
  }

  // Chunk offsets [from, to) are free again: if a buffer over any of them was
  // transferred away (a child found it when the release reached it), the
  // stack must never hand them out again, so it ends, keeping its chunk.
  #reusable(from: number, to: number): void {
    if (anyTaken() && to > from && !mayRelease(this.#chunk.address + from, to - from)) this.#revoke(null, true);
  }

  // The depth of the top block `view` starts, checking everything else.
  #find(view: ArrayBufferView, op: "free"): number {
    checkView(view, op);
    const depth = this.#locate(view, op);
    if (depth >= 0 && depth !== this.#starts.length - 1) {
      throw new AllocationError(
        "invalid-free",
        `Cannot free ${describe(view)} out of order: it is block ${depth + 1} of ${this.#starts.length}; free the ` +
          "top block first, or rewind to a marker",
      );
    }
    return depth;
  }

  // Index of the live block starting at `view`, -1 for an empty view; throws otherwise.
  #locate(view: ArrayBufferView, op: string): number {
    const buffer = bufferOf(view) as ArrayBuffer;
    this.#ledger.guard(op);
    // A view over the chunk's buffer that someone transferred away (its offset reads 0).
    if (buffer === this.#chunk.buffer && isDetached(buffer)) this.#theftFound(op);
    if (isEmptyView(view)) return -1;
    if (buffer !== this.#chunk.buffer) {
      const kind = ownerKindOf(buffer, this);
      if (kind !== null) {
        return this.#throw(
          "mismatched-allocator",
          `Cannot ${op} ${describe(view)} in this StackAllocator: it belongs to ${
            withArticle(`${kind} allocator`)
          }, not this one`,
        );
      }
      return this.#throw("invalid-free", `Cannot ${op} ${describe(view)}: it was not allocated by this StackAllocator`);
    }
    const offset = offsetOf(view);
    // Binary search: starts are increasing.
    let lo = 0, hi = this.#starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#starts[mid] < offset) lo = mid + 1;
      else if (this.#starts[mid] > offset) hi = mid - 1;
      else return mid;
    }
    if (offset >= this.#cursor) {
      return this.#throw("double-free", `Cannot ${op} ${describe(view)}: its block was already freed`);
    }
    return this.#throw(
      "invalid-free",
      `Cannot ${op} ${describe(view)} at offset ${offset}: it starts inside a block, not at its first byte`,
    );
  }

  #throw(category: "mismatched-allocator" | "invalid-free" | "double-free", message: string): never {
    throw new AllocationError(category, message);
  }
}
