// The interface's counters (per type and overall, kept on every allocation
// and deallocation) and getMemoryStats, whose figures from the allocators
// (fragmentation, efficiency, the largest block) are computed when something
// changed and cached otherwise: a call that finds the cache current costs a
// comparison and a clock read.
import { MAX_BLOCK_SIZE } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { TYPES } from "./_request.ts";
import type { MemoryStats } from "./memory_types.ts";

const TYPE_COUNT = TYPES.length;
/**
 * How long cached figures are used while the interface's own counters are unchanged. What the interface and
 * its getAllocator guards do marks the counters changed; this bounds what they cannot see (a heap handle's
 * own free(), pages the rest of the process locks).
 */
const MAX_AGE_MS = 100;

/** One type's counters (plain fields: cheaper to update than typed-array elements). */
export class TypeCounter {
  used = 0;
  peak = 0;
  count = 0;
  /** Its budget (Infinity: none). */
  budget = Infinity;
  /**
   * Bytes of its released blocks that the arena still holds (given back out of order: only the arena's most
   * recent block rolls back): they count against the budget until they come back (see Frame.held).
   */
  held = 0;
  /** What the budget leaves live allocations: `budget - held` (Infinity: no budget). The fast paths compare with it. */
  cap = Infinity;
  /**
   * Of `used` and `count`, what is not in a frame (kept for the types frames hold, temporary and system, on
   * the paths that serve them outside the arena): the rest is the frames' (see Frame.older).
   */
  unframedBytes = 0;
  unframedCount = 0;
}

/** Live bytes, their peak and live allocations, per type and overall. */
export class Counters {
  readonly types: TypeCounter[] = Array.from({ length: TYPE_COUNT }, () => new TypeCounter());
  totalUsed = 0;
  totalPeak = 0;
  /** The types' `held` bytes together. */
  totalHeld = 0;
  /**
   * Allocations made and released since the interface was made: each changes on every allocation or
   * release, so together with `version` they tell whether anything changed (one update a pair less than a
   * live count and a version both bumped by allocations).
   */
  allocations = 0;
  releases = 0;
  /** Changes on `changed()`. */
  version = 0;

  /** Live allocations. */
  get totalCount(): number {
    return this.allocations - this.releases;
  }

  /**
   * The allocators' figures changed without an allocation or deallocation of the interface (a frame's end,
   * a defragmentation, a block of the caller's own through getAllocator): cached stats are stale.
   */
  changed(): void {
    this.version++;
  }

  added(c: TypeCounter, size: number): void {
    const used = (c.used += size);
    if (used > c.peak) c.peak = used;
    c.count++;
    const total = (this.totalUsed += size);
    if (total > this.totalPeak) this.totalPeak = total;
    this.allocations++;
  }

  removed(c: TypeCounter, size: number, count = 1): void {
    c.used -= size;
    c.count -= count;
    this.totalUsed -= size;
    this.releases += count;
  }

  /** Sets a type's budget (nothing of it is held yet: at construction). */
  budget(c: TypeCounter, bytes: number): void {
    c.budget = c.cap = bytes;
  }

  /** `size` bytes of a released block stay held by the arena (`size` below 0: they came back). */
  hold(c: TypeCounter, size: number): void {
    c.held += size;
    c.cap = c.budget - c.held;
    this.totalHeld += size;
  }
}

/** What the stats of one type need from the backings. */
export interface TypeSources {
  /** The allocators that serve the type (or every one, for the overall figures). */
  allocators: Allocator[];
  /** The largest block the type's allocators could ever give at once (Infinity: no limit of their own). */
  largestBlock: number;
  /** Bytes held outside allocators (shared mappings) and the live bytes in them. */
  extraHeld: number;
  /**
   * Whether a figure also depends on what the rest of the process does, which no counter of the interface
   * sees (audio's largest block: the pages the process may still lock, less what other interfaces and
   * allocators lock): every answer from the cache then looks at the clock, as once `untracked`.
   */
  outside: boolean;
}

interface Cached {
  stats: MemoryStats;
  version: number;
  allocations: number;
  releases: number;
  at: number;
  /** Calls answered from this entry since the clock was last read. */
  hits: number;
  /** See TypeSources.outside: the clock is read on every call. */
  outside: boolean;
}

/** Calls answered from a cache entry between two reads of the clock (a clock read costs more than the rest). */
const HITS_PER_CLOCK_READ = 64;

export class StatsCache {
  readonly #cache: (Cached | undefined)[] = new Array(TYPE_COUNT + 1);
  readonly #sources: (t: number) => TypeSources;
  readonly #counters: Counters;
  /**
   * Set once the allocators' figures can change without the interface hearing of it (a heap handle's own
   * `free()`): every answer from the cache then looks at the clock, so none is older than MAX_AGE_MS.
   */
  untracked = false;

  /** `sources(t)`: what type `t`'s figures come from (all types for `t` past the last). */
  constructor(counters: Counters, sources: (t: number) => TypeSources) {
    this.#counters = counters;
    this.#sources = sources;
  }

  /**
   * The stats of type `t` (or overall for `t === TYPE_COUNT`): from the cache
   * while the interface's counters are unchanged and the entry is younger
   * than MAX_AGE_MS (looked at every HITS_PER_CLOCK_READ calls; at every call
   * once `untracked`, and for a type whose figures depend on the rest of the
   * process: see TypeSources.outside).
   */
  get(t: number, totalBytes: number): MemoryStats {
    const cached = this.#cache[t];
    const counters = this.#counters;
    if (
      cached !== undefined && cached.version === counters.version && cached.allocations === counters.allocations &&
      cached.releases === counters.releases && cached.stats.totalBytes === totalBytes
    ) {
      if (++cached.hits < HITS_PER_CLOCK_READ && !this.untracked && !cached.outside) return cached.stats;
      cached.hits = 0;
      if (Date.now() - cached.at < MAX_AGE_MS) return cached.stats;
    }
    const sources = this.#sources(t);
    const stats = compute(t, counters, totalBytes, sources);
    this.#cache[t] = {
      stats,
      version: counters.version,
      allocations: counters.allocations,
      releases: counters.releases,
      at: Date.now(),
      hits: 0,
      outside: sources.outside,
    };
    return stats;
  }
}

function compute(t: number, counters: Counters, totalBytes: number, sources: TypeSources): MemoryStats {
  const overall = t === TYPE_COUNT;
  const used = overall ? counters.totalUsed : counters.types[t].used;
  const unreclaimed = overall ? counters.totalHeld : counters.types[t].held;
  const free = Math.max(0, totalBytes - used - unreclaimed);
  let held = sources.extraHeld, inBlocks = 0, weighted = 0;
  for (const allocator of sources.allocators) {
    const s = allocator.stats();
    held += s.capacityBytes;
    inBlocks += s.allocatedBytes;
    weighted += s.fragmentation * s.capacityBytes;
  }
  inBlocks += sources.extraHeld; // a shared mapping is all in use
  return Object.freeze({
    totalBytes,
    usedBytes: used,
    freeBytes: free,
    unreclaimedBytes: unreclaimed,
    peakUsedBytes: overall ? counters.totalPeak : counters.types[t].peak,
    allocationCount: overall ? counters.totalCount : counters.types[t].count,
    fragmentation: held > 0 ? weighted / held : 0,
    // No allocator limit and no known total (Infinity): still no block beyond the largest memkit allocates.
    largestFreeBlock: Math.min(free, sources.largestBlock, MAX_BLOCK_SIZE),
    allocationEfficiency: held > 0 ? Math.min(1, inBlocks / held) : 1,
  });
}
