/**
 * The public shapes of {@linkcode Arena}: growth and alignment policies,
 * options, reset modes, observers, scopes and statistics.
 *
 * @module
 */
import type { AllocatorStats } from "../base/allocator.ts";
import type { Allocator } from "../base/allocator.ts";

/**
 * How an {@linkcode Arena} grows when its chunks are full: `"fixed"` never
 * (allocation fails with "out-of-memory"), `"linear"` by `capacity` each time,
 * `"exponential"` by twice the last chunk, `"adaptive"` like exponential, and
 * `reset("retain-capacity")` then merges its chunks into one, so a workload
 * that repeats settles on a single chunk of the size it needs.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaGrowth } from "@memkit/memkit";
 *
 * const growth: ArenaGrowth = "adaptive";
 * const arena = new Arena({ capacity: 4096, growth });
 * arena.reset("free-all");
 * ```
 */
export type ArenaGrowth = "fixed" | "linear" | "exponential" | "adaptive";

/**
 * The alignment an {@linkcode Arena} uses when a call gives none: `"natural"`
 * (16 for `alloc`, the element size for `array` and `clone`), `"cache-line"`
 * (64), `"page"` (the page size) or a power of two.
 *
 * @example
 * ```ts
 * import { addressOf, Arena, type ArenaAlignment } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const alignment: ArenaAlignment = "cache-line";
 * const arena = new Arena({ alignment });
 * assert.equal(addressOf(arena.alloc(10)) % 64, 0);
 * arena.reset("free-all");
 * ```
 */
export type ArenaAlignment = "natural" | "cache-line" | "page" | number;

/**
 * Options of {@linkcode Arena}.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaOptions } from "@memkit/memkit";
 *
 * const options: ArenaOptions = { capacity: 1 << 20, growth: "exponential", maxCapacity: 64 << 20 };
 * const arena = new Arena(options);
 * arena.reset("free-all");
 * ```
 */
export interface ArenaOptions {
  /** Size of the first chunk in bytes (rounded up to whole pages). @default {1048576} */
  capacity?: number;
  /** How to grow when full. @default {"exponential"} */
  growth?: ArenaGrowth;
  /** Default alignment when a call gives none. @default {"natural"} */
  alignment?: ArenaAlignment;
  /**
   * Upper bound on the bytes held in chunks (whole pages, so at least `capacity` rounded up to them); beyond it
   * allocation fails with "limit-exceeded". @default {2 ** 47}
   */
  maxCapacity?: number;
  /**
   * Where chunks come from. `null`: the first chunk comes from the system and
   * the arena never grows (it fails with "out-of-memory" instead).
   * @default {a shared SystemAllocator}
   */
  backing?: Allocator | null;
  /** Measure the average time of `alloc` (`stats().avgAllocationNs`). @default {false} */
  timing?: boolean;
  /**
   * Detach every view into memory released by `reset()` or a scope's end, so
   * stale views read as length 0 instead of seeing reused memory. Costs about
   * 0.5–1.5 µs per scope (one ArrayBuffer wrap and detach per 64 MiB the scope
   * uses in Deno, per MiB in Bun)
   * and one re-wrap per chunk on `reset()`; `false` leaves released views
   * readable over memory the arena hands out again. @default {true}
   */
  safety?: boolean;
}

/**
 * What {@linkcode Arena.reset} keeps: `"free-all"` returns every chunk (the
 * next allocation takes a first chunk of `capacity` bytes again, as the
 * constructor did), `"retain-capacity"` keeps them all for reuse,
 * `{ retainLimit }` keeps chunks up to that many bytes and returns the rest.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaResetMode } from "@memkit/memkit";
 *
 * const arena = new Arena();
 * const mode: ArenaResetMode = { retainLimit: 1 << 20 };
 * arena.reset(mode);
 * ```
 */
export type ArenaResetMode = "free-all" | "retain-capacity" | { retainLimit: number };

/**
 * Callbacks an {@linkcode Arena} calls on allocation, free and scope changes.
 *
 * @example
 * ```ts
 * import { Arena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * let bytes = 0;
 * const stop = arena.observe({ onAlloc: (view) => (bytes += view.length) });
 * arena.alloc(100);
 * stop();
 * arena.alloc(100);
 * assert.equal(bytes, 100);
 * arena.reset("free-all");
 * ```
 */
export interface ArenaObserver {
  /**
   * After each allocation (alloc, tryAlloc, array, clone, a copying resize) is
   * complete, with a Uint8Array over the block's bytes and its alignment (see
   * `Arena.observe` for which view that is).
   */
  onAlloc?(view: Uint8Array<ArrayBuffer>, align: number): void;
  /** After each `free`; `rolledBack` tells whether the memory was reclaimed. */
  onFree?(view: ArrayBufferView, rolledBack: boolean): void;
  /** After a scope begins. */
  onScopeEnter?(scope: ArenaScope): void;
  /** After a scope ends, with its final statistics. */
  onScopeExit?(scope: ArenaScope): void;
}

/**
 * Counters of one {@linkcode ArenaScope}.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaScopeStats } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * using scope = arena.scope();
 * arena.alloc(64);
 * const stats: ArenaScopeStats = scope.stats();
 * assert.equal(stats.allocations, 1);
 * ```
 */
export interface ArenaScopeStats {
  /** Allocations made while the scope was open (nested scopes included). */
  allocations: number;
  /** Bytes requested by those allocations. */
  bytes: number;
  /** How long the scope has been (or was) open. */
  lifetimeMs: number;
}

/**
 * A region of an arena's lifetime: when it ends (leaving a `using` block, or
 * `end()`), everything allocated since it began is released at once. Scopes
 * nest; ending an outer scope ends the inner ones first.
 *
 * @example
 * ```ts
 * import { Arena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * const kept = arena.alloc(16);
 * {
 *   using _scope = arena.scope();
 *   arena.array(Float64Array, 10_000); // a temporary
 * } // released here
 * assert.equal(arena.stats().allocatedBytes, 16);
 * assert.equal(kept.length, 16); // allocated before the scope: still valid
 * arena.reset("free-all");
 * ```
 */
export interface ArenaScope extends Disposable {
  /** Nesting depth, 1 for an outermost scope. */
  readonly depth: number;
  /** False once the scope has ended. */
  readonly active: boolean;
  /** Allocations, bytes and lifetime of the scope so far. */
  stats(): ArenaScopeStats;
  /**
   * Ends the scope (and any inner ones); a second call does nothing.
   * @throws {AllocationError} "unsupported" from an `onAlloc` observer told of a block another allocator is taking, for a scope opened before it (see `Arena.observe`).
   */
  end(): void;
}

/**
 * {@linkcode AllocatorStats} of an arena, plus its own counters.
 *
 * @example
 * ```ts
 * import { Arena, type ArenaStats } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena({ timing: true });
 * arena.alloc(8);
 * const stats: ArenaStats = arena.stats();
 * assert.equal(stats.chunks, 1);
 * assert.ok(stats.avgAllocationNs !== undefined);
 * arena.reset("free-all");
 * ```
 */
export interface ArenaStats extends AllocatorStats {
  /** Average time of one `alloc` in nanoseconds, when `timing` is on. */
  avgAllocationNs?: number;
  /** Chunks held. */
  chunks: number;
  /** Scopes open now. */
  scopeDepth: number;
  /** `free` calls for blocks other than the most recent one, which an arena cannot reclaim. */
  ignoredFrees: number;
}
