/**
 * A memory-limited cache whose entries carry a size and a recreation cost,
 * evicted by a multi-factor score (age, size, recreation cost, frequency).
 *
 * @module
 */
import { checkSize, describe, MAX_BLOCK_SIZE, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { PressureLevel } from "../pressure/pressure_level.ts";
import { PressureMonitor } from "../pressure/pressure_monitor.ts";
import type { BudgetToken } from "./budget_token.ts";
import { type EvictionWeights, pickVictim } from "./_eviction_score.ts";
import { BudgetPriority, MemoryBudget } from "./memory_budget.ts";

/**
 * Why a value left a {@linkcode ResourceCache} (the `dispose` hook's third
 * argument): evicted to make room (`"evict"`), deleted, replaced by a `set` of
 * its key, dropped by `trim` or `purge`, or a prefetched value the cache
 * could not take (`"rejected"`).
 *
 * @example
 * ```ts
 * import type { DisposeReason } from "@memkit/memkit";
 *
 * const reason: DisposeReason = "evict";
 * ```
 */
export type DisposeReason = "evict" | "delete" | "replace" | "trim" | "purge" | "rejected";

/**
 * Options of {@linkcode ResourceCache}.
 *
 * @example
 * ```ts
 * import { ResourceCache, type ResourceCacheOptions } from "@memkit/memkit";
 *
 * const options: ResourceCacheOptions<string, Uint8Array> = {
 *   maxBytes: 64 * 2 ** 20,
 *   weights: { age: 0.3, size: 0.3, cost: 0.2, frequency: 0.2 },
 * };
 * const cache = new ResourceCache(options);
 * ```
 */
export interface ResourceCacheOptions<K, V> {
  /** The most bytes (sum of entry sizes) the cache holds. */
  maxBytes: number;
  /**
   * Weights of the eviction score (non-negative, positive sum; only ratios matter).
   * @default {{ age: 0.3, size: 0.3, cost: 0.2, frequency: 0.2 }}
   */
  weights?: Partial<EvictionWeights>;
  /**
   * How the size factor is scaled: `"limit"` divides by `maxBytes` (the default), `"largest"` by the largest
   * entry among the candidates (size then weighs as much as age). @default {"limit"}
   */
  sizeScale?: "limit" | "largest";
  /** Called with each value that leaves the cache (free native memory here). Errors are rethrown in a microtask. */
  dispose?: (value: V, key: K, reason: DisposeReason) => void;
  /** Count entries against this budget (one token per entry) and give way to its higher-priority requests. */
  budget?: MemoryBudget;
  /** The budget category of the entries. @default {"cache"} */
  category?: string;
  /** The priority of the entries' budget requests and of the cache's reclaimer. @default {BudgetPriority.Low} */
  priority?: number;
  /** Trim 30 % when this monitor rises to Medium or above (iOS's "warning"), purge at Critical. */
  pressure?: PressureMonitor;
  /** `prefetch` loads predictions whose probability is above this. @default {0.7} */
  prefetchThreshold?: number;
  /** Loads `prefetch` runs at once (across calls). @default {2} */
  prefetchConcurrency?: number;
  /** Entries scored per eviction (all of them when the cache holds fewer). @default {64} */
  evictionSamples?: number;
}

/**
 * A prediction for {@linkcode ResourceCache.prefetch}.
 *
 * @example
 * ```ts
 * import type { Prediction } from "@memkit/memkit";
 *
 * const next: Prediction<string> = { key: "frame-0042", probability: 0.9 };
 * ```
 */
export interface Prediction<K> {
  /** The key that may be needed. */
  key: K;
  /** How likely, 0..1. */
  probability: number;
}

/**
 * What a `generate` function of {@linkcode ResourceCache.prefetch} returns.
 *
 * @example
 * ```ts
 * import type { Generated } from "@memkit/memkit";
 *
 * const made: Generated<Uint8Array> = { value: new Uint8Array(1024), size: 1024, cost: 5 };
 * ```
 */
export interface Generated<V> {
  /** The value to cache. */
  value: V;
  /** Its size in bytes. */
  size: number;
  /** The work to recreate it. @default {1} */
  cost?: number;
}

/**
 * What {@linkcode ResourceCache.prefetch} resolves to.
 *
 * @example
 * ```ts
 * import type { PrefetchReport } from "@memkit/memkit";
 *
 * const report: PrefetchReport<string> = { loaded: ["a"], skipped: 0, failed: [] };
 * ```
 */
export interface PrefetchReport<K> {
  /** Keys generated and stored, in the order they finished. */
  loaded: K[];
  /** Predictions not loaded: at or below the threshold, already cached or loading, set meanwhile, or not taken. */
  skipped: number;
  /** Keys whose `generate` threw or returned something that is not a {@linkcode Generated}. */
  failed: { key: K; error: unknown }[];
}

/**
 * What {@linkcode ResourceCache.stats} returns.
 *
 * @example
 * ```ts
 * import { ResourceCache, type ResourceCacheStats } from "@memkit/memkit";
 *
 * const stats: ResourceCacheStats = new ResourceCache({ maxBytes: 1024 }).stats();
 * console.log(stats.hitRatio);
 * ```
 */
export interface ResourceCacheStats {
  /** Entries held. */
  entries: number;
  /** Bytes held. */
  bytes: number;
  /** The byte limit. */
  maxBytes: number;
  /** `get` calls that found their key. */
  hits: number;
  /** `get` calls that did not. */
  misses: number;
  /** hits / (hits + misses), 0 before any `get`. */
  hitRatio: number;
  /** Bytes of the entries found by `get`. */
  hitBytes: number;
  /** Sum of the recreation cost of the entries found by `get`: work the cache saved. */
  costSaved: number;
  /** Entries evicted to make room, by `trim` or for the budget. */
  evictions: number;
  /** Their bytes. */
  evictedBytes: number;
  /** Sets that stored nothing (too large, or the budget refused). */
  rejected: number;
}

interface Entry<K, V> {
  key: K;
  value: V;
  size: number;
  cost: number;
  last: number;
  count: number;
  index: number;
  token: BudgetToken | null;
}

const nonNegative = z.number().min(0, "must be at least 0").max(Number.MAX_VALUE, "must be finite");
const OptionsSchema = z.object({
  maxBytes: z.number().int("must be an integer").min(1, "must be at least 1").max(
    MAX_BLOCK_SIZE,
    `must be at most ${MAX_BLOCK_SIZE}`,
  ),
  weights: z.object({
    age: nonNegative.optional(),
    size: nonNegative.optional(),
    cost: nonNegative.optional(),
    frequency: nonNegative.optional(),
  }).strict().optional(),
  sizeScale: z.enum(["limit", "largest"]).optional(),
  dispose: typeCheck<(value: unknown, key: unknown, reason: DisposeReason) => void>(
    (v) => typeof v === "function",
    "must be a function",
  ).optional(),
  budget: typeCheck<MemoryBudget>((v) => v instanceof MemoryBudget, "must be a MemoryBudget").optional(),
  category: z.string().min(1, "must not be empty").optional(),
  priority: z.number().int("must be an integer").min(0, "must be at least 0").max(100, "must be at most 100")
    .optional(),
  pressure: typeCheck<PressureMonitor>((v) => v instanceof PressureMonitor, "must be a PressureMonitor").optional(),
  prefetchThreshold: z.number().min(0, "must be at least 0").max(1, "must be at most 1").optional(),
  prefetchConcurrency: z.number().int("must be an integer").min(1, "must be at least 1").max(
    1024,
    "must be at most 1024",
  ).optional(),
  evictionSamples: z.number().int("must be an integer").min(1, "must be at least 1").max(
    4096,
    "must be at most 4096",
  ).optional(),
}).strict();

function checkCost(value: unknown, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as 'cost' must be a number: current value is ${describe(value)}`);
  }
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`Cannot ${op} as 'cost' must be a finite number from 0: current value is ${describe(value)}`);
  }
  return value;
}

// %TypedArray%.prototype[Symbol.iterator], shared by every typed array.
const TYPED_ARRAY_VALUES = Object.getPrototypeOf(Uint8Array.prototype)[Symbol.iterator];

/**
 * A cache limited by the bytes its entries take, not their number. Each
 * entry carries its size and its recreation cost; when room is needed, the
 * cache scores a sample of entries (all of them up to `evictionSamples`) by
 * a score — age 0.3, size 0.3, cost 0.2, 1/frequency 0.2 — and
 * evicts the highest: old, large, cheap to recreate and rarely used entries
 * go first. The `dispose` hook sees every value that leaves, so native values
 * are freed when evicted. It runs once per value, after the call that removed
 * it has finished its books, so a hook may use the cache again (delete, set,
 * purge, or ask the budget for room the cache then gives up) and always finds
 * bytes, entries and budget tokens in agreement.
 *
 * With a {@linkcode MemoryBudget}, each entry holds a budget token and the
 * cache registers a reclaimer: a higher-priority request that does not fit
 * makes the cache evict. With a {@linkcode PressureMonitor}, a rise to Medium
 * or above trims 30 %, Critical purges everything.
 *
 * @example Decoded thumbnails, dear ones kept
 * ```ts
 * import { ResourceCache } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const freed: string[] = [];
 * const cache = new ResourceCache<string, Uint8Array>({
 *   maxBytes: 3000,
 *   dispose: (_value, key) => freed.push(key),
 * });
 * cache.set("cheap", new Uint8Array(1000), { size: 1000, cost: 1 });
 * cache.set("dear", new Uint8Array(1000), { size: 1000, cost: 50 });
 * cache.set("other", new Uint8Array(1000), { size: 1000, cost: 10 });
 * cache.get("cheap");
 * cache.set("new", new Uint8Array(1000), { size: 1000, cost: 10 }); // one must go
 * assert.deepEqual(freed, ["other"]); // "cheap" was just used, "dear" is dear
 * assert.equal(cache.get("dear")?.length, 1000);
 * ```
 */
export class ResourceCache<K, V> implements Disposable {
  readonly #map = new Map<K, Entry<K, V>>();
  readonly #entries: Entry<K, V>[] = [];
  readonly #maxBytes: number;
  readonly #weights: EvictionWeights;
  readonly #scaleByLargest: boolean;
  readonly #dispose: ((value: V, key: K, reason: DisposeReason) => void) | null;
  readonly #budget: MemoryBudget | null;
  readonly #category: string;
  readonly #priority: number;
  readonly #threshold: number;
  readonly #concurrency: number;
  readonly #samples: number;
  readonly #inFlight = new Set<K>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  // Dispose hooks of entries that left, run once the operation that removed them is done: user code then
  // sees the cache's books complete, whatever it calls (delete, set, purge, a budget request that makes this
  // cache evict); what it removes is queued behind and run by the same loop, so no entry's hook runs twice.
  readonly #pending: [V, K, DisposeReason][] = [];
  #depth = 0;
  #flushing = false;
  #unregister: (() => void) | null = null;
  #monitor: PressureMonitor | null = null;
  #listeners: number[] = [];
  #disposed = false;
  #clock = 0;
  #random = 0x9e3779b9;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #hitBytes = 0;
  #costSaved = 0;
  #evictions = 0;
  #evictedBytes = 0;
  #rejected = 0;

  /**
   * Creates an empty cache.
   *
   * @param options `maxBytes` (required), weights, dispose hook, budget, pressure monitor, prefetch settings.
   * @throws {TypeError} For mistyped or unknown options.
   * @throws {RangeError} For out-of-range numbers, or weights whose sum is not positive.
   */
  constructor(options: ResourceCacheOptions<K, V>) {
    const op = "create ResourceCache";
    if (options === undefined) throw new TypeError(`Cannot ${op} as 'options' with 'maxBytes' is required`);
    const parsed = parseOptions(OptionsSchema, options, op);
    const w = parsed.weights ?? {};
    this.#weights = { age: w.age ?? 0.3, size: w.size ?? 0.3, cost: w.cost ?? 0.2, frequency: w.frequency ?? 0.2 };
    const sum = this.#weights.age + this.#weights.size + this.#weights.cost + this.#weights.frequency;
    if (!(sum > 0) || !Number.isFinite(sum)) {
      throw new RangeError(
        `Cannot ${op} as 'weights' must have a positive, finite sum: current value is ${JSON.stringify(this.#weights)}`,
      );
    }
    this.#maxBytes = parsed.maxBytes;
    this.#scaleByLargest = parsed.sizeScale === "largest";
    this.#dispose = (parsed.dispose as ((value: V, key: K, reason: DisposeReason) => void) | undefined) ?? null;
    this.#budget = parsed.budget ?? null;
    this.#category = parsed.category ?? "cache";
    this.#priority = parsed.priority ?? BudgetPriority.Low;
    this.#threshold = parsed.prefetchThreshold ?? 0.7;
    this.#concurrency = parsed.prefetchConcurrency ?? 2;
    this.#samples = parsed.evictionSamples ?? 64;
    if (this.#budget) {
      // A declared-category budget refuses an unknown name now, not at the first set.
      if (!this.#budget.accepts(this.#category)) {
        throw new TypeError(
          `Cannot ${op} as 'category' must be one the budget accepts: current value is ${describe(this.#category)}`,
        );
      }
      this.#unregister = this.#budget.addReclaimer((wanted) => this.#run(() => this.#evictBytes(wanted, "evict")), {
        priority: this.#priority,
      });
    }
    if (parsed.pressure) {
      this.#monitor = parsed.pressure;
      this.#listeners = [
        parsed.pressure.on(PressureLevel.Medium, () => this.trim(0.3)),
        parsed.pressure.on(PressureLevel.Critical, () => this.purge()),
      ];
    }
  }

  /** Entries held. */
  get size(): number {
    return this.#map.size;
  }

  /** Bytes held (sum of entry sizes). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The byte limit. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /**
   * The value of `key`, counting a hit (its age restarts, its frequency
   * grows) or a miss.
   *
   * @param key The key.
   * @returns The value, or undefined.
   * @throws {AllocationError} "use-after-free" after dispose.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   *
   * const cache = new ResourceCache<string, string>({ maxBytes: 100 });
   * cache.set("a", "alpha", { size: 5 });
   * console.log(cache.get("a"), cache.get("b")); // "alpha" undefined
   * ```
   */
  get(key: K): V | undefined {
    this.#alive("get");
    const entry = this.#map.get(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#hitBytes += entry.size;
    this.#costSaved += entry.cost;
    entry.count++;
    entry.last = ++this.#clock;
    return entry.value;
  }

  /**
   * Whether `key` is cached (counts nothing).
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   *
   * const cache = new ResourceCache<string, number>({ maxBytes: 100 });
   * console.log(cache.has("a")); // false
   * ```
   */
  has(key: K): boolean {
    this.#alive("has");
    return this.#map.has(key);
  }

  /**
   * Stores `value` under `key`, evicting by score until it fits (and, with a
   * budget, until the budget grants its size). A previous value of the key
   * leaves first (`dispose` reason `"replace"`). When the entry cannot be
   * stored (larger than `maxBytes`, or the budget refuses with the cache
   * empty) the call returns false and the value stays the caller's: `dispose`
   * is not called for it.
   *
   * @param key The key.
   * @param value The value.
   * @param entry `size` in bytes (an integer from 0) and `cost`, the work to recreate it (a number from 0; default 1).
   * @returns Whether it was stored.
   * @throws {TypeError} For a missing entry object, a size or cost that is not a number.
   * @throws {RangeError} For a negative, fractional or NaN size, or a negative or NaN cost.
   * @throws {AllocationError} "use-after-free" after dispose, also when the cache was disposed during the call
   *   (by a getter of `entry`, or by a reclaimer the budget asked): the value then stays the caller's.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const cache = new ResourceCache<string, Uint8Array>({ maxBytes: 1024 });
   * assert.equal(cache.set("tile", new Uint8Array(512), { size: 512, cost: 3 }), true);
   * assert.equal(cache.set("huge", new Uint8Array(2048), { size: 2048 }), false);
   * ```
   */
  set(key: K, value: V, entry: { size: number; cost?: number }): boolean {
    const op = "set a cache entry";
    this.#alive("set");
    if (typeof entry !== "object" || entry === null) {
      throw new TypeError(`Cannot ${op} as 'entry' must be { size, cost? }: current value is ${describe(entry)}`);
    }
    // Each field read once, before any change (a getter may do anything, dispose this cache too).
    const size = checkSize(entry.size, op, "size");
    const rawCost = entry.cost;
    const cost = rawCost === undefined ? 1 : checkCost(rawCost, op);
    this.#alive("set");
    this.#depth++; // #run without a closure on the hot path
    try {
      return this.#store(key, value, size, cost);
    } finally {
      this.#leave();
    }
  }

  /**
   * Removes `key` (the `dispose` hook runs with `"delete"`).
   *
   * @returns Whether it was there.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   *
   * const cache = new ResourceCache<string, number>({ maxBytes: 100 });
   * cache.set("a", 1, { size: 8 });
   * console.log(cache.delete("a"), cache.delete("a")); // true false
   * ```
   */
  delete(key: K): boolean {
    this.#alive("delete");
    const entry = this.#map.get(key);
    if (entry === undefined) return false;
    this.#depth++;
    try {
      this.#remove(entry, "delete");
    } finally {
      this.#leave();
    }
    return true;
  }

  /**
   * Evicts by score until the cache holds at most `(1 − fraction)` of the
   * bytes it holds now.
   *
   * @param fraction 0..1 (0.3 is what the warning response trims).
   * @returns Bytes freed.
   * @throws {TypeError} For a fraction that is not a number.
   * @throws {RangeError} For a fraction outside 0..1 or NaN.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const cache = new ResourceCache<number, number>({ maxBytes: 1000 });
   * for (let i = 0; i < 10; i++) cache.set(i, i, { size: 100 });
   * assert.equal(cache.trim(0.3), 300);
   * assert.equal(cache.size, 7);
   * ```
   */
  trim(fraction: number): number {
    const op = "trim the cache";
    this.#alive("trim");
    if (typeof fraction !== "number") {
      throw new TypeError(`Cannot ${op} as 'fraction' must be a number: current value is ${describe(fraction)}`);
    }
    if (!(fraction >= 0 && fraction <= 1)) {
      throw new RangeError(`Cannot ${op} as 'fraction' must be from 0 to 1: current value is ${describe(fraction)}`);
    }
    return this.#run(() => this.#evictBytes(Math.round(this.#bytes * fraction), "trim"));
  }

  /**
   * Removes every entry (the `dispose` hook runs with `"purge"`).
   *
   * @returns Bytes freed.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   *
   * const cache = new ResourceCache<string, number>({ maxBytes: 100 });
   * cache.set("a", 1, { size: 8 });
   * console.log(cache.purge(), cache.size); // 8 0
   * ```
   */
  purge(): number {
    this.#alive("purge");
    return this.#run(() => this.#removeAll());
  }

  /**
   * Loads, ahead of need, the predictions whose probability is above the
   * threshold (0.7 by default), most likely first, skipping keys cached or
   * already loading; at most `prefetchConcurrency` loads run at once across
   * all calls. A value the cache cannot take, or whose key was set
   * meanwhile, goes to `dispose` with `"rejected"`. The predictions are
   * checked before anything starts.
   *
   * @param predictions Keys with their probability (0..1).
   * @param generate Makes the value of a key: `{ value, size, cost? }`, or a promise of it.
   * @returns A promise of what was loaded, skipped and failed.
   * @throws {TypeError} For predictions that are not iterable objects with a numeric probability, or a
   *   `generate` that is not a function.
   * @throws {RangeError} For a probability outside 0..1 or NaN.
   * @throws {AllocationError} "use-after-free" after dispose.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const cache = new ResourceCache<string, Uint8Array>({ maxBytes: 1 << 20 });
   * const report = await cache.prefetch(
   *   [{ key: "next", probability: 0.9 }, { key: "unlikely", probability: 0.2 }],
   *   async (key) => ({ value: new Uint8Array(1024), size: 1024, cost: 4 }),
   * );
   * assert.deepEqual(report.loaded, ["next"]);
   * assert.ok(cache.has("next") && !cache.has("unlikely"));
   * ```
   */
  prefetch(
    predictions: Iterable<Prediction<K>>,
    generate: (key: K) => Generated<V> | Promise<Generated<V>>,
  ): Promise<PrefetchReport<K>> {
    const op = "prefetch";
    this.#alive(op);
    const iterator = predictions === null ? undefined : (predictions as Iterable<unknown>)?.[Symbol.iterator];
    if (typeof iterator !== "function") {
      throw new TypeError(`Cannot ${op} as 'predictions' must be iterable: current value is ${describe(predictions)}`);
    }
    // A typed array (or a Proxy of one) holds numbers, never predictions; iterating a detached one, or
    // a Proxy, would be the engine's TypeError.
    if (iterator === TYPED_ARRAY_VALUES) {
      throw new TypeError(
        `Cannot ${op} as 'predictions' must be an iterable of { key, probability }: current value is ` +
          describe(predictions),
      );
    }
    if (typeof generate !== "function") {
      throw new TypeError(`Cannot ${op} as 'generate' must be a function: current value is ${describe(generate)}`);
    }
    // Read every prediction once, before anything starts (user getters run here, not later).
    const list: Prediction<K>[] = [];
    for (const prediction of predictions) {
      if (typeof prediction !== "object" || prediction === null) {
        throw new TypeError(
          `Cannot ${op} as each prediction must be { key, probability }: current value is ${describe(prediction)}`,
        );
      }
      const { key, probability } = prediction;
      if (typeof probability !== "number") {
        throw new TypeError(
          `Cannot ${op} as 'probability' must be a number: current value is ${describe(probability)}`,
        );
      }
      if (!(probability >= 0 && probability <= 1)) {
        throw new RangeError(
          `Cannot ${op} as 'probability' must be from 0 to 1: current value is ${describe(probability)}`,
        );
      }
      list.push({ key, probability });
    }
    const report: PrefetchReport<K> = { loaded: [], skipped: 0, failed: [] };
    const chosen: K[] = [];
    for (const { key, probability } of list.sort((a, b) => b.probability - a.probability)) {
      if (probability > this.#threshold && !this.#map.has(key) && !this.#inFlight.has(key)) {
        this.#inFlight.add(key);
        chosen.push(key);
      } else report.skipped++;
    }
    return Promise.all(chosen.map((key) => this.#load(key, generate, report))).then(() => report);
  }

  /**
   * The cache's counts.
   *
   * @returns A fresh object.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   *
   * const cache = new ResourceCache<string, number>({ maxBytes: 100 });
   * cache.get("missing");
   * console.log(cache.stats().misses); // 1
   * ```
   */
  stats(): ResourceCacheStats {
    const lookups = this.#hits + this.#misses;
    return {
      entries: this.#map.size,
      bytes: this.#bytes,
      maxBytes: this.#maxBytes,
      hits: this.#hits,
      misses: this.#misses,
      hitRatio: lookups === 0 ? 0 : this.#hits / lookups,
      hitBytes: this.#hitBytes,
      costSaved: this.#costSaved,
      evictions: this.#evictions,
      evictedBytes: this.#evictedBytes,
      rejected: this.#rejected,
    };
  }

  /**
   * Purges the cache, leaves its budget and monitor; later calls throw
   * `AllocationError("use-after-free")`. A second call does nothing.
   *
   * @example
   * ```ts
   * import { ResourceCache } from "@memkit/memkit";
   *
   * using cache = new ResourceCache<string, number>({ maxBytes: 100 });
   * cache.set("a", 1, { size: 8 });
   * ```
   */
  dispose(): void {
    if (this.#disposed) return;
    // Disposed first: a dispose hook (or a reclaimer) running below cannot store into a cache that is gone.
    this.#disposed = true;
    this.#run(() => {
      this.#removeAll();
      this.#unregister?.();
      for (const id of this.#listeners) this.#monitor?.off(id);
      this.#listeners = [];
    });
  }

  /** Same as {@linkcode ResourceCache.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #alive(op: string): void {
    if (this.#disposed) {
      throw new AllocationError("use-after-free", `Cannot ${op} as this ResourceCache was disposed`);
    }
  }

  // Runs `body` as one operation: dispose hooks of what it removed run after it, not inside it.
  #run<T>(body: () => T): T {
    this.#depth++;
    try {
      return body();
    } finally {
      this.#leave();
    }
  }

  #leave(): void {
    this.#depth--;
    if (this.#depth === 0 && !this.#flushing && this.#pending.length !== 0) this.#flush();
  }

  #flush(): void {
    this.#flushing = true;
    try {
      for (let next = this.#pending.shift(); next !== undefined; next = this.#pending.shift()) {
        this.#callDispose(next[0], next[1], next[2]);
      }
    } finally {
      this.#flushing = false;
    }
  }

  #removeAll(): number {
    const freed = this.#bytes;
    for (const entry of [...this.#entries]) this.#remove(entry, "purge");
    return freed;
  }

  #store(key: K, value: V, size: number, cost: number): boolean {
    const old = this.#map.get(key);
    if (old !== undefined) this.#remove(old, "replace");
    // Larger than the cache, or than the whole budget: evicting could not make room.
    if (size > this.#maxBytes || (this.#budget !== null && size > this.#budget.totalBytes)) {
      this.#rejected++;
      return false;
    }
    if (this.#bytes + size > this.#maxBytes) this.#evictBytes(this.#bytes + size - this.#maxBytes, "evict");
    let token: BudgetToken | null = null;
    if (this.#budget !== null) {
      token = this.#budget.request(size, this.#category, this.#priority);
      while (token === null && this.#entries.length > 0) {
        this.#evictOne("evict");
        token = this.#budget.request(size, this.#category, this.#priority);
      }
      if (token === null) {
        this.#rejected++;
        return false;
      }
      // The request may have run other reclaimers, and their hooks this cache's methods: look again.
      if (this.#disposed) {
        token.release();
        throw new AllocationError("use-after-free", "Cannot set as this ResourceCache was disposed while it set");
      }
      const meanwhile = this.#map.get(key);
      if (meanwhile !== undefined) this.#remove(meanwhile, "replace");
      if (this.#bytes + size > this.#maxBytes) this.#evictBytes(this.#bytes + size - this.#maxBytes, "evict");
    }
    const entry: Entry<K, V> = {
      key,
      value,
      size,
      cost,
      last: ++this.#clock,
      count: 1,
      index: this.#entries.length,
      token,
    };
    this.#entries.push(entry);
    this.#map.set(key, entry);
    this.#bytes += size;
    return true;
  }

  // Evicts by score until `wanted` bytes went (or nothing is left); returns the bytes freed.
  #evictBytes(wanted: number, reason: DisposeReason): number {
    let freed = 0;
    while (freed < wanted && this.#entries.length > 0) freed += this.#evictOne(reason);
    return freed;
  }

  #evictOne(reason: DisposeReason): number {
    const entries = this.#entries;
    let candidates: Entry<K, V>[];
    if (entries.length <= this.#samples) candidates = entries;
    else {
      // A sample drawn with a fixed-seed xorshift: the same calls evict the same entries.
      candidates = new Array(this.#samples);
      for (let i = 0; i < this.#samples; i++) {
        let x = this.#random;
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        this.#random = x >>> 0;
        candidates[i] = entries[this.#random % entries.length];
      }
    }
    let scale = this.#maxBytes;
    if (this.#scaleByLargest) {
      scale = 1;
      for (const entry of candidates) if (entry.size > scale) scale = entry.size;
    }
    const victim = candidates[pickVictim(candidates, this.#clock, scale, this.#weights)];
    this.#evictions++;
    this.#evictedBytes += victim.size;
    this.#remove(victim, reason);
    return victim.size;
  }

  #remove(entry: Entry<K, V>, reason: DisposeReason): void {
    const entries = this.#entries;
    const last = entries.pop()!;
    if (last !== entry) {
      entries[entry.index] = last;
      last.index = entry.index;
    }
    this.#map.delete(entry.key);
    this.#bytes -= entry.size;
    entry.token?.release();
    if (this.#dispose !== null) this.#pending.push([entry.value, entry.key, reason]);
  }

  #callDispose(value: V, key: K, reason: DisposeReason): void {
    if (this.#dispose === null) return;
    try {
      this.#dispose(value, key, reason);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  async #load(
    key: K,
    generate: (key: K) => Generated<V> | Promise<Generated<V>>,
    report: PrefetchReport<K>,
  ): Promise<void> {
    // A slot is counted from the moment it is taken: a load that ends hands its slot straight to the next
    // one waiting, so a prefetch started in between (from a settled generate's .then) finds none free.
    if (this.#running >= this.#concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      const made = await generate(key);
      if (typeof made !== "object" || made === null) {
        throw new TypeError(`Cannot prefetch as 'generate' must return { value, size, cost? }: got ${describe(made)}`);
      }
      const { value, size, cost } = made;
      checkSize(size, "prefetch", "size");
      const checkedCost = cost === undefined ? 1 : checkCost(cost, "prefetch");
      const stored = !this.#disposed && !this.#map.has(key) && this.#run(() => {
        try {
          return this.#store(key, value, size, checkedCost);
        } catch (error) {
          if (error instanceof AllocationError && error.category === "use-after-free") return false; // disposed meanwhile
          throw error;
        }
      });
      if (!stored) {
        report.skipped++;
        this.#callDispose(value, key, "rejected");
      } else report.loaded.push(key);
    } catch (error) {
      report.failed.push({ key, error });
    } finally {
      this.#inFlight.delete(key);
      const next = this.#waiting.shift();
      if (next !== undefined) next(); // the slot passes on, still counted
      else this.#running--;
    }
  }
}
