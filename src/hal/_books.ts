// What an interface updates on every release besides the allocator: its
// counters, its index of allocations, and its waiting allocations (a release
// may give them room). One per interface, shared by its allocations' origins.
import type { Allocation, Bookkeeping } from "./_allocation.ts";
import type { AllocationIndex } from "./_allocation_index.ts";
import type { Counters } from "./_memory_stats.ts";
import type { WaitQueue } from "./_wait_queue.ts";

export class Books implements Bookkeeping {
  constructor(readonly counters: Counters, readonly index: AllocationIndex, readonly waiters: WaitQueue) {}

  released(a: Allocation): void {
    this.index.released(a);
    if (this.waiters.count !== 0) this.waiters.wake();
  }

  remember(): void {
    this.index.remember();
  }
}
