/**
 * Leak suspicion over profiler snapshots: native bytes that grow at every
 * step across several snapshots taken after a garbage collection (the
 * memwatch heuristic, applied to native memory per owner).
 *
 * @module
 */
import { describe, isLiveArray } from "../base/_validate.ts";
import { hintOf, type MemorySnapshot } from "./snapshot.ts";
import { readOwners, readSnapshots } from "./_input.ts";

/**
 * One owner's growth across the window, in {@linkcode LeakSuspicion.owners}.
 *
 * @example
 * ```ts
 * import type { LeakSuspect } from "@memkit/memkit";
 *
 * const suspect: LeakSuspect = { name: "cache", fromBytes: 0, toBytes: 4096, growthBytes: 4096, monotonic: true };
 * console.log(`${suspect.name} grew by ${suspect.growthBytes} bytes`);
 * ```
 */
export interface LeakSuspect {
  /** The owner (a key of `categoryBreakdown`). */
  name: string;
  /** Bytes in the window's first snapshot. */
  fromBytes: number;
  /** Bytes in its last. */
  toBytes: number;
  /** `toBytes - fromBytes`. */
  growthBytes: number;
  /** Whether it grew at every step of the window (what makes it a suspect). */
  monotonic: boolean;
}

/**
 * What {@linkcode leakSuspicion} and `MemoryProfiler.leakSuspicion()` return.
 *
 * @example
 * ```ts
 * import { leakSuspicion, type LeakSuspicion, type MemorySnapshot } from "@memkit/memkit";
 *
 * const at = (bytes: number): MemorySnapshot => ({
 *   timestamp: 0, totalAllocated: bytes, categoryBreakdown: { cache: bytes }, largestAllocations: [],
 *   fragmentation: 0, rssBytes: 0, jsHeapBytes: 0, pressureLevel: null, afterGC: true, budgetBreakdown: {},
 *   released: [],
 * });
 * const result: LeakSuspicion = leakSuspicion([1, 2, 3, 4, 5].map((n) => at(n * 1024)));
 * console.log(result.suspected, result.owners[0]?.name); // true "cache"
 * ```
 */
export interface LeakSuspicion {
  /** Whether the total or some owner grew at every step of the window. */
  suspected: boolean;
  /** Snapshots examined (fewer than asked when there were fewer; then nothing is suspected). */
  window: number;
  /** Whether every examined snapshot was taken after a garbage collection. */
  afterGC: boolean;
  /** Growth of `totalAllocated` across the window. */
  growthBytes: number;
  /** Whether `totalAllocated` grew at every step. */
  totalMonotonic: boolean;
  /** Owners that grew across the window, the monotonic ones first, then by growth. */
  owners: LeakSuspect[];
}

/**
 * Options of {@linkcode leakSuspicion}.
 *
 * @example
 * ```ts
 * import type { LeakSuspicionOptions } from "@memkit/memkit";
 *
 * const options: LeakSuspicionOptions = { window: 8 };
 * console.log(options);
 * ```
 */
export interface LeakSuspicionOptions {
  /**
   * How many of the latest snapshots to examine (growth at each of their `window - 1` steps).
   * @default {5}
   */
  window?: number;
}

/** The window when none is given. */
export const DEFAULT_LEAK_WINDOW = 5;

