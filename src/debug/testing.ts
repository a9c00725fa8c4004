/**
 * Helpers for users' own test suites: a leak-checked allocator (Zig's
 * `std.testing.allocator`) and an allocator that fails on demand (Zig's
 * `FailingAllocator`).
 *
 * @module
 */
import { parseOptions, z } from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { DebugAllocator } from "./debug_allocator.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * Runs `fn` with a fresh {@linkcode DebugAllocator} and fails when `fn`
 * leaves blocks allocated: the error lists them. Leaked blocks are freed.
 *
 * @param fn The code under test; it may be async.
 * @param backing Where the debug allocator takes blocks from.
 * @returns What `fn` returned.
 * @throws {AllocationError} "leak" when blocks were left allocated (also "corruption" and the like from `fn`).
 *
 * @example
 * ```ts
 * import { leakCheck } from "@memkit/memkit";
 *
 * await leakCheck((allocator) => {
 *   const scratch = allocator.alloc(1024);
 *   allocator.free(scratch); // remove this line and leakCheck throws
 * });
 * ```
 */
export async function leakCheck<T>(fn: (allocator: Allocator) => T | Promise<T>, backing?: Allocator): Promise<T> {
  if (typeof fn !== "function") throw new TypeError("Cannot run leakCheck as 'fn' must be a function");
  const debug = new DebugAllocator(backing, { stackTraceFrames: 8 });
  let result: T;
  try {
    result = await fn(debug);
  } catch (error) {
    debug.deinit();
    throw error;
  }
  debug.check();
  const report = debug.report();
  if (debug.deinit() === "leak") throw new AllocationError("leak", report);
  return result;
}

/**
 * Options of {@linkcode FailingAllocator}.
 *
 * @example
 * ```ts
 * import { FailingAllocator, type FailingAllocatorOptions, SystemAllocator } from "@memkit/memkit";
 *
 * const options: FailingAllocatorOptions = { failAfter: 3 };
 * const failing = new FailingAllocator(new SystemAllocator(), options);
 * ```
 */
export interface FailingAllocatorOptions {
  /** How many allocations succeed before every later one fails (0: the first fails). */
  failAfter: number;
}

/**
 * Passes everything to `backing`, except that allocation number `failAfter`
 * (counting from 0) and every one after it fail with
 * `AllocationError("out-of-memory")` (`tryAlloc` returns null), so tests can
 * walk every out-of-memory path: run once to count allocations, then once per
 * `failAfter` from 0 to that count (Zig's `checkAllAllocationFailures`).
 *
 * @example
 * ```ts
 * import { AllocationError, FailingAllocator, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const failing = new FailingAllocator(new SystemAllocator(), { failAfter: 1 });
 * const first = failing.alloc(8);
 * assert.throws(() => failing.alloc(8), AllocationError);
 * failing.free(first);
 * ```
 */
export class FailingAllocator implements Allocator {
  readonly #backing: Allocator;
  readonly #failAfter: number;
  #allocations = 0;
  #failures = 0;

  /**
   * Wraps `backing`.
   *
   * @param backing The allocator that serves the allocations that succeed.
   * @param options When to start failing.
   * @throws {TypeError} For a backing that is not an Allocator.
   * @throws {RangeError} For a negative or fractional `failAfter`.
   */
  constructor(backing: Allocator, options: FailingAllocatorOptions) {
    if (typeof backing !== "object" || backing === null || typeof backing.alloc !== "function") {
      throw new TypeError("Cannot create FailingAllocator as 'backing' must be an Allocator");
    }
    const parsed = parseOptions(
      z.object({ failAfter: z.number().int("must be an integer").min(0, "must be at least 0") }).strict(),
      options,
      "create FailingAllocator",
    );
    this.#backing = backing;
    this.#failAfter = parsed.failAfter;
  }

  /** The kind of the backing allocator. */
  get kind(): Allocator["kind"] {
    return this.#backing.kind;
  }

  /** Allocations attempted so far (successful or not). */
  get allocations(): number {
    return this.#allocations;
  }

  /** Allocations made to fail so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Allocates, or fails with "out-of-memory" from allocation number `failAfter` on. */
  alloc(size: number, align?: number): Uint8Array {
    if (this.#shouldFail()) {
      throw new AllocationError(
        "out-of-memory",
        `FailingAllocator: allocation ${this.#allocations - 1} fails on purpose`,
      );
    }
    return this.#backing.alloc(size, align);
  }

  /** Like `alloc`, but `null` instead of failing. */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    return this.#shouldFail() ? null : this.#backing.tryAlloc(size, align);
  }

  /** A typed array, or a failure like `alloc`. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    if (this.#shouldFail()) {
      throw new AllocationError(
        "out-of-memory",
        `FailingAllocator: allocation ${this.#allocations - 1} fails on purpose`,
      );
    }
    return this.#backing.array(ctor, length, align);
  }

  /** Frees through the backing. */
  free(view: ArrayBufferView): void {
    this.#backing.free(view);
  }

  /** Resizes through the backing (a resize is not counted as an allocation). */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    return this.#backing.resize(view, newSize);
  }

  /** Asks the backing. */
  owns(view: ArrayBufferView): boolean {
    return this.#backing.owns(view);
  }

  /** The backing's counters, with the failures added. */
  stats(): AllocatorStats {
    const stats = this.#backing.stats();
    return { ...stats, failedAllocations: stats.failedAllocations + this.#failures };
  }

  #shouldFail(): boolean {
    const index = this.#allocations++;
    if (index < this.#failAfter) return false;
    this.#failures++;
    return true;
  }
}
