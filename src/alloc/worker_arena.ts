/**
 * One arena per thread (a thread-local arena).
 *
 * @module
 */
import { Arena, arenaOver } from "./arena.ts";
import { parseArenaOptions } from "./_arena_options.ts";
import { createLifetimeOwner } from "../base/_native_census.ts";
import type { ArenaOptions } from "./arena_types.ts";

let threadArena: Arena | null = null;

/**
 * This thread's arena (a thread-local arena): each Worker, and the main
 * thread, gets its own, created on first call with `options` (later calls
 * return the same arena; their `options` are checked, then ignored).
 * Nothing is shared between threads, so no locking is needed. It lives as
 * long as its thread, so the leak check at exit does not count it; once it
 * has ended (its `dispose()`, or a buffer over its memory transferred away),
 * the next call creates a fresh one. A `reset()` of any kind keeps it.
 *
 * @param options Options for the arena when this call creates it.
 * @returns The arena of the calling thread.
 * @throws {TypeError} For options of the wrong type or unknown keys; {RangeError} for numbers out of range.
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
  if (threadArena === null || arenaOver(threadArena)) {
    threadArena = createLifetimeOwner(() => new Arena(options));
  } else if (options !== undefined) {
    parseArenaOptions(options); // a later call's options are not used, but a wrong one is still an error
  }
  return threadArena;
}
