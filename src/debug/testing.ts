/**
 * Helpers for users' own test suites: a leak-checked allocator (Zig's
 * `std.testing.allocator`) and an allocator that fails on demand (Zig's
 * `FailingAllocator`).
 *
 * @module
 */
import { native } from "../../ffi/native.ts";
import { leaseTableOf, registerLeases } from "../alloc/_lease.ts";
import {
  bufferOf,
  checkAlignment,
  checkSize,
  checkTypedArrayConstructor,
  checkView,
  lengthOf,
  MAX_BLOCK_SIZE,
  offsetOf,
  parseOptions,
  z,
} from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { checkBacking } from "./_backing_intake.ts";
import { isInstance } from "../alloc/_thrown.ts";
import { DebugAllocator } from "./debug_allocator.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * Runs `fn` with a fresh {@linkcode DebugAllocator} and fails when `fn`
 * leaves blocks allocated: the error lists them. Leaked blocks are freed.
 * The allocator traces allocation sites (8 frames) and detaches freed
 * blocks (`detachFreed: true`), so every view of a freed block reads as
 * length 0 whatever the backing.
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
  // Tests can afford the strictest use-after-free check: every view of a freed block reads as length 0.
  const debug = new DebugAllocator(backing, { stackTraceFrames: 8, detachFreed: true });
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

// The methods a FailingAllocator passes calls to.
const FORWARDED = ["alloc", "tryAlloc", "array", "free", "resize", "owns", "stats"] as const;

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
 * Only allocations are counted: a call with bad arguments is refused (its
 * TypeError or RangeError, also once allocations fail) and counts for nothing.
 *
 * Its blocks are the backing's (so are their leases). `dispose()` frees the
 * blocks it handed out that are still live, newest first; every later call
 * throws "use-after-free".
 *
 * @example
 * ```ts
 * import { AllocationError, FailingAllocator, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using failing = new FailingAllocator(new SystemAllocator(), { failAfter: 1 });
 * const first = failing.alloc(8);
 * assert.throws(() => failing.alloc(8), AllocationError);
 * failing.free(first);
 * ```
 */
export class FailingAllocator implements Allocator, Disposable {
  readonly #backing: Allocator;
  readonly #failAfter: number;
  #allocations = 0;
  #failures = 0;
  #disposed = false;
  // The blocks handed out and not yet freed through this allocator, by buffer
  // and offset (a free may pass a different view of the same block), in the
  // order they were handed out.
  #live = new Map<ArrayBufferLike, Map<number, ArrayBufferView>>();
  #order: ArrayBufferView[] = [];
  #liveCount = 0;

  /**
   * Wraps `backing`.
   *
   * @param backing The allocator that serves the allocations that succeed.
   * @param options When to start failing.
   * @throws {TypeError} For a backing that is not an Allocator (one of the methods it passes calls to is missing).
   * @throws {RangeError} For a negative or fractional `failAfter`, or one above 2^53 - 1.
   */
  constructor(backing: Allocator, options: FailingAllocatorOptions) {
    checkBacking(backing, "FailingAllocator", FORWARDED);
    const parsed = parseOptions(
      z.object({
        failAfter: z.number().min(0, "must be at least 0").max(Number.MAX_SAFE_INTEGER, "must be at most 2^53 - 1")
          .int("must be an integer"),
      }).strict(),
      options,
      "create FailingAllocator",
    );
    this.#backing = backing;
    // Its blocks, and their leases, are the backing's.
    registerLeases(this, () => leaseTableOf(backing));
    this.#failAfter = parsed.failAfter;
  }

  /** The kind of the backing allocator. */
  get kind(): Allocator["kind"] {
    return this.#backing.kind;
  }

  /** Allocations attempted so far (successful or not; a call refused for its arguments is none). */
  get allocations(): number {
    return this.#allocations;
  }

