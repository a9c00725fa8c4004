// Milliseconds since the epoch, read once per task: `Date.now()` costs ~50 ns in
// Deno, more than the rest of a checked pair. A block's age is therefore counted
// from the start of the task (or of the last 256 allocations) that allocated it.
let now = 0;
let stale = true;
let uses = 0;
const markStale = () => {
  stale = true;
};

/** A clock good to the task: the time the current task started, or a little later. */
export function taskClock(): number {
  if (stale || (++uses & 255) === 0) {
    now = Date.now();
    if (stale) {
      stale = false;
      queueMicrotask(markStale);
    }
  }
  return now;
}
