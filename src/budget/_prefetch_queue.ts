// The prefetch side of a ResourceCache: the predictions `prefetch` takes
// (read and checked in full before any load starts) and the queue of loads,
// which runs at most `prefetchConcurrency` of them at once across all calls
// and never loads a key twice at the same time.
import { describe } from "../base/_validate.ts";

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
  /**
   * The work to recreate it.
   * @default {1}
   */
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

// %TypedArray%.prototype[Symbol.iterator], shared by every typed array.
const TYPED_ARRAY_VALUES = Object.getPrototypeOf(Uint8Array.prototype)[Symbol.iterator];

/**
 * The arguments of `prefetch`, checked: every prediction read once, before anything starts (user getters run
 * here, not later), as `{ key, probability }` objects of its own.
 */
export function readPredictions<K>(predictions: unknown, generate: unknown): Prediction<K>[] {
  const op = "prefetch";
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
  const list: Prediction<K>[] = [];
  for (const prediction of predictions as Iterable<Prediction<K>>) {
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
  return list;
}

/**
 * The keys loading and the load slots. A slot is counted from the moment it is taken: a load that ends hands
 * its slot straight to the next one waiting, so a prefetch started in between (from a settled generate's
 * .then) finds none free.
 */
export class PrefetchQueue<K> {
  readonly #concurrency: number;
  readonly #loading = new Set<K>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  /** Whether `key` is loading. */
  has(key: K): boolean {
    return this.#loading.has(key);
  }

  /** Marks `key` loading (until {@linkcode done}). */
  add(key: K): void {
    this.#loading.add(key);
  }

  /** Takes a free slot: false when none is (then {@linkcode wait} for one). */
  take(): boolean {
    if (this.#running >= this.#concurrency) return false;
    this.#running++;
    return true;
  }

  /** Resolves when a load that ends hands its slot over. */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** The load of `key` ended: the key is no longer loading, its slot passes on (still counted) or is freed. */
  done(key: K): void {
    this.#loading.delete(key);
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#running--;
  }
}
