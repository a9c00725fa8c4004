// What a profiler can watch. Allocators, arrays, the global allocator, a HAL
// MemoryInterface and budgets are recognised by shape (duck typing), so the
// profiler depends on none of those families' classes; the budget family's
// memory holders (FramePool, PurgeableBuffer, ResourceHeap) and page or file
// mappings are recognised by brand and read through memkit's own state. All
// come in as "probes" that read a few counters. Classification runs once, in
// the constructor, so a bad source fails there and not in a timer callback.
import { describe, isLiveArray, isRevokedProxy } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { FramePool, isFramePool } from "../budget/frame_pool.ts";
import { isPurgeableBuffer, type PurgeableBuffer, purgeableFootprint } from "../budget/purgeable_buffer.ts";
import { isResourceCache } from "../budget/resource_cache.ts";
import { isResourceHeap, type ResourceHeap, resourceHeapFootprint } from "../budget/resource_heap.ts";
import { getMemStats } from "../debug/global_allocator.ts";
import type { Mapping } from "../pages/mapping.ts";
import { PageMapping } from "../pages/_page_mapping.ts";

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
  /** Only used to recognise the shape (with `accepts`). */
  request(size: number, category: string, priority?: number): unknown;
  /** Only used to recognise the shape (with `request`). */
  accepts(category: string): boolean;
}

/**
 * What a {@linkcode MemoryProfiler} can watch, and what a snapshot counts of
 * it as native bytes (`categoryBreakdown[name]`):
 *
 * - any memkit allocator: the bytes of its live blocks (its capacity weighs
 *   its fragmentation);
 * - a DynamicArray / SIMDArray: the storage it holds (`metrics().memoryUsage`);
 *   a SharedDynamicArray: `capacity × stride`;
 * - `"global"`: the global allocator's current bytes;
 * - a MemoryInterface: the bytes in use per memory type (`<name>.<type>`);
 * - a FramePool: the bytes its frames map, idle or in use, per format
 *   (`<name>.<width>x<height>x<bytesPerPixel>x<planes>`);
 * - a PurgeableBuffer: its pages (whole pages, volatile or not);
 * - a ResourceHeap: the bytes of its live resources' blocks (its capacity
 *   weighs its fragmentation);
 * - a mapping from `mapPages` or `mapFile`: its `byteLength` (0 once unmapped);
 * - a MemoryBudget: its reservations per category, in `budgetBreakdown`
 *   (`<name>.<category>`), not counted as native bytes.
 *
 * Each native byte is counted once. When a source lives inside another
 * watched source (an array whose allocator is a watched arena, a
 * DebugAllocator over a watched pool, an allocator whose backing chain
 * reaches a watched allocator, an array in a RegionAllocator region or in
 * the global allocator), the inner source keeps its bytes and the outer one
 * shows only the rest; the snapshot's `nestedIn` says which is inside which,
 * and `totalAllocated` is what the outermost watched level holds. Where that
 * memory lies is looked at again whenever it may have moved (an array whose
 * storage grew or shrank into another watched allocator, an allocator whose
 * chunks went back and came again from elsewhere); an allocator whose chunks
 * lie in several watched sources (its backing routes them, by size say) has
 * its bytes taken out of each, in proportion to the bytes asked for in each
 * chunk, and is `nestedIn` the one holding most. Storage that two watched
 * arrays hold (an array and its `snapshot()`, until either writes) is
 * counted once, for the one listed first in `sources`; the snapshot's
 * `sharedWith` names the others, which read 0.
 *
 * A disposed FramePool, PurgeableBuffer, ResourceHeap or MemoryInterface
 * reads as 0 bytes and is listed in the snapshot's `released`. Other objects
 * with a `stats()` method (a ResourceCache, whose entries are the program's
 * own values: watch the MemoryBudget it draws from) are refused with a
 * TypeError rather than misread, as is a Proxy of any of the classes above.
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
  | FramePool
  | PurgeableBuffer
  | ResourceHeap
  | Mapping
  | "global";

/** The kind a source was recognised as. */
export type SourceKind =
  | "allocator"
  | "array"
  | "shared-array"
  | "global"
  | "hal"
  | "budget"
  | "frame-pool"
  | "purgeable"
  | "resource-heap"
  | "mapping";

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

// memkit's own readers, taken before any program code runs: a `stats` or `byteLength` replaced on an
// instance or a prototype later changes nothing the profiler reads.
const framePoolStats = FramePool.prototype.stats;
const mappingLength = Object.getOwnPropertyDescriptor(PageMapping.prototype, "byteLength")!.get!;

