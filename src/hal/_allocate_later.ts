// allocateAsync's decision: serve the request now, fail now, or wait in the
// queue. With timeoutMs 0 (no wait) it is allocate's answer, at once: memory
// pressure defers only a request that may wait (there is nothing to defer a
// request into without one). With a timeout it waits only for what waiting
// can cure (a budget or an allocator without room now, pressure at High or
// above); a request that can never be served fails at once.
import { AllocationError } from "../base/errors.ts";
import type { Allocation } from "./_allocation.ts";
import { type Request, T_SHARED, TYPES } from "./_request.ts";
import { candidateTypes, type Failure, neverServed } from "./_serve.ts";
import type { WaitQueue } from "./_wait_queue.ts";
import type { MemoryAllocation } from "./memory_types.ts";
import { byteCount } from "./_words.ts";

/** What allocateLater needs from the interface. */
export interface LaterContext {
  /** Throws "use-after-free" once the interface is disposed. */
  usable(): void;
  /** Whether pressure holds waiting allocations back now. */
  heldBack(): boolean;
  /**
   * Why pressure held the request back at the end of its wait (after "Cannot allocate <what> within <n> ms: "):
   * `throughout` when it held back every try.
   */
  heldBackReason(throughout: boolean): string;
  /** One try: the allocation (indexed), or why not. */
  serve(): Allocation | Failure;
  /** Whether a wait could ever serve the request (some candidate's budget and allocator could hold it). */
  mayFit(): boolean;
  /** The memory the process may use (`MemoryInterface.platform.totalBytes`; Infinity when unknown). */
  platformBytes: number;
  waiters: WaitQueue;
}

/** The advice a failure of allocateAsync gives about waiting, with no timeout and with one. */
const NO_WAIT = "pass a timeoutMs to wait for memory to be freed";
const LONGER_WAIT = "pass a longer timeoutMs";

/** Serves `req` now or within its `timeoutMs`. */
export function allocateLater(req: Request, context: LaterContext): Promise<MemoryAllocation> {
  if (req.timeoutMs === 0) {
    // No wait allowed: exactly what allocate(request) would do, as a promise (pressure does not refuse it).
    let result: Allocation | Failure;
    try {
      context.usable();
      result = context.serve();
    } catch (error) {
      return Promise.reject(error);
    }
    return "retryable" in result ? Promise.reject(result.error(NO_WAIT)) : Promise.resolve(result);
  }
  // A request no wait can serve (above one view) fails at once, also under pressure: holding it back would
  // only delay its refusal by the whole timeout.
  const never = neverServed(req);
  if (never !== null) return Promise.reject(never.error(LONGER_WAIT));
  // More than the process may ever use (a shared mapping is sparse: it may be larger): a try that fails for want
  // of memory fails for good, and the request does not queue behind others, nor hold them back.
  const beyond = req.type !== T_SHARED && req.size > context.platformBytes;
  let last: Failure | null = null;
  let heldLast = false, passedPressure = false;
  const attempt = (): MemoryAllocation | null => {
    context.usable();
    if (context.heldBack()) {
      heldLast = true;
      return null;
    }
    heldLast = false;
    passedPressure = true;
    const result = context.serve();
    if (!("retryable" in result)) return result;
    if (!result.retryable) throw result.error(LONGER_WAIT);
    if (beyond) throw beyondPlatform(req, context.platformBytes, result.error(NO_WAIT));
    last = result;
    return null;
  };
  const what = `${byteCount(req.size)} of ${TYPES[req.type]} memory`;
  const types = candidateTypes(req);
  let queued = false; // it waited behind earlier requests from the start (see below)
  const timedOut = (): Error => {
    const failed = last as Failure | null;
    if (queued && !heldLast && !passedPressure) {
      // Never tried: earlier waiters for one of its types held it back the whole wait.
      const names = TYPES.filter((_, t) => (types & (1 << t)) !== 0).join(" or ");
      const why = `earlier allocateAsync requests that may use ${names} memory waited ahead of it and could not ` +
        "be served in that time (waiting requests are served in the order they came, so that small ones never " +
        "starve a large one); free memory, or pass a longer timeoutMs";
      const cause = new AllocationError("limit-exceeded", `Cannot allocate ${what}: ${why}`);
      return new AllocationError("timeout", `Cannot allocate ${what} within ${req.timeoutMs} ms: ${why}`, { cause });
    }
    if (heldLast || failed === null) {
      const why = context.heldBackReason(!passedPressure);
      const cause = new AllocationError("out-of-memory", `Cannot allocate ${what}: ${why}`);
      return new AllocationError("timeout", `Cannot allocate ${what} within ${req.timeoutMs} ms: ${why}`, { cause });
    }
    const cause = failed.error(LONGER_WAIT);
    const detail = failed.detail(LONGER_WAIT);
    // detail starts with `what` (and the allocator when there was one candidate): the wait goes after it.
    const colon = detail.indexOf(": ");
    return new AllocationError(
      "timeout",
      `Cannot allocate ${detail.slice(0, colon)} within ${req.timeoutMs} ms${detail.slice(colon)}`,
      { cause },
    );
  };
  // Under pressure a request that may wait waits from the start: "defer non-critical allocations". Behind a
  // waiter that may be served from one of its types it waits too, rather than overtake it (see WaitQueue),
  // unless no wait could ever serve it: then its try fails at once, as without waiters.
  const deferred = context.heldBack();
  queued = !deferred && !beyond && context.waiters.waitingFor(types) && context.mayFit();
  if (!deferred && !queued) {
    let first: MemoryAllocation | null;
    try {
      first = attempt();
    } catch (error) {
      return Promise.reject(error);
    }
    if (first !== null) return Promise.resolve(first);
  }
  return context.waiters.wait(attempt, req.timeoutMs, timedOut, types);
}

/** The refusal of a request larger than all the memory the process may use, after a try failed: no wait helps. */
function beyondPlatform(req: Request, platformBytes: number, cause: Error): AllocationError {
  return new AllocationError(
    "out-of-memory",
    `Cannot allocate ${byteCount(req.size)} of ${TYPES[req.type]} memory: it is more than the ${
      byteCount(platformBytes)
    } this process may use (memory.platform.totalBytes: its cgroup limit, else the machine's memory), so no ` +
      "wait can serve it: allocate less, or reserve address space with mapPages(size) and use it through windows",
    { cause },
  );
}
