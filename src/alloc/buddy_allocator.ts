/**
 * Power-of-two blocks with splitting and merging.
 *
 * @module
 */
import { intrinsic } from "../../ffi/boundary.ts";
import { anyTaken, isDetached, mayRelease, THEFT, transferredError } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { type Chunk, ChunkSource } from "./_chunks.ts";
import { defaultBacking } from "./_default_backing.ts";
import { beginChange, endChange, LeaseTable, registerLeases, resizedUnderLease, tellFreed } from "./_lease.ts";
import { Ledger } from "./_ledger.ts";
import { typedArrayOf } from "./_typed_array_of.ts";
import { isEmptyView, ownerKindOf, registerOwner } from "./_ownership.ts";
import {
  bufferOf,
  checkAlignment,
  checkSize,
  checkView,
  describe,
  integerIn,
  offsetOf,
  parseOptions,
  powerOfTwo,
  typeCheck,
  withArticle,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { checkViewLimit } from "../base/_view_limit.ts";
import { type AllocatorDump, makeDump, type RawBlock } from "./dump.ts";

/**
 * Options of {@linkcode BuddyAllocator}.
 *
 * @example
 * ```ts
 * import { BuddyAllocator, type BuddyAllocatorOptions } from "@memkit/memkit";
 *
 * const options: BuddyAllocatorOptions = { capacity: 1 << 20, minBlockSize: 64 };
 * const buddy = new BuddyAllocator(options);
 * buddy.dispose();
 * ```
 */
export interface BuddyAllocatorOptions {
  /** Bytes managed, rounded up to a power of two (at least the page size). */
  capacity: number;
  /** Smallest block, a power of two from 16. At most 2^22 of them fit in `capacity`. @default {16} */
  minBlockSize?: number;
  /** Where the one chunk comes from. @default {a shared SystemAllocator} */
  backing?: Allocator;
}

const MAX_LEAVES = 2 ** 22;

const OptionsSchema = z.object({
  capacity: integerIn(1, 2 ** 40),
  minBlockSize: z.unknown().optional(), // checked in the constructor (powerOfTwo)
  backing: typeCheck<Allocator>(
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
}).strict();

// Node states in the implicit binary tree (node 1 is the whole capacity,
// node n has children 2n and 2n+1).
const ABSENT = 0; // inside a larger free or allocated block
const FREE = 1;
const SPLIT = 2;
const USED = 3;

/**
 * Splits its memory into power-of-two blocks: an allocation takes the
 * smallest free block that fits, splitting larger ones in halves; a free
 * merges a block with its free "buddy" back up. Allocation and free are
 * O(log(capacity / minBlockSize)); blocks are aligned to their own size, so
 * alignment comes free; the cost is internal fragmentation (a 65-byte request
 * takes 128 bytes), reported as `overheadBytes`.
 *
 * Blocks are views over the one chunk's ArrayBuffer; `dispose()` detaches
 * them and returns the chunk. A freed block's views stay readable until then.
 *
 * @example
 * ```ts
 * import { BuddyAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using buddy = new BuddyAllocator({ capacity: 1 << 16 });
 * const a = buddy.alloc(1000); // takes a 1024-byte block
 * const b = buddy.alloc(1000);
 * buddy.free(a);
 * buddy.free(b); // merges back into one 64 KiB block
 * assert.equal(buddy.stats().largestFreeBlock, 1 << 16);
 * ```
 */
export class BuddyAllocator implements Allocator, Disposable {
  /** Always `"buddy"`. */
  readonly kind = "buddy" as const;
  readonly #leases = new LeaseTable();
  readonly #ledger = new Ledger("buddy", "BuddyAllocator");
  readonly #source: ChunkSource;
  readonly #chunk: Chunk;
  readonly #capacity: number;
  readonly #minBlock: number;
  readonly #levels: number; // orders 0 (whole) .. #levels - 1 (minBlock)
  readonly #state: Uint8Array<ArrayBuffer>;
  // Per order: a doubly linked list of free nodes.
  readonly #head: Int32Array;
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  // Per leaf (offset / minBlock): requested size of the block starting there.
  readonly #requested: Float64Array;
  #freeBytes = 0;

  /**
   * Takes the memory from the backing.
   *
   * @param options Capacity, smallest block and backing.
   * @throws {TypeError} For missing or mistyped options.
   * @throws {RangeError} For sizes out of range, or more than 2^22 smallest blocks.
   * @throws {AllocationError} "unsupported" for a capacity, rounded up to a power of two, above what one
   *   ArrayBuffer holds in this runtime (`nativeInfo().maxViewBytes`, 4 GiB in Bun), before the backing is asked;
   *   "out-of-memory" when the backing refuses; "corruption" when it returns a block it must not.
   */
  constructor(options: BuddyAllocatorOptions) {
    registerLeases(this, this.#leases);
    const parsed = parseOptions(OptionsSchema, options, "create BuddyAllocator");
    const minBlock = parseOptions(
      z.object({ minBlockSize: powerOfTwo(2 ** 30, 16).optional() }),
      { minBlockSize: parsed.minBlockSize },
      "create BuddyAllocator",
    ).minBlockSize ?? 16;
    if (minBlock > parsed.capacity) {
      // Said about 'capacity', which the program passed: 'minBlockSize' may be the default it never wrote.
      const least = parsed.minBlockSize === undefined
        ? `${minBlock}, the default 'minBlockSize' (the size of its smallest block; any capacity from ${minBlock} ` +
          "up is rounded up to whole pages)"
        : `'minBlockSize' (${minBlock}), the size of its smallest block (or pass a smaller 'minBlockSize')`;
      throw new RangeError(
        `Cannot create BuddyAllocator as 'capacity' must be at least ${least}: current value is ${parsed.capacity}`,
      );
    }
    let capacity = Math.max(native.pageSize, minBlock);
    while (capacity < parsed.capacity) capacity *= 2;
    if (capacity / minBlock > MAX_LEAVES) {
      throw new RangeError(
        `Cannot create BuddyAllocator as 'capacity' / 'minBlockSize' must be at most 2^22 blocks: current value is ` +
          `${capacity} / ${minBlock}`,
      );
    }
    // The chunk is viewed as one ArrayBuffer: a larger one could be mapped but never used.
    checkViewLimit(
      capacity,
      "create BuddyAllocator",
      "its chunk (its capacity rounded up to a power of two)",
      `pass a 'capacity' of at most ${native.maxViewBytes} bytes, or use several BuddyAllocators`,
    );
    this.#capacity = capacity;
    this.#minBlock = minBlock;
    this.#levels = Math.log2(capacity / minBlock) + 1;
    const nodes = 2 * (capacity / minBlock);
    this.#state = new Uint8Array(nodes);
    this.#next = new Int32Array(nodes).fill(-1);
    this.#prev = new Int32Array(nodes).fill(-1);
    this.#head = new Int32Array(this.#levels).fill(-1);
    this.#requested = new Float64Array(capacity / minBlock);
    this.#source = new ChunkSource(
      parsed.backing ?? defaultBacking(),
      "BuddyAllocator",
      this.#ledger,
      (reason, partial) => this.#revoke(reason, partial),
    );
    const chunk = this.#source.take(capacity);
    if (chunk === null) {
      throw new AllocationError("out-of-memory", `Cannot create BuddyAllocator: ${this.#source.refusal}`);
    }
    this.#chunk = chunk;
    this.#push(1, 0);
    this.#freeBytes = capacity;
    registerOwner(this, "buddy", BuddyAllocator.#holds);
  }

  static #holds(owner: object, buffer: ArrayBufferLike): boolean {
    const buddy = owner as BuddyAllocator;
    return !buddy.#ledger.over && buddy.#chunk.buffer === buffer;
  }

  /**
   * A block of the smallest power of two that holds `size` bytes and `align`.
   * @throws {RangeError} When size exceeds the capacity.
   * @throws {AllocationError} "out-of-memory" when no free block is large enough.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    const view = this.tryAlloc(size, align);
    if (view === null) throw this.#ledger.failure(size, align);
    return view;
  }

  /** Like {@linkcode BuddyAllocator.alloc}, but `null` when no block is free. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    checkSize(size, "allocate", "size", this.#capacity);
    const a = checkAlignment(align, "allocate", native.pageSize);
    this.#ledger.guard("allocate");
    if (size === 0) return new Uint8Array(0);
    const peak = this.#ledger.peakBytes;
    const offset = this.#take(size, a);
    if (offset < 0) return null;
    try {
      return new Uint8Array(this.#chunk.buffer, offset, size);
    } catch (error) {
      this.#transferred(error, "allocate", size, peak);
    }
  }

  /** A typed array of `length` elements in one block, aligned to at least its element size. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align);
  }

  /**
   * Frees a block and merges it with its free buddies.
   * @throws {AllocationError} "double-free", "invalid-free" (interior or foreign view), "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    const node = this.#nodeOf(view, "free");
    if (node < 0) return;
    if (!this.#release(node, offsetOf(view), "BuddyAllocator.free() released it")) {
      throw transferredError("free", `the block ${describe(view)} names`);
    }
  }

  /**
   * Keeps the block when `newSize` still fits it; otherwise moves to a new
   * block (the old view must not be used after a move).
   * @throws {AllocationError} "out-of-memory" (the old block stays valid), and as for `free`.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    checkSize(newSize, "resize", "newSize", this.#capacity);
    const node = this.#nodeOf(view, "resize");
    if (node < 0) return this.alloc(newSize);
    const offset = offsetOf(view);
    const leaf = offset / this.#minBlock;
    if (newSize === 0) {
      if (!this.#release(node, offset, "BuddyAllocator.resize(view, 0) released it", "resize")) {
        throw transferredError("resize", `the block ${describe(view)} names`);
      }
      return new Uint8Array(0);
    }
    // A holder of the block is told (and a theft it finds refuses the resize) only once the resize is certain:
    // one that fails for want of room leaves it as it was. The allocator is busy while it is told, and what it
    // gives back waits until the resize is made (see beginChange).
    const leased = this.#leases.leased !== 0 || anyTaken();
    const address = this.#chunk.address + offset;
    const keeps = newSize <= this.#sizeOfNode(node);
    // A larger block: every block is aligned to its size up to the page, so
    // the new one keeps at least the old one's alignment.
    if (!keeps && !this.#hasRoom(newSize, 16)) {
      this.#take(newSize, 16); // finds no block either, and records why
      throw this.#ledger.failure(newSize);
    }
    if (!leased) return keeps ? this.#keep(offset, newSize) : this.#move(node, offset, newSize);
    beginChange();
    try {
      resizedUnderLease(this.#ledger, this.#leases, address, this.#requested[leaf], view, "BuddyAllocator");
      return keeps ? this.#keep(offset, newSize) : this.#move(node, offset, newSize);
    } finally {
      endChange();
    }
  }

  // The used block at `offset` keeps its place, now `newSize` bytes (which fit it).
  #keep(offset: number, newSize: number): Uint8Array<ArrayBuffer> {
    const leaf = offset / this.#minBlock;
    let kept: Uint8Array<ArrayBuffer>;
    try {
      kept = new Uint8Array(this.#chunk.buffer, offset, newSize); // first: a throw here changes nothing
    } catch (error) {
      this.#transferred(error, "resize");
    }
    this.#ledger.resized(this.#requested[leaf], newSize);
    this.#requested[leaf] = newSize;
    return kept;
  }

  // Moves used block `node` at `offset` into a new block of `newSize` bytes (there is room).
  #move(node: number, offset: number, newSize: number): Uint8Array<ArrayBuffer> {
    const peak = this.#ledger.peakBytes;
    const moved = this.#take(newSize, 16);
    if (moved < 0) throw this.#ledger.failure(newSize);
    let fresh: Uint8Array<ArrayBuffer>;
    try {
      fresh = new Uint8Array(this.#chunk.buffer, moved, newSize);
      intrinsic.set(fresh, intrinsic.uint8Array(this.#chunk.buffer, offset, this.#requested[offset / this.#minBlock]));
    } catch (error) {
      this.#transferred(error, "resize", newSize, peak);
    }
    this.#release(node, offset, "BuddyAllocator.resize() moved it", "resize");
    return fresh;
  }

  /** Whether `view` lies in a live block. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    if (this.#ledger.over || bufferOf(view) !== this.#chunk.buffer) return false;
    const node = this.#enclosing(offsetOf(view));
    if (node <= 0 || this.#state[node] !== USED) return false;
    // Within the requested bytes, not the rounding after them.
    const start = (node - 2 ** Math.floor(Math.log2(node))) * this.#sizeOfNode(node);
    return offsetOf(view) - start < this.#requested[start / this.#minBlock];
  }

  /** Counters; free blocks are listed per order, so this is O(levels). */
  stats(): AllocatorStats {
    let sum = 0, squares = 0, largest = 0;
    // An ended allocator has no free space to report (its tree is not kept up to date).
    for (let order = 0; order < this.#levels && !this.#ledger.over; order++) {
      let count = 0;
      for (let node = this.#head[order]; node !== -1; node = this.#next[node]) count++;
      const size = this.#capacity / 2 ** order;
      sum += count * size;
      squares += count * size * size;
      if (count > 0 && size > largest) largest = size;
    }
    const capacity = this.#ledger.over ? 0 : this.#capacity;
    return this.#ledger.stats({
      capacityBytes: capacity,
      availableBytes: sum,
      largestFreeBlock: largest,
      freeBlocks: sum === 0 ? 0 : Math.max(0, 1 - Math.sqrt(squares) / sum),
      // Rounding requests up to powers of two.
      overheadBytes: capacity === 0 ? 0 : capacity - sum - this.#ledger.allocatedBytes,
    });
  }

  /**
   * The buddy tree's blocks (power-of-two sizes) as a versioned JSON description: chunks and their blocks (offset,
   * size, free or used, owner). See {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    this.#ledger.guard("dump the BuddyAllocator");
    const blocks: RawBlock[] = [];
    // Node n covers `size` bytes from `offset`; its children 2n and 2n + 1 the two halves.
    const walk = (node: number, offset: number, size: number): void => {
      const state = this.#state[node];
      if (state === SPLIT) {
        walk(2 * node, offset, size / 2);
        walk(2 * node + 1, offset + size / 2, size / 2);
      } else if (state === USED) {
        blocks.push({ offset, size, free: false, requested: this.#requested[offset / this.#minBlock] });
      } else if (state === FREE) blocks.push({ offset, size, free: true });
    };
    walk(1, 0, this.#capacity);
    return makeDump(this.stats(), [{ address: this.#chunk.address, size: this.#capacity, blocks }]);
  }

  /**
   * Returns the memory to the backing; every view it handed out reads as
   * length 0 and every later call but `owns` and `stats` throws "use-after-free". A second call
   * does nothing.
   * @throws {AllocationError} When the backing refuses to take a chunk back (the backing's category: "invalid-free"
   * from a StackAllocator with a newer block on top of it), after everything else is done: the allocator is
   * disposed all the same, every view reads as length 0, every other chunk went back, and the refused ones stay
   * allocated in the backing, its own to free.
   */
  dispose(): void {
    this.#ledger.refuseWhileBusy("dispose"); // code its backing runs cannot end it halfway through a call
    if (!this.#ledger.end("was disposed")) return;
    this.#leases.releasedAll("BuddyAllocator.dispose() released it");
    this.#ledger.freedAll();
    this.#source.giveAll(false);
  }

  /** Same as {@linkcode BuddyAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

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
    throw transferredError(op, "this BuddyAllocator's memory");
  }

  // The backing released the chunk (its reset, scope end, dispose): end here
  // too. On a theft the allocator ends as "corruption" and keeps that memory.
  #revoke(reason: string | null, partial: boolean): void {
    if (!this.#ledger.lose(reason)) return;
    this.#leases.releasedAll(`the BuddyAllocator lost its memory (${reason ?? THEFT})`);
    this.#ledger.freedAll();
    if (partial) this.#source.giveAll(true);
    else this.#source.detachAll();
  }

  #blockFor(size: number, align: number): number {
    let block = this.#minBlock;
    while (block < size || block < align) block *= 2;
    return block;
  }

  #largestFree(): number {
    for (let order = 0; order < this.#levels; order++) {
      if (this.#head[order] !== -1) return this.#capacity / 2 ** order;
    }
    return 0;
  }

  #sizeOfNode(node: number): number {
    return this.#capacity / 2 ** Math.floor(Math.log2(node));
  }

  // Whether #take(size, align) would find a block (nothing changes).
  #hasRoom(size: number, align: number): boolean {
    const block = this.#blockFor(size, align);
    if (block > this.#capacity) return false;
    for (let order = Math.log2(this.#capacity / block); order >= 0; order--) {
      if (this.#head[order] !== -1) return true;
    }
    return false;
  }

  // Takes a block for `size` bytes aligned to `align`; its offset, or -1.
  #take(size: number, align: number): number {
    const block = this.#blockFor(size, align);
    if (block > this.#capacity) {
      this.#ledger.fail("out-of-memory", `a ${block}-byte block exceeds its capacity of ${this.#capacity} bytes`);
      return -1;
    }
    const order = Math.log2(this.#capacity / block);
    let found = order;
    while (found >= 0 && this.#head[found] === -1) found--;
    if (found < 0) {
      this.#ledger.fail("out-of-memory", `no free block of ${block} bytes (largest free: ${this.#largestFree()})`);
      return -1;
    }
    let node = this.#head[found];
    this.#unlink(node, found);
    // Split down to the wanted order, keeping the left half each time.
    for (let level = found; level < order; level++) {
      this.#state[node] = SPLIT;
      node *= 2;
      this.#push(node + 1, level + 1);
    }
    this.#state[node] = USED;
    const offset = (node - 2 ** order) * block;
    this.#requested[offset / this.#minBlock] = size;
    this.#freeBytes -= block;
    this.#ledger.allocated(size);
    return offset;
  }

  // Frees a block; false, keeping it allocated for good, when the holder of a lease on it (a child
  // allocator, an array) found as it let go that a buffer over its memory was transferred away.
  // `op` is the public call, for its refusal when code the holder ran ended the allocator.
  #release(node: number, offset: number, reason: string, op = "free"): boolean {
    if (this.#leases.leased !== 0 || anyTaken()) return this.#releaseTold(node, offset, reason, op);
    return this.#merge(node, offset);
  }

  // #release of a block a holder may lease, or a transferred buffer reach (off the hot path): the holder is told
  // first, the allocator busy meanwhile, and what it gives back waits until the block is freed (see beginChange).
  #releaseTold(node: number, offset: number, reason: string, op: string): boolean {
    const address = this.#chunk.address + offset, size = this.#sizeOfNode(node);
    beginChange();
    try {
      if (this.#leases.leased !== 0) tellFreed(this.#ledger, op, this.#leases, address, reason, size);
      return mayRelease(address, size) && this.#merge(node, offset);
    } finally {
      endChange();
    }
  }

  // Frees the used block `node` at `offset` and merges it with its free buddies; true.
  #merge(node: number, offset: number): boolean {
    const leaf = offset / this.#minBlock;
    this.#ledger.freed(this.#requested[leaf]);
    this.#requested[leaf] = 0;
    let order = Math.floor(Math.log2(node));
    this.#freeBytes += this.#capacity / 2 ** order;
    // Merge with the buddy while it is free.
    while (node > 1 && this.#state[node ^ 1] === FREE) {
      this.#unlink(node ^ 1, order);
      this.#state[node ^ 1] = ABSENT;
      this.#state[node] = ABSENT;
      node >>= 1;
      order--;
    }
    this.#push(node, order);
    return true;
  }

  #push(node: number, order: number): void {
    this.#state[node] = FREE;
    this.#prev[node] = -1;
    this.#next[node] = this.#head[order];
    if (this.#head[order] !== -1) this.#prev[this.#head[order]] = node;
    this.#head[order] = node;
  }

  #unlink(node: number, order: number): void {
    const prev = this.#prev[node], next = this.#next[node];
    if (prev !== -1) this.#next[prev] = next;
    else this.#head[order] = next;
    if (next !== -1) this.#prev[next] = prev;
    this.#prev[node] = this.#next[node] = -1;
  }

  // The FREE or USED node whose block contains `offset` (0 when none).
  #enclosing(offset: number): number {
    if (offset < 0 || offset >= this.#capacity) return 0;
    let node = 1;
    for (let order = 0; order < this.#levels; order++) {
      const state = this.#state[node];
      if (state === FREE || state === USED) return node;
      if (state !== SPLIT) return 0;
      const half = this.#capacity / 2 ** (order + 1);
      node = 2 * node + (offset % (2 * half) >= half ? 1 : 0);
    }
    return 0;
  }

  // The USED node `view` starts, -1 for an empty view; throws for anything else.
  #nodeOf(view: ArrayBufferView, op: "free" | "resize"): number {
    checkView(view, op);
    this.#ledger.guard(op);
    const buffer = bufferOf(view) as ArrayBuffer;
    // A view over the chunk's buffer that someone transferred away (its offset reads 0).
    if (buffer === this.#chunk.buffer && isDetached(buffer)) this.#theftFound(op);
    if (isEmptyView(view)) return -1;
    if (buffer !== this.#chunk.buffer) {
      const kind = ownerKindOf(buffer, this);
      throw kind !== null
        ? new AllocationError(
          "mismatched-allocator",
          `Cannot ${op} ${describe(view)} in this BuddyAllocator: it belongs to ${
            withArticle(`${kind} allocator`)
          }, not this one`,
        )
        : new AllocationError(
          "invalid-free",
          `Cannot ${op} ${describe(view)}: it was not allocated by this BuddyAllocator`,
        );
    }
    const offset = offsetOf(view);
    const node = this.#enclosing(offset);
    const start = node > 0 ? (node - 2 ** Math.floor(Math.log2(node))) * this.#sizeOfNode(node) : -1;
    if (node > 0 && this.#state[node] === USED && start === offset) return node;
    if (node > 0 && this.#state[node] === FREE) {
      throw new AllocationError(
        op === "free" ? "double-free" : "use-after-free",
        `Cannot ${op} ${describe(view)} at offset ${offset}: that memory is already free`,
      );
    }
    throw new AllocationError(
      "invalid-free",
      `Cannot ${op} ${describe(view)} at offset ${offset}: it starts inside a block, not at its first byte`,
    );
  }
}
