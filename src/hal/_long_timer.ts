// A timeout of any length. setTimeout takes at most 2^31-1 ms (about 24.8 days): Deno, Bun and Node turn a
// longer delay into 1 ms (with a TimeoutOverflowWarning), so a wait of 2^31 ms would time out at once.
// A longer wait is a chain of timers, each at most that long, towards one deadline.

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending long timeout; `cancel()` stops it (and is safe to call after it fired). */
export interface LongTimer {
  cancel(): void;
}

/**
 * Calls `fire` once, `ms` milliseconds from now (a finite number from 0), however long that is.
 * `step` (tests only) is the longest single timer.
 */
export function setLongTimeout(fire: () => void, ms: number, step = MAX_TIMER_MS): LongTimer {
  const deadline = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const arm = (left: number) => {
    timer = left > step ? setTimeout(() => arm(deadline - performance.now()), step) : setTimeout(() => {
      timer = null;
      fire();
    }, Math.max(0, left));
  };
  arm(ms);
  return {
    cancel() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}
