// allocateAsync's waiting room. A waiter retries its allocation when memory
// may have come back (a deallocate, the end of a frame: `wake()`), and, while
// it is held back by memory pressure, when the pressure level falls (a poll
// of the monitor's level, which the monitor itself updates on its own timer).
// Retries run in a microtask, never inside the deallocate that woke them.
import { type LongTimer, setLongTimeout } from "./_long_timer.ts";

/** What one try gives: the result, or null to keep waiting (`blocked` says why, for the timeout's message). */
export type Attempt<T> = () => T | null;

interface Waiter<T> {
  attempt: Attempt<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  /** Its timeout (none for Infinity); longer than setTimeout's limit it is a chain of timers. */
  timer: LongTimer | null;
  /** The error its timeout rejects with. */
  timedOut: () => Error;
}

/** How often a waiter held back by pressure looks at the level again. */
const PRESSURE_POLL_MS = 20;

export class WaitQueue {
  #waiters: Waiter<unknown>[] = [];
  #scheduled = false;
  #poll: ReturnType<typeof setInterval> | null = null;
  readonly #underPressure: () => boolean;

  /** `underPressure`: whether waiting allocations are held back now. */
  constructor(underPressure: () => boolean) {
    this.#underPressure = underPressure;
  }

  /** Waiters now (a field, read on every deallocation). */
  count = 0;

  /**
   * Waits up to `timeoutMs` for `attempt` to give a result; rejects with
   * `timedOut()` (the caller's AllocationError("timeout"), saying why the
   * last try failed), or with whatever `attempt` throws.
   */
  wait<T>(attempt: Attempt<T>, timeoutMs: number, timedOut: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { attempt, resolve, reject, timer: null, timedOut };
      if (timeoutMs !== Infinity) {
        waiter.timer = setLongTimeout(() => {
          if (!this.#remove(waiter as Waiter<unknown>)) return;
          reject(timedOut());
        }, timeoutMs);
      }
      this.#waiters.push(waiter as Waiter<unknown>);
      this.count = this.#waiters.length;
      this.#watchPressure();
    });
  }

  /** Memory may have come back: every waiter retries, in the order they came, in a microtask. */
  wake(): void {
    if (this.#scheduled || this.#waiters.length === 0) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#retry();
    });
  }

  /** Rejects every waiter with `error` (the interface was disposed). */
  rejectAll(error: () => unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    this.count = 0;
    this.#stopPoll();
    for (const w of waiters) {
      w.timer?.cancel();
      w.reject(error());
    }
  }

  #retry(): void {
    for (const w of [...this.#waiters]) {
      if (!this.#waiters.includes(w)) continue; // a timeout took it meanwhile
      let value: unknown;
      try {
        value = w.attempt();
      } catch (error) {
        this.#remove(w);
        w.reject(error);
        continue;
      }
      if (value === null) continue;
      this.#remove(w);
      w.resolve(value);
    }
    this.#watchPressure();
  }

  #remove(w: Waiter<unknown>): boolean {
    const at = this.#waiters.indexOf(w);
    if (at < 0) return false;
    this.#waiters.splice(at, 1);
    this.count = this.#waiters.length;
    w.timer?.cancel();
    if (this.#waiters.length === 0) this.#stopPoll();
    return true;
  }

  // While waiters are held back by pressure, look at the level every PRESSURE_POLL_MS; it keeps the process
  // alive as the waiters' own timeouts do (a program awaiting an allocation is not done).
  #watchPressure(): void {
    if (this.#poll !== null || this.#waiters.length === 0 || !this.#underPressure()) return;
    this.#poll = setInterval(() => {
      if (this.#underPressure()) return;
      this.#stopPoll();
      this.#retry();
    }, PRESSURE_POLL_MS);
  }

  #stopPoll(): void {
    if (this.#poll !== null) clearInterval(this.#poll);
    this.#poll = null;
  }
}
