/**
 * A memory-limited cache whose entries carry a size and a recreation cost,
 * evicted by a multi-factor score (age, size, recreation cost, frequency).
 *
 * @module
 */
import { checkSize, describe } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { PressureLevel } from "../pressure/pressure_level.ts";
import type { PressureMonitor } from "../pressure/pressure_monitor.ts";
import type { BudgetToken } from "./budget_token.ts";
import { cacheSettings, checkCost, type ResourceCacheOptions } from "./_cache_options.ts";
import { DisposeQueue, type DisposeReason } from "./_dispose_queue.ts";
import { type EvictionWeights, pickVictim } from "./_eviction_score.ts";
import {
  type Generated,
  type Prediction,
  PrefetchQueue,
  type PrefetchReport,
  readPredictions,
} from "./_prefetch_queue.ts";
import type { MemoryBudget } from "./memory_budget.ts";

export type { DisposeReason } from "./_dispose_queue.ts";
export type { ResourceCacheOptions } from "./_cache_options.ts";
export type { Generated, Prediction, PrefetchReport } from "./_prefetch_queue.ts";

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

let isResourceCacheBrand: (value: unknown) => boolean;

/**
 * Whether `value` is a ResourceCache made by its constructor: a brand check, so a Proxy of one or an object
 * made from its prototype (which pass `instanceof`) is not. memkit checks its options with it; not exported
 * from mod.ts.
 */
export function isResourceCache(value: unknown): value is ResourceCache<unknown, unknown> {
  return isResourceCacheBrand(value);
}

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
  readonly #budget: MemoryBudget | null;
  readonly #category: string;
  readonly #priority: number;
  readonly #threshold: number;
  readonly #samples: number;
  readonly #prefetching: PrefetchQueue<K>;
  // Dispose hooks of entries that left, run once the operation that removed them is done.
  readonly #hooks: DisposeQueue<K, V>;
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
    const settings = cacheSettings(options);
    this.#weights = settings.weights;
    this.#maxBytes = settings.maxBytes;
    this.#scaleByLargest = settings.scaleByLargest;
    this.#hooks = new DisposeQueue(settings.dispose);
    this.#budget = settings.budget;
    this.#category = settings.category;
    this.#priority = settings.priority;
    this.#threshold = settings.threshold;
    this.#prefetching = new PrefetchQueue(settings.concurrency);
    this.#samples = settings.samples;
    // A subclass of the budget or monitor may refuse (throw from addReclaimer or on): what was registered
    // before is taken back, so a constructor that throws leaves no cache the budget or the monitor still calls.
    try {
      if (this.#budget) {
        this.#unregister = this.#budget.addReclaimer(
          (wanted) => this.#hooks.run(() => this.#evictBytes(wanted, "evict")),
          { priority: this.#priority },
        );
      }
      if (settings.pressure) {
        this.#monitor = settings.pressure;
        this.#listeners.push(settings.pressure.on(PressureLevel.Medium, () => this.trim(0.3)));
        this.#listeners.push(settings.pressure.on(PressureLevel.Critical, () => this.purge()));
      }
    } catch (error) {
      for (const id of this.#listeners) this.#monitor!.off(id);
      this.#unregister?.();
      throw error;
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
    const hooks = this.#hooks;
    hooks.enter(); // hooks.run without a closure on the hot path
    try {
      return this.#store(key, value, size, cost);
    } finally {
      hooks.leave();
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
    const hooks = this.#hooks;
    hooks.enter();
    try {
      this.#remove(entry, "delete");
    } finally {
      hooks.leave();
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
    return this.#hooks.run(() => this.#evictBytes(Math.round(this.#bytes * fraction), "trim"));
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
    return this.#hooks.run(() => this.#removeAll());
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
   * @throws {AllocationError} "use-after-free" after dispose, also when reading the predictions disposed the
   *   cache (nothing is generated then).
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
    this.#alive("prefetch");
    const list = readPredictions<K>(predictions, generate);
    // Reading the predictions ran their code (an iterator, a getter), which may have disposed this cache.
    this.#alive("prefetch");
    const report: PrefetchReport<K> = { loaded: [], skipped: 0, failed: [] };
    const chosen: K[] = [];
    const queue = this.#prefetching;
    for (const { key, probability } of list.sort((a, b) => b.probability - a.probability)) {
      if (probability > this.#threshold && !this.#map.has(key) && !queue.has(key)) {
        queue.add(key);
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
    this.#hooks.run(() => {
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

  /** "ResourceCache", so a message naming this object (`Object.prototype.toString`) says what it is. */
  get [Symbol.toStringTag](): string {
    return "ResourceCache";
  }

  static {
    isResourceCacheBrand = (value) => typeof value === "object" && value !== null && #map in value;
  }

  #alive(op: string): void {
    if (this.#disposed) {
      throw new AllocationError("use-after-free", `Cannot ${op} as this ResourceCache was disposed`);
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
    this.#hooks.push(entry.value, entry.key, reason);
  }

  async #load(
    key: K,
    generate: (key: K) => Generated<V> | Promise<Generated<V>>,
    report: PrefetchReport<K>,
  ): Promise<void> {
    const queue = this.#prefetching;
    if (!queue.take()) await queue.wait();
    try {
      const made = await generate(key);
      if (typeof made !== "object" || made === null) {
        throw new TypeError(`Cannot prefetch as 'generate' must return { value, size, cost? }: got ${describe(made)}`);
      }
      const { value, size, cost } = made;
      checkSize(size, "prefetch", "size");
      const checkedCost = cost === undefined ? 1 : checkCost(cost, "prefetch");
      const stored = !this.#disposed && !this.#map.has(key) && this.#hooks.run(() => {
        try {
          return this.#store(key, value, size, checkedCost);
        } catch (error) {
          if (error instanceof AllocationError && error.category === "use-after-free") return false; // disposed meanwhile
          throw error;
        }
      });
      if (!stored) {
        report.skipped++;
        this.#hooks.call(value, key, "rejected");
      } else report.loaded.push(key);
    } catch (error) {
      report.failed.push({ key, error });
    } finally {
      queue.done(key); // the slot passes on, still counted, or is freed
    }
  }
}
