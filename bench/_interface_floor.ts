// The least a memory interface must do around its allocator for a 64-byte
// pair (issue 15's "≤ 1.5× the allocator directly"): hand back a record of the
// allocation that a later deallocate can tell live from released (so a second
// deallocate is refused, not passed to the allocator), and keep the counters
// getMemoryStats reports (live bytes, their peak and the allocation count, for
// the type and overall). No argument checks, no types but one, no address
// index, no frames, no budget: the floor below which MemoryInterface cannot go
// (bench/hal_bench.ts; the scorecard's ceiling for its pairs). One class per
// allocator kind, so each call into the allocator sees one class.
import type { Arena, PoolAllocator } from "../mod.ts";

class FloorRecord {
  constructor(readonly bytes: Uint8Array, public size: number) {}
}

class FloorCounters {
  #used = 0;
  #peak = 0;
  #count = 0;
  #totalUsed = 0;
  #totalPeak = 0;
  #totalCount = 0;

  protected added(size: number): void {
    const used = (this.#used += size);
    if (used > this.#peak) this.#peak = used;
    this.#count++;
    const total = (this.#totalUsed += size);
    if (total > this.#totalPeak) this.#totalPeak = total;
    this.#totalCount++;
  }

  /** The record's size, once: it is then marked released. */
  protected released(record: FloorRecord): number {
    if (!(record instanceof FloorRecord) || record.size <= 0) throw new Error("not a live allocation");
    const size = record.size;
    record.size = -size;
    this.#used -= size;
    this.#count--;
    this.#totalUsed -= size;
    this.#totalCount--;
    return size;
  }
}

/** The floor over a PoolAllocator. */
export class PoolInterfaceFloor extends FloorCounters {
  constructor(readonly pool: PoolAllocator) {
    super();
  }

  allocate(size: number): FloorRecord {
    const bytes = this.pool.alloc(size);
    this.added(size);
    return new FloorRecord(bytes, size);
  }

  deallocate(record: FloorRecord): void {
    this.released(record);
    this.pool.free(record.bytes);
  }
}

/** The floor over an Arena. */
export class ArenaInterfaceFloor extends FloorCounters {
  constructor(readonly arena: Arena) {
    super();
  }

  allocate(size: number): FloorRecord {
    const bytes = this.arena.alloc(size);
    this.added(size);
    return new FloorRecord(bytes, size);
  }

  deallocate(record: FloorRecord): void {
    this.released(record);
    this.arena.free(record.bytes);
  }
}
