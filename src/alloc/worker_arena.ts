/**
 * One arena per thread (a thread-local arena).
 *
 * @module
 */
import { Arena } from "./arena.ts";
import { createLifetimeOwner } from "../base/_native_census.ts";
import type { ArenaOptions } from "./arena_types.ts";

let threadArena: Arena | null = null;

/**
 * This thread's arena (a thread-local arena): each Worker, and the main
 * thread, gets its own, created on first call with `options` (later calls
 * return the same arena and ignore `options`). Nothing is shared between
 * threads, so no locking is needed. It lives as long as its thread, so the
 * leak check at exit does not count it; after its `dispose()`, the next call
 * creates a fresh one.
 *
 * @param options Options for the arena when this call creates it.
 * @returns The arena of the calling thread.
 *
 * @example
 * ```ts
 * import { workerArena } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = workerArena({ capacity: 64 << 20 });
 * assert.equal(workerArena(), arena);
 * {
 *   using _scope = arena.scope();
 *   arena.array(Float32Array, 1024);
 * }
 * ```
 */
export function workerArena(options?: ArenaOptions): Arena {
  // A disposed arena reports no capacity (a live one always holds its first chunk): the thread gets a new one.
  if (threadArena === null || threadArena.stats().capacityBytes === 0) {
    threadArena = createLifetimeOwner(() => new Arena(options));
  }
  return threadArena;
}
