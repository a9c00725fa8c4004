// The options of a ResourceCache and the checks of its arguments, at the
// public boundary (TypeError for a wrong type, RangeError for a bad number).
import { describe, MAX_BLOCK_SIZE, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { isPressureMonitor, type PressureMonitor } from "../pressure/pressure_monitor.ts";
import type { DisposeReason } from "./_dispose_queue.ts";
import type { EvictionWeights } from "./_eviction_score.ts";
import { BudgetPriority, isMemoryBudget, type MemoryBudget } from "./memory_budget.ts";

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
   * @default { age: 0.3, size: 0.3, cost: 0.2, frequency: 0.2 }
   */
  weights?: Partial<EvictionWeights>;
  /**
   * How the size factor is scaled: `"limit"` divides by `maxBytes` (the default), `"largest"` by the largest
   * entry among the candidates (size then weighs as much as age).
   * @default {"limit"}
   */
  sizeScale?: "limit" | "largest";
  /** Called with each value that leaves the cache (free native memory here). Errors are rethrown in a microtask. */
  dispose?: (value: V, key: K, reason: DisposeReason) => void;
  /** Count entries against this budget (one token per entry) and give way to its higher-priority requests. */
  budget?: MemoryBudget;
  /**
   * The budget category of the entries.
   * @default {"cache"}
   */
  category?: string;
  /**
   * The priority of the entries' budget requests and of the cache's reclaimer.
   * @default {BudgetPriority.Low}
   */
  priority?: number;
  /** Trim 30 % when this monitor rises to Medium or above (iOS's "warning"), purge at Critical. */
  pressure?: PressureMonitor;
  /**
   * `prefetch` loads predictions whose probability is above this.
   * @default {0.7}
   */
  prefetchThreshold?: number;
  /**
   * Loads `prefetch` runs at once (across calls).
   * @default {2}
   */
  prefetchConcurrency?: number;
  /**
   * Entries scored per eviction (all of them when the cache holds fewer).
   * @default {64}
   */
  evictionSamples?: number;
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
  // Brand checks: a Proxy of a budget or monitor (or an object made from the prototype) passes instanceof,
  // then fails on their private fields with the engine's TypeError.
  budget: typeCheck<MemoryBudget>(
    isMemoryBudget,
    "must be a MemoryBudget made by new MemoryBudget (not a Proxy of one)",
  )
    .optional(),
  category: z.string().min(1, "must not be empty").optional(),
  priority: z.number().int("must be an integer").min(0, "must be at least 0").max(100, "must be at most 100")
    .optional(),
  pressure: typeCheck<PressureMonitor>(
    isPressureMonitor,
    "must be a PressureMonitor made by new PressureMonitor (not a Proxy of one)",
  ).optional(),
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

/** A cache's options, checked, with their defaults. */
export interface CacheSettings<K, V> {
  readonly maxBytes: number;
  readonly weights: EvictionWeights;
  readonly scaleByLargest: boolean;
  readonly dispose: ((value: V, key: K, reason: DisposeReason) => void) | null;
  readonly budget: MemoryBudget | null;
  readonly category: string;
  readonly priority: number;
  readonly pressure: PressureMonitor | null;
  readonly threshold: number;
  readonly concurrency: number;
  readonly samples: number;
}

/** Checks the options of `new ResourceCache` (and that its budget takes its category), filling in the defaults. */
export function cacheSettings<K, V>(options: ResourceCacheOptions<K, V>): CacheSettings<K, V> {
  const op = "create ResourceCache";
  if (options === undefined) throw new TypeError(`Cannot ${op} as 'options' with 'maxBytes' is required`);
  const parsed = parseOptions(OptionsSchema, options, op);
  const w = parsed.weights ?? {};
  const weights = { age: w.age ?? 0.3, size: w.size ?? 0.3, cost: w.cost ?? 0.2, frequency: w.frequency ?? 0.2 };
  const sum = weights.age + weights.size + weights.cost + weights.frequency;
  if (!(sum > 0) || !Number.isFinite(sum)) {
    throw new RangeError(
      `Cannot ${op} as 'weights' must have a positive, finite sum: current value is ${JSON.stringify(weights)}`,
    );
  }
  const budget = parsed.budget ?? null;
  const category = parsed.category ?? "cache";
  // A declared-category budget refuses an unknown name now, not at the first set.
  if (budget && !budget.accepts(category)) {
    throw new TypeError(
      `Cannot ${op} as 'category' must be one the budget accepts: current value is ${describe(category)}`,
    );
  }
  return {
    maxBytes: parsed.maxBytes,
    weights,
    scaleByLargest: parsed.sizeScale === "largest",
    dispose: (parsed.dispose as ((value: V, key: K, reason: DisposeReason) => void) | undefined) ?? null,
    budget,
    category,
    priority: parsed.priority ?? BudgetPriority.Low,
    pressure: parsed.pressure ?? null,
    threshold: parsed.prefetchThreshold ?? 0.7,
    concurrency: parsed.prefetchConcurrency ?? 2,
    samples: parsed.evictionSamples ?? 64,
  };
}

/** A `cost` argument: a finite number from 0. */
export function checkCost(value: unknown, op: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as 'cost' must be a number: current value is ${describe(value)}`);
  }
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`Cannot ${op} as 'cost' must be a finite number from 0: current value is ${describe(value)}`);
  }
  return value;
}
