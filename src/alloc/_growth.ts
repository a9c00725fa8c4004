// The one growth policy of the allocators that grow by chunks (Arena,
// FreeListAllocator): how large the next chunk is, and how a limit caps it.
import { roundToPage } from "./_chunks.ts";

/** How an allocator grows: never, by its first chunk's size, or by doubling. */
export type GrowthPolicy = "fixed" | "linear" | "exponential" | "adaptive";

/**
 * The size of the next chunk by policy (whole pages): `base` (the first
 * chunk's size) for "linear", twice the last chunk for "exponential" and
 * "adaptive" ("adaptive" also at least everything held, so a workload that
 * keeps growing settles in few chunks). "fixed" never grows: 0.
 */
export function plannedChunkSize(policy: GrowthPolicy, base: number, last: number, held: number): number {
  switch (policy) {
    case "fixed":
      return 0;
    case "linear":
      return roundToPage(base);
    case "exponential":
      return roundToPage(Math.max(base, last * 2));
    case "adaptive":
      return roundToPage(Math.max(base, last * 2, held));
  }
}

/**
 * `size`, or just `needed` (whole pages) when `size` would take the bytes
 * held past `maxCapacity`; -1 when even `needed` would.
 */
export function capChunkSize(size: number, needed: number, held: number, maxCapacity: number): number {
  if (held + size <= maxCapacity) return size;
  const minimum = roundToPage(needed);
  return held + minimum <= maxCapacity ? minimum : -1;
}
