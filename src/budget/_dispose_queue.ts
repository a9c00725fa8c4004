// The dispose-hook queue of a ResourceCache: hooks of entries that left run once the operation that removed
// them is done, so user code then sees the cache's books complete, whatever it calls (delete, set, purge, a
// budget request that makes this cache evict); what it removes is queued behind and run by the same loop, so
// no entry's hook runs twice.

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

/** The hooks waiting for the operation that removed their values to end. */
export class DisposeQueue<K, V> {
  readonly #dispose: ((value: V, key: K, reason: DisposeReason) => void) | null;
  readonly #pending: [V, K, DisposeReason][] = [];
  #depth = 0;
  #flushing = false;

  constructor(dispose: ((value: V, key: K, reason: DisposeReason) => void) | null) {
    this.#dispose = dispose;
  }

  /** Starts an operation (set and delete call this and {@linkcode leave} instead of {@linkcode run}: no closure). */
  enter(): void {
    this.#depth++;
  }

  /** Ends an operation; the outermost one runs the hooks queued meanwhile. */
  leave(): void {
    this.#depth--;
    if (this.#depth === 0 && !this.#flushing && this.#pending.length !== 0) this.#flush();
  }

  /** Runs `body` as one operation: dispose hooks of what it removed run after it, not inside it. */
  run<T>(body: () => T): T {
    this.#depth++;
    try {
      return body();
    } finally {
      this.leave();
    }
  }

  /** Queues the hook of a value that left (nothing without a hook). */
  push(value: V, key: K, reason: DisposeReason): void {
    if (this.#dispose !== null) this.#pending.push([value, key, reason]);
  }

  /** Runs the hook now; an error it throws is rethrown in a microtask. */
  call(value: V, key: K, reason: DisposeReason): void {
    if (this.#dispose === null) return;
    try {
      this.#dispose(value, key, reason);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #flush(): void {
    this.#flushing = true;
    try {
      for (let next = this.#pending.shift(); next !== undefined; next = this.#pending.shift()) {
        this.call(next[0], next[1], next[2]);
      }
    } finally {
      this.#flushing = false;
    }
  }
}
