/**
 * One reading of every source a profiler watches.
 *
 * @module
 */
import process from "node:process";
import type { PressureLevelValue } from "../pressure/pressure_level.ts";
import type { Probe, ProbeEntry, ProbeReading } from "./_sources.ts";
import type { Nesting } from "./_nesting.ts";
import { AllocationError } from "../base/errors.ts";
import { isLiveArray, isRevokedProxy } from "../base/_validate.ts";

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
  /**
   * Native bytes in live blocks over every source (budgets' reservations excluded), each byte counted once:
   * the sum of `categoryBreakdown`. Where one watched source lives inside another (see `nestedIn`), the total
   * is what the outer one holds, as the leak check at exit counts memory once, for the object that took it
   * from the system.
   */
  totalAllocated: number;
  /**
   * Native bytes per owner: a source's name, or `<name>.<type>` for each
   * memory type of a MemoryInterface in use. A source inside another
   * watched source (`nestedIn`: an array in a watched arena, a
   * DebugAllocator over a watched pool, an allocator over a watched
   * backing, directly or through allocators not watched) keeps its own
   * figure here, and the source that handed it the memory shows only the
   * rest: its other blocks, and what the inner one holds beyond its figure
   * (a DebugAllocator's canaries, an inner allocator's room not handed out).
   * So `categoryBreakdown.arena` may be below the arena's
   * `stats().allocatedBytes`, by exactly the bytes its watched arrays hold.
   */
  categoryBreakdown: Record<string, number>;
  /**
   * The owners holding most bytes (as in `categoryBreakdown`, so memory inside another watched source is
   * listed once, as the inner source's), largest first (at most `largest` of them, empty owners left out).
   */
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
  /**
   * Sources whose memory another watched source handed them, by name, and that source's name (the nearest
   * watched one up the chain): `{ values: "arena" }` for an array whose allocator is the watched `arena`.
   * Found from memkit's own records of where each source's memory lies, for arrays (DynamicArray,
   * SIMDArray), allocators and DebugAllocators inside memkit allocators and the global allocator, and found
   * again whenever that memory may have moved (an array's storage grew into another allocator, an
   * allocator's chunk came from elsewhere). Only sources holding memory are listed. Always present in the
   * profiler's snapshots; optional for snapshots made by hand.
   */
  nestedIn?: Record<string, string>;
  /**
   * Sources holding the very storage another source holds (an array and its `snapshot()`, which share it
   * until either writes), by name, and the name of the source listed first in `sources` that holds it: that
   * memory is counted once, for that source, and the sources named here read 0 in `categoryBreakdown`
   * (`{ before: "values" }` for `before = values.snapshot()` listed after `values`). Always present in the
   * profiler's snapshots; optional for snapshots made by hand.
   */
  sharedWith?: Record<string, string>;
}

/** ", or …": what to pass instead when `value` is a profiler given where its snapshots belong. */
export function hintOf(value: unknown): string {
  if (isRevokedProxy(value)) return ""; // nothing can be read from it
  const snapshots = (value as { snapshots?: unknown } | null)?.snapshots;
  return typeof value === "object" && value !== null && isLiveArray(snapshots)
    ? ": pass its snapshots (profiler.snapshots)"
    : "";
}

// Owners are names the user chose, and "constructor" or "__proto__" is a name like any other: a record is
// read through Object.hasOwn (not Object.prototype's "constructor") and "__proto__" is defined, not
// assigned (an assignment would set the record's prototype and lose the owner).
function put<T>(record: Record<string, T>, owner: string, bytes: T): void {
  if (owner === "__proto__") {
    Object.defineProperty(record, owner, { value: bytes, enumerable: true, writable: true, configurable: true });
  } else record[owner] = bytes;
}

/**
 * Reads every probe into a snapshot. Errors other than use-after-free propagate. Native bytes a source holds
 * inside another watched source (see `nesting`) are counted once: as that source's, and taken out of the
 * figure of the source that handed them out.
 */
export function takeSnapshot(
  probes: readonly Probe[],
  nesting: Nesting,
  largest: number,
  afterGC: boolean,
  pressure: () => PressureLevelValue | null,
): MemorySnapshot {
  const categoryBreakdown: Record<string, number> = {};
  const budgetBreakdown: Record<string, number> = {};
  const owners: ProbeEntry[] = [];
  const released: string[] = [];
  const readings: (ProbeReading | null)[] = [];
  const held: number[] = [];
  for (const probe of probes) {
    let reading: ProbeReading | null;
    try {
      reading = probe.read();
    } catch (error) {
      // A disposed source holds nothing: record it as gone rather than failing every later tick.
      if (!(error instanceof AllocationError && error.category === "use-after-free")) throw error;
      reading = null;
    }
    readings.push(reading);
    let bytes = 0;
    if (reading !== null) { for (const entry of reading.native) bytes += entry.bytes; }
    held.push(bytes);
  }
  nesting.place(held, readings.map((reading) => reading?.weight ?? 0));
  // Storage two arrays hold (an array and its snapshot()): counted once, for the source listed first.
  const sharedWith: Record<string, string> = {};
  for (let i = 0; i < probes.length; i++) {
    const first = nesting.sharedWith(i);
    if (first < 0) continue;
    put(sharedWith, probes[i].name, probes[first].name);
    for (const entry of readings[i]?.native ?? []) entry.bytes = 0;
    held[i] = 0;
  }
  // A source inside another: its bytes are already in that source's figure, which keeps only the rest. (Only
  // allocators and the global allocator hold other sources; each reads as one entry.)
  // An allocator whose chunks lie in several watched sources: its bytes come out of each, in proportion.
  const nestedIn: Record<string, string> = {};
  for (let i = 0; i < probes.length; i++) {
    const parent = nesting.parentOf(i);
    if (parent < 0) continue;
    put(nestedIn, probes[i].name, probes[parent].name);
    const portions = nesting.portionsOf(i) ?? [[parent, held[i]] as const];
    for (const [holder, bytes] of portions) {
      const outer = holder < 0 ? undefined : readings[holder]?.native[0];
      if (outer !== undefined) outer.bytes = Math.max(0, outer.bytes - bytes);
    }
  }
  let total = 0, weights = 0, weighted = 0;
  for (let i = 0; i < probes.length; i++) {
    const probe = probes[i], reading = readings[i];
    if (reading === null) {
      released.push(probe.name);
      put(categoryBreakdown, probe.name, 0);
      continue;
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
    nestedIn,
    sharedWith,
  };
}
