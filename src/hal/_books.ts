// What an interface updates on every release besides the allocator: its
// counters, its index of allocations, and its waiting allocations (a release
// may give them room). One per interface, shared by its allocations' origins.
import type { Allocation, Bookkeeping, Frame } from "./_allocation.ts";
import type { AllocationIndex } from "./_allocation_index.ts";
import type { Backings } from "./_backings.ts";
import type { Counters } from "./_memory_stats.ts";
import type { WaitQueue } from "./_wait_queue.ts";

export class Books implements Bookkeeping {
  constructor(
    readonly counters: Counters,
    readonly index: AllocationIndex,
    readonly waiters: WaitQueue,
    readonly backings: Backings,
  ) {}

  releasedOutside(frame: Frame | null, t: number, size: number): void {
    if (frame !== null) this.backings.releasedFrom(frame, t, size);
    else {
      const counter = this.counters.types[t];
      counter.unframedBytes -= size;
      counter.unframedCount--;
    }
  }

  released(a: Allocation): void {
    this.index.released(a);
    if (this.waiters.count !== 0) this.waiters.wake();
  }

  remember(): void {
    this.index.remember();
  }
}
