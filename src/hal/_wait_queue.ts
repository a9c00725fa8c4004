// allocateAsync's waiting room. A waiter retries its allocation when memory
// may have come back (a deallocate, the end of a frame: `wake()`), and, while
// it is held back by memory pressure, when the pressure level falls (a poll
// of the monitor's level, which the monitor itself updates on its own timer).
// Retries run in a microtask, never inside the deallocate that woke them.
//
// Waiters are served in the order they came among those that compete for a
// memory type (the fair-semaphore rule): each names the types it may be
// served from (a bit per type index), and one still waiting holds back every
// later waiter that shares a type with it, which are then not even tried
// (so a stream of small requests cannot take, piece by piece, the room a
// large one waits for). A waiter that leaves (served, timed out, failed for
// good) lets the ones it held back try again.
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
  /** The memory types it may be served from, a bit per type index. */
  types: number;
  /** It left the line (served, timed out, failed for good, rejected at dispose): its entry is skipped. */
  gone: boolean;
}

/** How often a waiter held back by pressure looks at the level again. */
const PRESSURE_POLL_MS = 20;

// The line is an array in arrival order whose entries leave by being marked gone, in O(1) (every timeout
// leaves and wakes the line: with a search and splice per leave, and per waiter per retry, thousands of waiters
// settled seconds past their timeout). Invariants: `count` is its entries not gone; those before `#head` are all
// gone; it is compacted once more than half of it is gone, so a walk over it costs O(count) at most.
export class WaitQueue {
  #waiters: Waiter<unknown>[] = [];
  /** Entries before it are gone. */
  #head = 0;
  /** Entries gone, not compacted yet. */
  #gone = 0;
  /** The union of the types of every waiter since the line was last empty (at least those of the waiters now). */
  #types = 0;
  #scheduled = false;
  #poll: ReturnType<typeof setInterval> | null = null;
  readonly #underPressure: () => boolean;
  readonly #counted: (count: number) => void;

  /**
   * `underPressure`: whether waiting allocations are held back now; `counted(n)`: told of every change of
   * `count` (the interface folds it into the one field its deallocations read, see Books.attention).
   */
  constructor(underPressure: () => boolean, counted: (count: number) => void = () => {}) {
    this.#underPressure = underPressure;
    this.#counted = counted;
  }

  /** Waiters now. */
  count = 0;

  /**
   * Waits up to `timeoutMs` for `attempt` to give a result; rejects with
   * `timedOut()` (the caller's AllocationError("timeout"), saying why the
   * last try failed), or with whatever `attempt` throws.
   */
  wait<T>(attempt: Attempt<T>, timeoutMs: number, timedOut: () => Error, types: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { attempt, resolve, reject, timer: null, timedOut, types, gone: false };
      if (timeoutMs !== Infinity) {
        waiter.timer = setLongTimeout(() => {
          if (!this.#remove(waiter as Waiter<unknown>)) return;
          reject(timedOut());
          this.wake(); // the waiters it held back may be served now
        }, timeoutMs);
      }
      this.#waiters.push(waiter as Waiter<unknown>);
      this.#types |= types;
      this.#counted(++this.count);
      this.#watchPressure();
    });
  }

  /** Whether a waiter that may be served from one of `types` (bits per type index) is waiting: a new request queues behind it. */
  waitingFor(types: number): boolean {
    if ((this.#types & types) === 0) return false;
    const waiters = this.#waiters;
    for (let i = this.#skipGone(); i < waiters.length; i++) {
      const w = waiters[i];
      if (!w.gone && (w.types & types) !== 0) return true;
    }
    return false;
  }

  /**
   * Memory may have come back: the waiters retry in the order they came, in a microtask (those held back by
   * an earlier waiter of one of their types do not).
   */
  wake(): void {
    if (this.#scheduled || this.count === 0) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#retry();
    });
  }

  /** Rejects every waiter with `error` (the interface was disposed). */
  rejectAll(error: () => unknown): void {
    const waiters = this.#waiters;
    this.#empty();
    this.#counted(this.count = 0);
    this.#stopPoll();
    for (const w of waiters) {
      if (w.gone) continue;
      w.gone = true; // a retry under way skips it
      w.timer?.cancel();
      w.reject(error());
    }
  }

  #retry(): void {
    // The types a waiter still waiting (tried or held back) claims: later waiters of those types are held back.
    let claimed = 0;
    // The line as it is now (a compaction meanwhile makes a new array; waiters that come meanwhile are not tried).
    const waiters = this.#waiters, end = waiters.length;
    for (let i = this.#skipGone(); i < end; i++) {
      const w = waiters[i];
      if (w.gone) continue; // served, timed out or failed meanwhile
      // Every type any waiter may still be served from is claimed: the rest are all held back.
      if ((this.#types & ~claimed) === 0) break;
      if ((w.types & claimed) !== 0) {
        claimed |= w.types;
        continue;
      }
      let value: unknown;
      try {
        value = w.attempt();
      } catch (error) {
        this.#remove(w);
        w.reject(error);
        continue;
      }
      if (value === null) {
        claimed |= w.types;
        continue;
      }
      this.#remove(w);
      w.resolve(value);
    }
    this.#watchPressure();
  }

  #remove(w: Waiter<unknown>): boolean {
    if (w.gone) return false;
    w.gone = true;
    this.#counted(--this.count);
    w.timer?.cancel();
    if (this.count === 0) {
      this.#empty();
      this.#stopPoll();
    } else if (++this.#gone > this.count) {
      this.#waiters = this.#waiters.filter((x) => !x.gone);
      this.#head = 0;
      this.#gone = 0;
    }
    return true;
  }

  /** The index of the first entry not gone (or the end), skipping the gone ones at the head once. */
  #skipGone(): number {
    const waiters = this.#waiters;
    let head = this.#head;
    while (head < waiters.length && waiters[head].gone) head++;
    return this.#head = head;
  }

  #empty(): void {
    this.#waiters = [];
    this.#head = 0;
    this.#gone = 0;
    this.#types = 0;
  }

  // While waiters are held back by pressure, look at the level every PRESSURE_POLL_MS; it keeps the process
  // alive as the waiters' own timeouts do (a program awaiting an allocation is not done).
  #watchPressure(): void {
    if (this.#poll !== null || this.count === 0 || !this.#underPressure()) return;
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
