// What a profiler can watch, recognised by shape (duck typing), so the
// profiler depends on no family's classes: allocators, arrays, the global
// allocator, a HAL MemoryInterface and budgets all come in as "probes" that
// read a few counters. Classification runs once, in the constructor, so a bad
// source fails there and not in a timer callback.
import { describe } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { getMemStats } from "../debug/global_allocator.ts";

/** Anything with `metrics()` like a DynamicArray or SIMDArray. */
export interface MetricsSource {
  /** The array's metrics; `memoryUsage` is the bytes of storage it holds. */
  metrics(): { memoryUsage: number };
}

/** A SharedDynamicArray-like source: `capacity` records of `stride` bytes. */
export interface SharedArraySource {
  /** Records that fit. */
  readonly capacity: number;
  /** Bytes per record. */
  readonly stride: number;
  /** Only used to recognise the shape. */
  pushMany(values: never[]): number;
}

/** A MemoryInterface-like source: statistics per memory type. */
export interface MemoryStatsSource {
  /** Statistics of one memory type, or of all. */
  getMemoryStats(type?: never): { usedBytes: number; fragmentation: number };
}

/** A MemoryBudget-like source: reserved bytes per category (reservations, not memory). */
export interface BudgetSource {
  /** The budget's statistics. */
  stats(): { usedBytes: number; categories: Record<string, { usedBytes: number }> };
}

/**
 * What a {@linkcode MemoryProfiler} can watch: any memkit allocator, a
 * DynamicArray / SIMDArray / SharedDynamicArray, `"global"` (the global
 * allocator's counters), a MemoryInterface, or a MemoryBudget.
 *
 * @example
 * ```ts
 * import { Arena, DynamicArray, MemoryProfiler, type ProfilerSource } from "@memkit/memkit";
 *
 * using arena = new Arena({ capacity: 1 << 16 });
 * using values = new DynamicArray("f32");
 * const sources: Record<string, ProfilerSource> = { arena, values, global: "global" };
 * using profiler = new MemoryProfiler({ sources });
 * console.log(profiler.capture().categoryBreakdown);
 * ```
 */
export type ProfilerSource =
  | Allocator
  | MetricsSource
  | SharedArraySource
  | MemoryStatsSource
  | BudgetSource
  | "global";

/** The kind a source was recognised as. */
export type SourceKind = "allocator" | "array" | "shared-array" | "global" | "hal" | "budget";

/** One owner's reading. */
export interface ProbeEntry {
  owner: string;
  bytes: number;
}

/** What one probe read: native bytes per owner, reserved bytes per owner, capacity and fragmentation. */
export interface ProbeReading {
  native: ProbeEntry[];
  reserved: ProbeEntry[];
  /** Weight of this source's fragmentation in the snapshot's mean (capacity held). */
  weight: number;
  fragmentation: number;
}

/** A classified source. */
export interface Probe {
  readonly name: string;
  readonly kind: SourceKind;
  readonly source: ProfilerSource;
  read(): ProbeReading;
}

// The HAL's memory types, read one by one for a per-type breakdown.
const HAL_TYPES = ["system", "video", "audio", "network", "shared", "temporary", "stack", "pool"] as const;

const fn = (value: unknown, key: string): boolean => typeof (value as Record<string, unknown>)[key] === "function";

/** The kind of `source`, or null when it is none that the profiler knows. */
export function kindOf(source: unknown): SourceKind | null {
  if (source === "global") return "global";
  if (typeof source !== "object" || source === null) return null;
  if (fn(source, "getMemoryStats")) return "hal";
  if (fn(source, "stats") && typeof (source as { kind?: unknown }).kind === "string") return "allocator";
  if (fn(source, "metrics")) return "array";
  if (fn(source, "stats")) return "budget";
  if (fn(source, "pushMany") && "stride" in source && "capacity" in source) return "shared-array";
  return null;
}

const finite = (value: unknown): number => typeof value === "number" && Number.isFinite(value) ? value : 0;