/** The bytes a mapping holds, or undefined for anything but a mapping memkit made (its getter checks its brand). */
function mappingBytes(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  try {
    return mappingLength.call(value) as number;
  } catch {
    return undefined; // a private field it does not have: not a PageMapping (a Proxy of one neither)
  }
}

/** The kind of `source`, or null when it is none that the profiler knows. */
export function kindOf(source: unknown): SourceKind | null {
  if (source === "global") return "global";
  if (typeof source !== "object" || source === null) return null;
  // The budget family's memory holders and mappings by brand, before the shapes: they have stats() (or
  // nothing to read a shape from), and a Proxy of one must not pass for a source.
  if (isFramePool(source)) return "frame-pool";
  if (isPurgeableBuffer(source)) return "purgeable";
  if (isResourceHeap(source)) return "resource-heap";
  if (mappingBytes(source) !== undefined) return "mapping";
  if (fn(source, "getMemoryStats")) return "hal";
  if (fn(source, "stats") && typeof (source as { kind?: unknown }).kind === "string") return "allocator";
  if (fn(source, "metrics")) return "array";
  // A budget by its own methods, not by stats() alone: a ResourceCache, a FramePool or a ResourceHeap has
  // stats() too, of another shape, and read as a budget it showed as a source holding nothing.
  if (fn(source, "stats") && fn(source, "request") && fn(source, "accepts")) return "budget";
  if (fn(source, "pushMany") && "stride" in source && "capacity" in source) return "shared-array";
  return null;
}

// What a source says is its own code's answer (an object only shaped like an allocator may say anything):
// sizes are read as numbers from 0 to 2^53 - 1 (NaN, negatives and non-numbers as 0, Infinity as 2^53 - 1) and
// fragmentation as 0 to 1, so a snapshot's totals and its weighted mean stay finite whatever a source says.
const finite = (value: unknown): number =>
  typeof value === "number" && value > 0 ? Math.min(value, Number.MAX_SAFE_INTEGER) : 0;
const fraction = (value: unknown): number => typeof value === "number" && value > 0 ? Math.min(value, 1) : 0;

// Calls a source's reading method as it is now (it may have been replaced since the source was
// recognised), with memkit's TypeError, naming the source, for a method that is gone or an answer
// that is not an object, instead of the engine's "x is not a function" or "null is not an object".
function ask(source: unknown, method: string, name: string, ...args: string[]): Record<string, unknown> {
  const read = (source as Record<string, unknown>)[method];
  if (typeof read !== "function") {
    throw new TypeError(
      `Cannot take a snapshot as source '${name}' has no ${method}() any more: current value is ${describe(read)}`,
    );
  }
  const answer = read.apply(source, args);
  if (typeof answer !== "object" || answer === null) {
    throw new TypeError(
      `Cannot take a snapshot as source '${name}' ${method}() must return an object: current value is ${
        describe(answer)
      }`,
    );
  }
  return answer;
}

/**
 * Turns the `sources` option into probes. Names come from the record's keys,
 * or `<kind>-<index>` for an array of sources.
 * @throws {TypeError} For a source of no known kind, one given twice, or `sources` that is neither an array
 *   nor an object (or is one bare source).
 */
export function probesOf(sources: unknown, op: string): Probe[] {
  let named: [string, unknown][];
  if (isRevokedProxy(sources)) {
    throw new TypeError(`Cannot ${op} as 'sources' is a revoked Proxy: nothing can be read from it (its revoke() ran)`);
  }
  if (isLiveArray(sources)) {
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
          `a FramePool, a PurgeableBuffer, a ResourceHeap, a mapping (mapPages, mapFile), "global", a ` +
          `MemoryInterface or a MemoryBudget: current value is ${describe(source)}${refusalHint(source)}`,
      );
    }
    return { name, kind, source: source as ProfilerSource, read: reader(name, kind, source) };
  });
}

// The classes a source may be whose look-alikes (a Proxy, an object from the prototype) are refused.
const SOURCE_CLASSES = new Set(["FramePool", "PurgeableBuffer", "ResourceHeap", "MemoryInterface", "MemoryBudget"]);

