// One region of a RegionAllocator: a FreeListAllocator (any size, any order,
// coalescing) whose blocks all start at the region's alignment, whatever the
// caller asks for below it. The heap is made on first use, so a region that
// is never used holds no memory.
import { native } from "../../ffi/native.ts";
import { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import { typedArrayOf } from "../alloc/_typed_array_of.ts";
import { zeroStats } from "../alloc/_zero_stats.ts";
import { bufferOf, checkAlignment, checkView, describe, isDetached, lengthOf } from "../base/_validate.ts";
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
  #ended = false;

  constructor(name: string, alignment: number, capacity: number, backing: Allocator | undefined) {
    this.#name = name;
    this.alignment = alignment;
    this.#capacity = capacity;
    this.#backing = backing;
  }

  get #live(): FreeListAllocator {
    if (this.#ended) {
      throw new AllocationError(
        "use-after-free",
        `Cannot use the ${this.#name} region: its RegionAllocator was disposed`,
      );
    }
    return this.#heap ??= new FreeListAllocator({
      capacity: this.#capacity,
      ...(this.#backing === undefined ? {} : { backing: this.#backing }),
    });
  }

  /** `size` bytes at the region's alignment, or `align` when larger. */
  alloc(size: number, align?: number): Uint8Array {
    return this.#live.alloc(size, this.#align(align, "allocate"));
  }

  /** Like {@linkcode AlignedRegion.alloc}, but `null` when the heap cannot grow. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    return this.#live.tryAlloc(size, this.#align(align, "allocate"));
  }

  /** A typed array of `length` elements at the region's alignment (or more). */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return typedArrayOf((size, a) => this.alloc(size, a), ctor, length, align, native.pageSize);
  }

  /** Returns a block. */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    this.#used("free", view).free(view);
  }

  /** Resizes a block, keeping the region's alignment when it moves. */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    return this.#used("resize", view).resize(view, newSize);
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

  /** Returns the heap's memory; every view reads as length 0 and later calls throw "use-after-free". */
  dispose(): void {
    this.#ended = true;
    this.#heap?.dispose();
  }

  /** Same as {@linkcode AlignedRegion.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // The heap, for a call about a block it gave: a region never used has none (and makes none for it).
  #used(op: string, view: ArrayBufferView): FreeListAllocator {
    if (this.#ended || this.#heap !== null) return this.#live;
    if (lengthOf(view) === 0 && !isDetached(bufferOf(view))) return this.#live; // an alloc(0) view: any heap takes it
    throw new AllocationError(
      "invalid-free",
      `Cannot ${op} ${describe(view)}: the ${this.#name} region has given no blocks`,
    );
  }

  #align(align: number | undefined, op: string): number {
    const a = checkAlignment(align, op, native.pageSize, this.alignment);
    return a > this.alignment ? a : this.alignment;
  }
}