/**
 * Turns the `sources` option into probes. Names come from the record's keys,
 * or `<kind>-<index>` for an array of sources.
 * @throws {TypeError} For a source of no known kind, one given twice, or `sources` that is neither an array
 *   nor an object (or is one bare source).
 */
export function probesOf(sources: unknown, op: string): Probe[] {
  let named: [string, unknown][];
  if (Array.isArray(sources)) {
    named = sources.map((source, index) => [`${kindOf(source) ?? "source"}-${index}`, source]);
  } else if (typeof sources === "object" && sources !== null) {
    // One source given bare would be read as a record of its own properties ("source 'kind' must be ..."):
    // say what to write instead.
    const kind = kindOf(sources);
    if (kind !== null) {
      throw new TypeError(
        `Cannot ${op} as 'sources' must be a record of named sources or an array: current value is one ` +
          `${kind} source (${describe(sources)}); name it, as in { sources: { heap } }, or list it: [heap]`,
      );
    }
    named = Object.entries(sources);
  } else {
    throw new TypeError(
      `Cannot ${op} as 'sources' must be an array or a record of sources: current value is ${describe(sources)}`,
    );
  }
  // The same source under two names would count its bytes twice in every total.
  const seen = new Map<unknown, string>();
  return named.map(([name, source]) => {
    const earlier = seen.get(source);
    if (earlier !== undefined) {
      throw new TypeError(
        `Cannot ${op} as source '${name}' is the same as source '${earlier}': its bytes would be counted twice`,
      );
    }
    seen.set(source, name);
    const kind = kindOf(source);
    if (kind === null) {
      throw new TypeError(
        `Cannot ${op} as source '${name}' must be an allocator, an array (metrics()), a SharedDynamicArray, ` +
          `"global", a MemoryInterface or a MemoryBudget: current value is ${describe(source)}`,
      );
    }
    return { name, kind, source: source as ProfilerSource, read: reader(name, kind, source) };
  });
}

function reader(name: string, kind: SourceKind, source: unknown): () => ProbeReading {
  switch (kind) {
    case "global":
      return () => {
        const bytes = getMemStats().currentBytes;
        return { native: [{ owner: name, bytes }], reserved: [], weight: 0, fragmentation: 0 };
      };
    case "allocator":
      return () => {
        const stats = (source as Allocator).stats();
        return {
          native: [{ owner: name, bytes: finite(stats.allocatedBytes) }],
          reserved: [],
          weight: finite(stats.capacityBytes),
          fragmentation: finite(stats.fragmentation),
        };
      };
    case "array":
      return () => {
        const bytes = finite((source as MetricsSource).metrics().memoryUsage);
        return { native: [{ owner: name, bytes }], reserved: [], weight: 0, fragmentation: 0 };
      };
    case "shared-array":
      return () => {
        const array = source as SharedArraySource;
        return {
          native: [{ owner: name, bytes: finite(array.capacity) * finite(array.stride) }],
          reserved: [],
          weight: 0,
          fragmentation: 0,
        };
      };
    case "hal":
      return () => {
        const hal = source as { getMemoryStats(type?: string): { usedBytes: number; fragmentation: number } };
        const native: ProbeEntry[] = [];
        let used = 0;
        for (const type of HAL_TYPES) {
          const bytes = finite(hal.getMemoryStats(type).usedBytes);
          used += bytes;
          if (bytes > 0) native.push({ owner: `${name}.${type}`, bytes });
        }
        if (native.length === 0) native.push({ owner: name, bytes: 0 });
        return { native, reserved: [], weight: used, fragmentation: finite(hal.getMemoryStats().fragmentation) };
      };
    case "budget":
      return () => {
        const stats = (source as BudgetSource).stats();
        const reserved: ProbeEntry[] = [];
        for (const [category, entry] of Object.entries(stats.categories ?? {})) {
          reserved.push({ owner: `${name}.${category}`, bytes: finite(entry?.usedBytes) });
        }
        return { native: [], reserved, weight: 0, fragmentation: 0 };
      };
  }
}