// What to watch instead of an object with stats() that is no source, naming the class actually passed.
function refusalHint(source: unknown): string {
  if (typeof source !== "object" || source === null || !fn(source, "stats")) return "";
  if (isResourceCache(source)) {
    return " (a ResourceCache is none of these: watch the MemoryBudget it draws from (its `budget` option), " +
      "or read its stats() yourself)";
  }
  // The class as Object.prototype.toString names it ("[object Gauge]"), when it names one: memkit's budget holders
  // have a Symbol.toStringTag, which a Proxy of one passes on (the check above already read through its traps).
  const tag = /^\[object (.+)\]$/.exec(toStringTag(source))?.[1];
  if (tag !== undefined && SOURCE_CLASSES.has(tag)) {
    // It looks like one (a Proxy of one, or an object made from its prototype) but is not memkit's own.
    return ` (it looks like a ${tag} but is not one memkit made: a Proxy of one or an object made from its ` +
      `prototype; pass the ${tag} itself)`;
  }
  const what = tag === undefined || tag === "Object" ? "it" : `a ${tag}`;
  return ` (${what} has stats() but is none of these: read its stats() yourself)`;
}

function toStringTag(value: object): string {
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return "[object]"; // a Proxy's trap or a Symbol.toStringTag getter threw
  }
}

// A disposed budget holder reads as released (the snapshot lists it), as a disposed MemoryInterface does.
function gone(name: string): AllocationError {
  return new AllocationError("use-after-free", `Cannot take a snapshot of source '${name}': it was disposed`);
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
        const stats = ask(source, "stats", name);
        return {
          native: [{ owner: name, bytes: finite(stats.allocatedBytes) }],
          reserved: [],
          weight: finite(stats.capacityBytes),
          fragmentation: fraction(stats.fragmentation),
        };
      };
    case "array":
      return () => {
        const bytes = finite(ask(source, "metrics", name).memoryUsage);
        return { native: [{ owner: name, bytes }], reserved: [], weight: 0, fragmentation: 0 };
      };
    case "shared-array":
      return () => {
        const array = source as SharedArraySource;
        return {
          native: [{ owner: name, bytes: finite(finite(array.capacity) * finite(array.stride)) }],
          reserved: [],
          weight: 0,
          fragmentation: 0,
        };
      };
    case "hal":
      return () => {
        const native: ProbeEntry[] = [];
        let used = 0;
        for (const type of HAL_TYPES) {
          const bytes = finite(ask(source, "getMemoryStats", name, type).usedBytes);
          used += bytes;
          if (bytes > 0) native.push({ owner: `${name}.${type}`, bytes });
        }
        if (native.length === 0) native.push({ owner: name, bytes: 0 });
        return {
          native,
          reserved: [],
          weight: finite(used),
          fragmentation: fraction(ask(source, "getMemoryStats", name).fragmentation),
        };
      };
    case "frame-pool":
      return () => {
        // Per format: a pipeline's frames of each size show apart. Throws "use-after-free" once disposed.
        const stats = framePoolStats.call(source as FramePool);
        const native: ProbeEntry[] = stats.formats.map((f) => ({
          owner: `${name}.${f.format.width}x${f.format.height}x${f.format.bytesPerPixel}x${f.format.planes}`,
          bytes: f.frames * f.frameBytes,
        }));
        if (native.length === 0) native.push({ owner: name, bytes: 0 });
        return { native, reserved: [], weight: 0, fragmentation: 0 };
      };
    case "purgeable":
      return () => {
        const held = purgeableFootprint(source)!;
        if (held.disposed) throw gone(name);
        return { native: [{ owner: name, bytes: held.bytes }], reserved: [], weight: 0, fragmentation: 0 };
      };
    case "resource-heap":
      return () => {
        const held = resourceHeapFootprint(source)!; // throws "use-after-free" once disposed
        return {
          native: [{ owner: name, bytes: held.usedBytes }],
          reserved: [],
          weight: held.capacityBytes,
          fragmentation: fraction(held.fragmentation),
        };
      };
    case "mapping":
      return () => ({
        native: [{ owner: name, bytes: mappingBytes(source)! }],
        reserved: [],
        weight: 0,
        fragmentation: 0,
      });
    case "budget":
      return () => {
        const stats = ask(source, "stats", name) as { categories?: Record<string, { usedBytes?: unknown } | null> };
        const reserved: ProbeEntry[] = [];
        for (const [category, entry] of Object.entries(stats.categories ?? {})) {
          reserved.push({ owner: `${name}.${category}`, bytes: finite(entry?.usedBytes) });
        }
        return { native: [], reserved, weight: 0, fragmentation: 0 };
      };
  }
}
