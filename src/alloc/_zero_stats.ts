// The counters of an allocator that holds nothing: a region or a set of size
// classes before its first use, or after it was disposed, and the start of a
// sum over several allocators.
import type { AllocatorKind, AllocatorStats } from "../base/allocator.ts";

/** Stats of `kind` with every count 0 (a fresh object). */
export function zeroStats(kind: AllocatorKind): AllocatorStats {
  return {
    kind,
    capacityBytes: 0,
    allocatedBytes: 0,
    availableBytes: 0,
    peakBytes: 0,
    liveAllocations: 0,
    totalAllocations: 0,
    totalFrees: 0,
    failedAllocations: 0,
    largestFreeBlock: 0,
    fragmentation: 0,
    overheadBytes: 0,
  };
}
