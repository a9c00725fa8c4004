/**
 * One reading of every source a profiler watches.
 *
 * @module
 */
import process from "node:process";
import type { PressureLevelValue } from "../pressure/pressure_level.ts";
import type { Probe, ProbeEntry } from "./_sources.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * What {@linkcode MemoryProfiler} records at each tick or `capture()`.
 *
 * @example
 * ```ts
 * import { MemoryProfiler, type MemorySnapshot, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using system = new SystemAllocator();
 * using profiler = new MemoryProfiler({ sources: { system } });
 * const block = system.alloc(4096);
 * const snapshot: MemorySnapshot = profiler.capture();
 * assert.equal(snapshot.categoryBreakdown.system, 4096);
 * system.free(block);
 * ```
 */
export interface MemorySnapshot {
  /** When it was taken, in milliseconds since the epoch (`Date.now()`). */
  timestamp: number;
  /** Native bytes in live blocks over every source (budgets' reservations excluded). */
  totalAllocated: number;
  /**
   * Native bytes per owner: a source's name, or `<name>.<type>` for each
   * memory type of a MemoryInterface in use.
   */
  categoryBreakdown: Record<string, number>;
  /** The owners holding most bytes, largest first (at most `largest` of them, empty owners left out). */
  largestAllocations: { name: string; size: number }[];
  /** Fragmentation of the allocators' free space (0..1), their mean weighted by capacity. */
  fragmentation: number;
  /** The process's resident set size. */
  rssBytes: number;
  /** Bytes used by the JavaScript heap (the collector's objects). */
  jsHeapBytes: number;
  /**
   * The memory pressure level, a {@linkcode PressureLevel} value (0 None, 1 Low, 2 Medium, 3 High,
   * 4 Critical), or null where the status cannot be read (Deno without `-A`).
   */
  pressureLevel: PressureLevelValue | null;
  /**
   * Whether a garbage collection ran just before: asked for (`capture({ gc: true })`, `gcEvery`) and
   * allowed (always in Bun; in Deno only with `--v8-flags=--expose-gc`, else false).
   */
  afterGC: boolean;
  /** Bytes reserved per budget category (`<name>.<category>`): reservations, not counted in `totalAllocated`. */
  budgetBreakdown: Record<string, number>;
  /**
   * Sources whose statistics refuse to be read because they were disposed (a MemoryInterface, a FramePool,
   * a PurgeableBuffer, a ResourceHeap): they read as 0 bytes. A disposed allocator or array and an unmapped
   * mapping are not listed: they still read, as 0 bytes.
   */
  released: string[];
}

/** ", or …": what to pass instead when `value` is a profiler given where its snapshots belong. */
export function hintOf(value: unknown): string {
  const snapshots = (value as { snapshots?: unknown } | null)?.snapshots;
  return typeof value === "object" && value !== null && Array.isArray(snapshots)
    ? ": pass its snapshots (profiler.snapshots)"
    : "";
}

// Owners are names the user chose, and "constructor" or "__proto__" is a name like any other: a record is
// read through Object.hasOwn (not Object.prototype's "constructor") and "__proto__" is defined, not
// assigned (an assignment would set the record's prototype and lose the owner).
function put(record: Record<string, number>, owner: string, bytes: number): void {
  if (owner === "__proto__") {
    Object.defineProperty(record, owner, { value: bytes, enumerable: true, writable: true, configurable: true });
  } else record[owner] = bytes;
}

/** Reads every probe into a snapshot. Errors other than use-after-free propagate. */
export function takeSnapshot(
  probes: readonly Probe[],
  largest: number,
  afterGC: boolean,
  pressure: () => PressureLevelValue | null,
): MemorySnapshot {
  const categoryBreakdown: Record<string, number> = {};
  const budgetBreakdown: Record<string, number> = {};
  const owners: ProbeEntry[] = [];
  const released: string[] = [];
  let total = 0, weights = 0, weighted = 0;
  for (const probe of probes) {
    let reading;
    try {
      reading = probe.read();
    } catch (error) {
      // A disposed source holds nothing: record it as gone rather than failing every later tick.
      if (error instanceof AllocationError && error.category === "use-after-free") {
        released.push(probe.name);
        put(categoryBreakdown, probe.name, 0);
        continue;
      }
      throw error;
    }
    for (const entry of reading.native) {
      const before = Object.hasOwn(categoryBreakdown, entry.owner) ? categoryBreakdown[entry.owner] : 0;
      put(categoryBreakdown, entry.owner, before + entry.bytes);
      total += entry.bytes;
      if (entry.bytes > 0) owners.push(entry);
    }
    for (const entry of reading.reserved) put(budgetBreakdown, entry.owner, entry.bytes);
    if (reading.weight > 0) {
      weights += reading.weight;
      weighted += reading.weight * reading.fragmentation;
    }
  }
  owners.sort((a, b) => b.bytes - a.bytes);
  const usage = process.memoryUsage();
  return {
    timestamp: Date.now(),
    totalAllocated: total,
    categoryBreakdown,
    largestAllocations: owners.slice(0, largest).map((e) => ({ name: e.owner, size: e.bytes })),
    fragmentation: weights > 0 ? weighted / weights : 0,
    rssBytes: usage.rss,
    jsHeapBytes: usage.heapUsed,
    pressureLevel: pressure(),
    afterGC,
    budgetBreakdown,
    released,
  };
}
