// One region of a RegionAllocator: a FreeListAllocator (any size, any order,
// coalescing) whose blocks all start at the region's alignment, whatever the
// caller asks for below it. The heap is made on first use, so a region that
// is never used holds no memory, and nothing that takes no memory makes it
// (a size 0, an empty view freed, a refused free).
//
// While the heap is being made its backing runs (the program's code, for a
// backing written in JavaScript or an Arena's observer): a call into the
// region from there is refused ("unsupported"; it would make a second heap),
// and a dispose from there ends the heap just made and the call that made it
// ("use-after-free").
//
// A region ends only with its RegionAllocator (AlignedRegion.end): its own dispose() is refused
// ("unsupported"), as MemoryInterface.getAllocator's allocators refuse theirs, so a region never ends while
// the other three and their RegionAllocator live on.
//
// It remembers the view it handed out for each live block (by the block's address), so that the
// RegionAllocator's deallocate takes only that view, as MemoryInterface.deallocate takes only an
// allocation's own bytes: a view kept from a block given back starts at the first byte of the block that
// took its place, and must never free it. (The region's own `free` keeps the Allocator rule: any view from
// the block's first byte.)
//
// Errors from the heap are told in the terms of the call the program made ("Cannot allocate vertex data
// (320 bytes aligned to 16 in the vertex region): the vertex region's heap lost its memory: ..."), their
// category kept and the heap's error as `cause`: the program never called a FreeListAllocator.
//
// A refused allocation makes nothing: a block no heap can ever hold (its chunk more than one view holds, or
// more than a heap holds) is refused before the heap is made or asked, and the heap is made with a first chunk
// that holds the block that makes it (the region's capacity, or more), so a backing that refuses that chunk
// leaves the region as it was rather than with a heap whose next chunk it refused.
import { native } from "../../ffi/native.ts";
import { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import { roundToPage } from "../alloc/_chunks.ts";
import { searchBytes } from "../alloc/_tlsf_heap.ts";
import { LeaseTable, registerLeases, withLeaseTable } from "../alloc/_lease.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { zeroStats } from "../alloc/_zero_stats.ts";
import { bufferOf, checkView, describe, lengthOf, MAX_BLOCK_SIZE, offsetOf } from "../base/_validate.ts";
import { viewLimitError } from "../base/_view_limit.ts";
import { createOwnerNamed } from "../base/_native_census.ts";
import { foreignBlockError, isEmptyView } from "../alloc/_ownership.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { addressOf } from "../base/native_info.ts";
import { byteCount, checkAlignment, checkSize, hexAddress } from "./_words.ts";

// A view's address by its buffer's (a heap hands out many views of one chunk: one native call per chunk).
const bases = new WeakMap<ArrayBufferLike, number>();

function addressOfView(view: ArrayBufferView): number {
  const buffer = bufferOf(view);
  let base = bases.get(buffer);
  if (base === undefined) {
    base = addressOf(view) - offsetOf(view);
    bases.set(buffer, base);
  }
  return base + offsetOf(view);
}

/**
 * What the heap's error says after its own "Cannot <call>: " (the call the region made, not the program's),
 * with the heap named as the region's: the reason to give after the program's call.
 */
function reasonOf(error: AllocationError, region: string): string {
  let message = error.message;
  const colon = message.indexOf(": ");
  if (message.startsWith("Cannot ") && colon > 0) message = message.slice(colon + 2);
  return message.replaceAll("the FreeListAllocator", `the ${region} region's heap`);
}

/** The largest chunk a region's heap can take: what one ArrayBuffer holds here, and what a heap holds at most. */
const MAX_VIEW_OR_HEAP = Math.min(native.maxViewBytes, MAX_BLOCK_SIZE);

export class AlignedRegion implements Allocator, Disposable {
  /** Always `"free-list"`: a region is a TLSF heap. */
  readonly kind = "free-list" as const;
  /** Every block starts at a multiple of this. */
  readonly alignment: number;
  readonly #name: string;
  readonly #capacity: number;
  readonly #backing: Allocator | undefined;
  #heap: FreeListAllocator | null = null;
  /** The view handed out for each live block, by the block's address (see deallocate's rule above). */
  readonly #handed = new Map<number, ArrayBufferView>();
  readonly #leases = new LeaseTable();
  #making = false;
  #ended = false;

  constructor(name: string, alignment: number, capacity: number, backing: Allocator | undefined) {
    // Chains and DebugAllocators over the region hear of its heap's releases, also those made before the
    // heap: the heap keeps its leases in this table (see #make).
    registerLeases(this, this.#leases);
    this.#name = name;
    this.alignment = alignment;
    this.#capacity = capacity;
    this.#backing = backing;
  }

  // The heap, made now when the region has none.
  get #live(): FreeListAllocator {
    this.#usable();
    return this.#heap ?? this.#make(0);
  }

  /** `size` bytes at the region's alignment, or `align` when larger. */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    return this.#allocate(size, align, null, false)!;
  }

  /** Like {@linkcode AlignedRegion.alloc}, but `null` when the heap cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    return this.#allocate(size, align, null, true);
  }

  /** A typed array of `length` elements at the region's alignment (or more). */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    const array = typedArrayOf(
      (size, a) => this.#allocate(size, a, null, false)!,
      ctor,
      length,
      align,
      native.pageSize,
    );
    this.#record(array); // the typed array is the block's view now, not the bytes under it
    return array;
  }

  /** Returns a block (any view starting at its first byte, as for any allocator). */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    this.#release(view, () => `free ${describe(view)} in the ${this.#name} region`);
  }

  /** Resizes a block, keeping the region's alignment when it moves. */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    const heap = this.#used("resize", view);
    if (heap === null) return this.alloc(newSize);
    const resized = this.#named(
      () => `resize ${describe(view)} in the ${this.#name} region`,
      () => heap.resize(view, newSize),
    );
    // In place or moved, the block the old view stood for is the resized one's now.
    if (lengthOf(view) !== 0) this.#handed.delete(addressOfView(view));
    this.#record(resized);
    return resized;
  }

  /**
   * `size` bytes for `op` (the program's call: "allocate vertex data"), at the region's alignment or `align`
   * when larger: RegionAllocator's allocate* methods, whose errors name them.
   */
  static allocate(region: AlignedRegion, op: string, size: number, align: number): Uint8Array<ArrayBuffer> {
    return region.#allocate(size, align, op, false)!;
  }

  /** `view`, made over a block the region gave (a typed array over its bytes), is the view it was handed out as. */
  static handOut(region: AlignedRegion, view: ArrayBufferView): void {
    region.#record(view);
  }

  /**
   * Gives back the block `view` was handed out as (RegionAllocator.deallocate): another view from its first
   * byte is refused ("double-free", as MemoryInterface.deallocate refuses one), changing nothing.
   */
  static deallocate(region: AlignedRegion, view: ArrayBufferView): void {
    if (lengthOf(view) !== 0 && !region.#ended && region.#heap !== null) {
      const address = addressOfView(view);
      const own = region.#handed.get(address);
      if (own !== undefined && own !== view) {
        throw new AllocationError(
          "double-free",
          `Cannot deallocate ${describe(view)}: it is another view over the live ${lengthOf(own)}-byte block of ` +
            `the ${region.#name} region at ${hexAddress(address)}, not the view that block was handed out as ` +
            `(${describe(own)}; deallocate takes only that one, so that a view kept from a block given back never ` +
            "frees the block that took its place): pass the view the allocate call returned",
        );
      }
    }
    region.#release(view, () => `deallocate ${describe(view)}`);
  }

  // alloc / tryAlloc for `op` (null: the region's own alloc, named by its size).
  #allocate(
    size: number,
    align: number | undefined,
    op: string | null,
    orNull: boolean,
  ): Uint8Array<ArrayBuffer> | null {
    // Checked before the heap is made (a refused call makes nothing): the heap checks the size again.
    checkSize(size, "allocate", "size");
    const a = this.#align(align, "allocate");
    if (size === 0 && this.#heap === null) return this.#empty();
    const what = () => {
      const where = `${byteCount(size)} aligned to ${a} in the ${this.#name} region`;
      return op === null ? `allocate ${where}` : `${op} (${where})`;
    };
    // The chunk a heap takes for this block: the block, its alignment and header, in whole pages.
    const chunk = roundToPage(searchBytes(size, a));
    if (chunk > MAX_VIEW_OR_HEAP) {
      if (orNull) return null;
      throw this.#neverHeld(what(), size, chunk);
    }
    const view = this.#named(what, () => {
      this.#usable();
      const heap = this.#heap ?? this.#make(chunk);
      return orNull ? heap.tryAlloc(size, a) : heap.alloc(size, a);
    });
    if (view !== null) this.#record(view);
    return view;
  }

  // The refusal of a block no heap of this region can ever give: its chunk (`chunk` bytes) is more than one
  // ArrayBuffer holds in this runtime ("unsupported", as MemoryInterface says it) or than a heap holds.
  #neverHeld(op: string, size: number, chunk: number): Error {
    const instead = "allocate smaller blocks, or reserve the memory with mapPages(size) and use it through " +
      "windows (mapping.view(offset, length))";
    const tooLarge = size > native.maxViewBytes ? viewLimitError(size, op, "the block", instead) : viewLimitError(
      chunk,
      op,
      `the ${this.#name} region's chunk for it (the block, its alignment and header)`,
      instead,
    );
    if (tooLarge !== null) return tooLarge;
    return new RangeError(
      `Cannot ${op} as no region can hold it: with its alignment and header the block needs a ${chunk}-byte ` +
        `chunk, more than the ${MAX_BLOCK_SIZE} bytes a region's heap holds; allocate smaller blocks`,
    );
  }

  // Frees `view`'s block; `op` names the program's call for an error.
  #release(view: ArrayBufferView, op: () => string): void {
    const heap = this.#named(op, () => this.#used("free", view));
    if (heap === null) return;
    this.#named(op, () => heap.free(view));
    if (lengthOf(view) !== 0) this.#handed.delete(addressOfView(view));
  }

  // Remembers `view` as the view its block was handed out as (an empty one holds no block).
  #record(view: ArrayBufferView): void {
    if (lengthOf(view) !== 0) this.#handed.set(addressOfView(view), view);
  }

  // Runs `fn` (a call into the heap): an AllocationError from it is told in terms of `op()`, the program's call.
  #named<T>(op: () => string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      throw new AllocationError(error.category, `Cannot ${op()}: ${reasonOf(error, this.#name)}`, {
        cause: error,
        call: error.call,
        errno: error.errno,
      });
    }
  }

  /** Whether `view` lies in a live block of this region. */
  owns(view: ArrayBufferView): boolean {
    checkView(view, "check ownership");
    return !this.#ended && this.#heap !== null && this.#heap.owns(view);
  }

  /** The heap's counters (zeros before its first use). */
  stats(): AllocatorStats {
    return this.#heap === null || this.#ended ? zeroStats("free-list") : this.#heap.stats();
  }

  /** Refused: the region goes with its RegionAllocator. */
  dispose(): void {
    throw new AllocationError(
      "unsupported",
      `Cannot dispose the ${this.#name} region's allocator: it goes when its RegionAllocator is disposed ` +
        "(regions.dispose()); give its blocks back with deallocate",
    );
  }

  /** Same as {@linkcode AlignedRegion.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Returns the heap's memory (every view reads as length 0; later calls throw "use-after-free"): for the
   * RegionAllocator's dispose only (a static, so the region handed out has no method that does it).
   */
  static end(region: AlignedRegion): void {
    region.#ended = true;
    region.#handed.clear();
    region.#heap?.dispose();
  }

  #usable(): void {
    if (this.#ended) {
      throw new AllocationError(
        "use-after-free",
        `Cannot use the ${this.#name} region: its RegionAllocator was disposed`,
      );
    }
    if (this.#making) {
      throw new AllocationError(
        "unsupported",
        `Cannot use the ${this.#name} region from code its backing runs while the region takes its first chunk`,
      );
    }
  }

  // Makes the heap, its first chunk the region's capacity or `first` bytes when more (the chunk of the block
  // that makes it: the heap is made only with room for that block, see the top of this file).
  #make(first: number): FreeListAllocator {
    this.#making = true;
    let heap: FreeListAllocator;
    try {
      heap = createOwnerNamed(
        `RegionAllocator (${this.#name} region)`,
        () =>
          withLeaseTable(this.#leases, () =>
            new FreeListAllocator({
              capacity: Math.max(this.#capacity, first),
              ...(this.#backing === undefined ? {} : { backing: this.#backing }),
            })),
      );
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      // Said as a reason, to follow the program's call ("Cannot allocate vertex data (...): the vertex region's
      // heap could not take its first chunk: ...").
      throw new AllocationError(
        error.category,
        `Cannot make the ${this.#name} region's heap: the ${this.#name} region's heap could not take its first ` +
          `chunk: ${reasonOf(error, this.#name)}`,
        { cause: error, call: error.call, errno: error.errno },
      );
    } finally {
      this.#making = false;
    }
    if (this.#ended) {
      heap.dispose(); // disposed by the backing's code while the heap was made
      this.#usable();
    }
    return this.#heap = heap;
  }

  // What alloc(0) gives before the region has a heap: an empty view, no memory taken.
  #empty(): Uint8Array<ArrayBuffer> {
    this.#usable();
    return new Uint8Array(0);
  }

  // The heap, for a call about a block it gave; null (nothing to do) for an empty view before the region
  // has one. A region never used makes no heap for a free or resize.
  #used(op: "free" | "resize", view: ArrayBufferView): FreeListAllocator | null {
    if (this.#ended || this.#heap !== null) return this.#live;
    this.#usable();
    if (isEmptyView(view)) return null;
    throw foreignBlockError(view, op, this, `${this.#name} region (it has given no blocks)`);
  }

  #align(align: number | undefined, op: string): number {
    const a = checkAlignment(align, op, native.pageSize, this.alignment);
    return a > this.alignment ? a : this.alignment;
  }
}