  /** Allocations made to fail so far. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Allocates, or fails with "out-of-memory" from allocation number `failAfter` on.
   * @throws {TypeError} For a size or alignment that is not a number.
   * @throws {RangeError} For a size or alignment out of range (checked before the allocation is counted).
   */
  alloc(size: number, align?: number): Uint8Array {
    checkSize(size, "allocate");
    checkAlignment(align, "allocate", native.pageSize);
    this.#guard("allocate");
    if (this.#shouldFail()) throw this.#failure();
    return this.#track(this.#counted(() => this.#backing.alloc(size, align)));
  }

  /** Like `alloc`, but `null` instead of failing (bad arguments still throw). */
  tryAlloc(size: number, align?: number): Uint8Array | null {
    checkSize(size, "allocate");
    checkAlignment(align, "allocate", native.pageSize);
    this.#guard("allocate");
    if (this.#shouldFail()) return null;
    const view = this.#counted(() => this.#backing.tryAlloc(size, align));
    return view === null ? null : this.#track(view);
  }

  /** A typed array, or a failure like `alloc`. */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    // The checks every allocator's array() makes (see typedArrayOf), before the allocation is counted.
    const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
    checkSize(length, "allocate an array", "length", Math.floor(MAX_BLOCK_SIZE / bytesPerElement));
    checkAlignment(align, "allocate an array", native.pageSize, Math.max(16, bytesPerElement));
    this.#guard("allocate an array");
    if (this.#shouldFail()) throw this.#failure();
    return this.#track(this.#counted(() => this.#backing.array(ctor, length, align)));
  }

  /** Frees through the backing. */
  free(view: ArrayBufferView): void {
    checkView(view, "free");
    this.#guard("free");
    const buffer = bufferOf(view), offset = offsetOf(view); // before the backing detaches it
    this.#backing.free(view);
    this.#untrack(buffer, offset);
  }

  /** Resizes through the backing (a resize is not counted as an allocation). */
  resize(view: ArrayBufferView, newSize: number): Uint8Array {
    checkView(view, "resize");
    this.#guard("resize");
    const buffer = bufferOf(view), offset = offsetOf(view);
    const fresh = this.#backing.resize(view, newSize);
    this.#untrack(buffer, offset);
    return this.#track(fresh);
  }

  /** Asks the backing (false after `dispose()`). */
  owns(view: ArrayBufferView): boolean {
    return !this.#disposed && this.#backing.owns(view);
  }

  /** The backing's counters, with the failures added. */
  stats(): AllocatorStats {
    const stats = this.#backing.stats();
    return { ...stats, failedAllocations: stats.failedAllocations + this.#failures };
  }

  /**
   * Frees every block it handed out that is still live (newest first, so a
   * stack takes them back); afterwards every call throws "use-after-free". A
   * second call does nothing. The backing itself is not disposed.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const live = this.#order.filter((view) => this.#live.get(bufferOf(view))?.get(offsetOf(view)) === view);
    this.#live.clear();
    this.#order = [];
    this.#liveCount = 0;
    for (let i = live.length - 1; i >= 0; i--) {
      try {
        this.#backing.free(live[i]);
      } catch {
        // The backing already let go of it (its own reset or dispose).
      }
    }
  }

  /** Same as {@linkcode FailingAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #guard(op: string): void {
    if (this.#disposed) {
      throw new AllocationError("use-after-free", `Cannot ${op}: the FailingAllocator was disposed`);
    }
  }

  #track<V extends ArrayBufferView>(view: V): V {
    if (lengthOf(view) === 0) return view; // an empty view holds nothing
    let offsets = this.#live.get(bufferOf(view));
    if (offsets === undefined) this.#live.set(bufferOf(view), offsets = new Map());
    if (!offsets.has(offsetOf(view))) this.#liveCount++;
    offsets.set(offsetOf(view), view);
    this.#order.push(view);
    // Drop freed views from the allocation order now and then (amortised O(1)).
    if (this.#order.length > 64 && this.#order.length > 2 * this.#liveCount) {
      this.#order = this.#order.filter((v) => this.#live.get(v.buffer)?.get(v.byteOffset) === v);
    }
    return view;
  }

  #untrack(buffer: ArrayBufferLike, offset: number): void {
    const offsets = this.#live.get(buffer);
    if (offsets === undefined || !offsets.delete(offset)) return;
    this.#liveCount--;
    if (offsets.size === 0) this.#live.delete(buffer);
  }

  #shouldFail(): boolean {
    const index = this.#allocations++;
    if (index < this.#failAfter) return false;
    this.#failures++;
    return true;
  }

  #failure(): AllocationError {
    return new AllocationError(
      "out-of-memory",
      `FailingAllocator: allocation ${this.#allocations - 1} fails on purpose`,
    );
  }

  // Runs the backing's allocation counted by #shouldFail(): arguments the backing refuses (a TypeError or
  // RangeError: stricter limits of its own) made no allocation, so it is not counted. What it threw goes on as it
  // is, judged without running its code (see _thrown.ts): `instanceof` runs a Proxy's trap, and throws the engine's
  // TypeError for a revoked one.
  #counted<V>(allocate: () => V): V {
    try {
      return allocate();
    } catch (error) {
      if (isInstance(error, TypeError) || isInstance(error, RangeError)) this.#allocations--;
      throw error;
    }
  }
}
