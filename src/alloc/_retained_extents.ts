// Large blocks a SystemAllocator freed, kept with their pages for the next
// large allocation instead of going back to libc (the retained extents of
// jemalloc and mimalloc). A first touch of a fresh page costs a page fault
// (about 12 µs per 4 KiB page measured here), which dominates a large cold
// allocation: growing an array to 32 MiB touches 8,192 fresh pages; a freed
// extent's pages are already there. Bounded in bytes; `drain` gives them all
// back (trim(), memory pressure, dispose).
//
// Invariants: `bytes` is the sum of the extents' capacities and never above
// `limit`; every extent is memory this allocator obtained from libc, owns,
// and no view reaches (its block was detached before it was kept).

/** Memory obtained from libc: `capacity` bytes at `address` (`mapped` > 0: an mmap of that length, else malloc). */
export interface Extent {
  readonly address: number;
  readonly capacity: number;
  readonly mapped: number;
}

/** Blocks below this size are left to libc, whose free lists reuse them (glibc maps only larger ones). */
export const RETAIN_MIN_BYTES = 128 << 10;

export class RetainedExtents {
  readonly limit: number;
  bytes = 0;
  // Oldest first. Few extents (limit / RETAIN_MIN_BYTES at most, far fewer in practice): a list scanned for the best fit.
  readonly #extents: Extent[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * Keeps `extent` for reuse, giving the oldest kept extents to `release`
   * until it fits the limit (the most recently freed block is the likeliest
   * to be wanted again: the next round of the same work). False when it is
   * too small or larger than the whole limit (the caller frees it).
   */
  keep(extent: Extent, release: (old: Extent) => void): boolean {
    if (extent.capacity < RETAIN_MIN_BYTES || extent.capacity > this.limit) return false;
    while (this.bytes + extent.capacity > this.limit) {
      const oldest = this.#extents.shift()!;
      this.bytes -= oldest.capacity;
      release(oldest);
    }
    this.#extents.push(extent);
    this.bytes += extent.capacity;
    return true;
  }

  /**
   * The smallest kept extent that holds `size` bytes at an address aligned to
   * `align` (with `mappedOnly`, an mmap one), taken out of the cache; null
   * when none does. An extent more than twice `size` stays for a larger request.
   */
  take(size: number, align: number, mappedOnly = false): Extent | null {
    const best = this.#bestFit(size, align, mappedOnly);
    if (best < 0) return null;
    const [extent] = this.#extents.splice(best, 1);
    this.bytes -= extent.capacity;
    return extent;
  }

  /** Whether take(size, align) would find an extent (it is left in the cache). */
  fits(size: number, align: number, mappedOnly = false): boolean {
    return this.#bestFit(size, align, mappedOnly) >= 0;
  }

  #bestFit(size: number, align: number, mappedOnly: boolean): number {
    if (size < RETAIN_MIN_BYTES) return -1;
    let best = -1;
    for (let i = 0; i < this.#extents.length; i++) {
      const e = this.#extents[i];
      if (e.capacity < size || e.capacity > 2 * size || e.address % align !== 0) continue;
      if (mappedOnly && e.mapped === 0) continue;
      if (best < 0 || e.capacity < this.#extents[best].capacity) best = i;
    }
    return best;
  }

  /** Gives every kept extent to `release`; returns the bytes released. */
  drain(release: (extent: Extent) => void): number {
    const released = this.bytes;
    for (const extent of this.#extents.splice(0)) release(extent);
    this.bytes = 0;
    return released;
  }
}
