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
import { native } from "../../ffi/native.ts";
import { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import { LeaseTable, registerLeases, withLeaseTable } from "../alloc/_lease.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { zeroStats } from "../alloc/_zero_stats.ts";
import { checkAlignment, checkSize, checkView } from "../base/_validate.ts";
import { createOwnerNamed } from "../base/_native_census.ts";
import { foreignBlockError, isEmptyView } from "../alloc/_ownership.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";

export class AlignedRegion implements Allocator, Disposable {
  /** Always `"free-list"`: a region is a TLSF heap. */
  readonly kind = "free-list" as const;
  /** Every block starts at a multiple of this. */
  readonly alignment: number;
  readonly #name: string;
  readonly #capacity: number;
  readonly #backing: Allocator | undefined;
  #heap: FreeListAllocator | null = null;
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
    return this.#heap ?? this.#make();
  }

  /** `size` bytes at the region's alignment, or `align` when larger. */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    // Checked before the heap is made (a refused call makes nothing): the heap checks the size again.
    checkSize(size, "allocate", "size");
    const a = this.#align(align, "allocate");
    if (size === 0 && this.#heap === null) return this.#empty();
    return this.#live.alloc(size, a);
  }

  /** Like {@linkcode AlignedRegion.alloc}, but `null` when the heap cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    // Checked before the heap is made (a refused call makes nothing): the heap checks the size again.
    checkSize(size, "allocate", "size");
    const a = this.#align(align, "allocate");
    if (size === 0 && this.#heap === null) return this.#empty();
    return this.#live.tryAlloc(size, a);
  }

  /** A typed array of `length` elements at the region's alignment (or more). */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align, native.pageSize);
  }

  /** Returns a block. */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    const heap = this.#used("free", view);
    if (heap !== null) heap.free(view);
  }

  /** Resizes a block, keeping the region's alignment when it moves. */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    checkView(view, "resize");
    const heap = this.#used("resize", view);
    return heap === null ? this.alloc(newSize) : heap.resize(view, newSize);
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

  #make(): FreeListAllocator {
    this.#making = true;
    let heap: FreeListAllocator;
    try {
      heap = createOwnerNamed(
        `RegionAllocator (${this.#name} region)`,
        () =>
          withLeaseTable(this.#leases, () =>
            new FreeListAllocator({
              capacity: this.#capacity,
              ...(this.#backing === undefined ? {} : { backing: this.#backing }),
            })),
      );
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      throw new AllocationError(error.category, `Cannot make the ${this.#name} region's heap: ${error.message}`, {
        cause: error,
      });
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
