/**
 * Hooks into the runtime's garbage collector.
 *
 * @module
 */
import { requestGC } from "../../ffi/native.ts";

const watchers = new Set<() => void>();
// One sentinel object at a time: when it is collected, a collection ran, and
// the next is armed while anyone watches. `armed` says one is pending, so a
// watcher that comes and goes arms no second one (each would call every
// watcher once more per collection, for good).
let armed = false;
const sentinels = new FinalizationRegistry<number>(() => {
  armed = false;
  if (watchers.size === 0) return;
  arm();
  // A copy: a watcher added during the round waits for the next collection. A watcher stopped during the round
  // (by another one) is not called after its stop function returned.
  for (const callback of [...watchers]) {
    if (!watchers.has(callback)) continue;
    try {
      callback();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
});

function arm(): void {
  armed = true;
  sentinels.register({}, 0);
}

/**
 * Calls `callback` after the runtime has collected garbage (observed through
 * a FinalizationRegistry sentinel, so calls come some time after a
 * collection, as finalizers run, and never keep the process alive).
 *
 * @param callback Called after each observed collection.
 * @returns A function that stops the calls: none comes after it returns, also when it is called by another
 *   callback during the same collection's calls.
 *
 * @example
 * ```ts
 * import { gcHint, onGC } from "@memkit/memkit";
 *
 * const stop = onGC(() => console.log("collected"));
 * gcHint();
 * stop();
 * ```
 */
export function onGC(callback: () => void): () => void {
  if (typeof callback !== "function") {
    throw new TypeError("Cannot watch the collector as 'callback' must be a function");
  }
  if (!armed) arm();
  const entry = () => callback();
  watchers.add(entry);
  return () => {
    watchers.delete(entry);
  };
}

/**
 * Asks for a full garbage collection where the runtime allows it: `Bun.gc`
 * in Bun, `globalThis.gc` in Deno run with `--v8-flags=--expose-gc`.
 *
 * @returns Whether a collection was requested.
 *
 * @example
 * ```ts
 * import { gcHint } from "@memkit/memkit";
 *
 * if (!gcHint()) console.log("run Deno with --v8-flags=--expose-gc to allow collections on request");
 * ```
 */
export function gcHint(): boolean {
  return requestGC();
}