/**
 * Looks for native memory that only grows: the total, or any owner, growing
 * at every step across the last `window` snapshots taken after a garbage
 * collection (the latest snapshots of any kind when fewer than `window` were).
 * Memory that rises and falls, or settles, is not suspected; a slow leak is,
 * once it has grown `window - 1` times in a row. An owner inside another
 * watched source (an array in a watched arena) grows alone: its bytes are
 * not in the outer source's figure (see `MemorySnapshot.nestedIn`).
 *
 * @param snapshots Snapshots, oldest first (e.g. `profiler.snapshots`).
 * @param options The window.
 * @returns The verdict and the owners that grew, the monotonic ones first.
 * @throws {TypeError} When `snapshots` is not an array of snapshots, or `options` not an object.
 * @throws {RangeError} When `window` is not an integer from 2 to 10,000, or a snapshot examined holds a size
 *   that is negative, NaN or infinite.
 *
 * @example
 * ```ts
 * import { leakSuspicion, MemoryProfiler, PoolAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pool = new PoolAllocator({ blockSize: 64 });
 * using profiler = new MemoryProfiler({ sources: { pool } });
 * const kept: Uint8Array[] = [];
 * for (let tick = 0; tick < 6; tick++) {
 *   kept.push(pool.alloc(64)); // never freed: a leak
 *   profiler.capture({ gc: true });
 * }
 * const verdict = leakSuspicion(profiler.snapshots);
 * assert.equal(verdict.suspected, true);
 * assert.equal(verdict.owners[0].name, "pool");
 * for (const block of kept) pool.free(block);
 * ```
 */
export function leakSuspicion(
  snapshots: readonly MemorySnapshot[],
  options?: LeakSuspicionOptions,
): LeakSuspicion {
  const op = "look for leaks";
  if (!isLiveArray(snapshots)) {
    throw new TypeError(
      `Cannot ${op} as 'snapshots' must be an array: current value is ${describe(snapshots)}${hintOf(snapshots)}`,
    );
  }
  // Read once into checked copies (see _input.ts); the owners of those examined are copied below.
  const read = readSnapshots(snapshots, op, false, false);
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(`Cannot ${op} as 'options' must be an object: current value is ${describe(options)}`);
  }
  const window = options?.window ?? DEFAULT_LEAK_WINDOW;
  if (typeof window !== "number") {
    throw new TypeError(`Cannot ${op} as 'window' must be a number: current value is ${describe(window)}`);
  }
  if (!Number.isInteger(window) || window < 2 || window > 10_000) {
    throw new RangeError(
      `Cannot ${op} as 'window' must be an integer from 2 to 10000: current value is ${describe(window)}`,
    );
  }
  const collected = read.filter((s) => s.afterGC);
  const chosen = (collected.length >= window ? collected : read).slice(-window);
  // Records without a prototype: an owner named "constructor" absent from a snapshot reads as 0 bytes.
  for (const s of chosen) s.categoryBreakdown = readOwners(s.categoryBreakdown, s.index, op);
  const enough = chosen.length === window;
  const first = chosen[0], last = chosen[chosen.length - 1];
  const totals = chosen.map((s) => s.totalAllocated);
  const totalMonotonic = enough && growsAtEveryStep(totals);
  const names = new Set<string>();
  for (const snapshot of chosen) for (const name of Object.keys(snapshot.categoryBreakdown)) names.add(name);
  const owners: LeakSuspect[] = [];
  for (const name of names) {
    const series = chosen.map((s) => s.categoryBreakdown[name] ?? 0);
    const growthBytes = series[series.length - 1] - series[0];
    if (!(growthBytes > 0)) continue;
    owners.push({
      name,
      fromBytes: series[0],
      toBytes: series[series.length - 1],
      growthBytes,
      monotonic: enough && growsAtEveryStep(series),
    });
  }
  owners.sort((a, b) => Number(b.monotonic) - Number(a.monotonic) || b.growthBytes - a.growthBytes);
  return {
    suspected: totalMonotonic || owners.some((o) => o.monotonic),
    window: chosen.length,
    afterGC: chosen.length > 0 && chosen.every((s) => s.afterGC),
    growthBytes: first === undefined ? 0 : last.totalAllocated - first.totalAllocated,
    totalMonotonic,
    owners,
  };
}

function growsAtEveryStep(series: readonly number[]): boolean {
  for (let i = 1; i < series.length; i++) if (!(series[i] > series[i - 1])) return false;
  return series.length > 1;
}
