// allocateAsync's decision: serve the request now, fail now, or wait in the
// queue. It waits only for what waiting can cure (a budget or an allocator
// without room now, pressure at High or above), and only when timeoutMs
// allows; a request that can never be served fails at once.
import type { Allocation } from "./_allocation.ts";
import type { Request } from "./_request.ts";
import type { Failure } from "./_serve.ts";
import type { WaitQueue } from "./_wait_queue.ts";
import type { MemoryAllocation } from "./memory_types.ts";

/** What allocateLater needs from the interface. */
export interface LaterContext {
  /** Throws "use-after-free" once the interface is disposed. */
  usable(): void;
  /** Whether pressure holds waiting allocations back now. */
  heldBack(): boolean;
  /** Why pressure held one back, for its timeout. */
  heldBackError(): Error;
  /** One try: the allocation (indexed), or why not. */
  serve(): Allocation | Failure;
  waiters: WaitQueue;
}

/** Serves `req` now or within its `timeoutMs`. */
export function allocateLater(req: Request, context: LaterContext): Promise<MemoryAllocation> {
  let last: Failure | null = null;
  const attempt = (): MemoryAllocation | null => {
    context.usable();
    if (context.heldBack()) return null;
    const result = context.serve();
    if (!("retryable" in result)) return result;
    if (!result.retryable) throw result.error();
    last = result;
    return null;
  };
  const reason = () => (last as Failure | null)?.error() ?? context.heldBackError();
  // Under pressure a request that may wait waits from the start: "defer non-critical allocations".
  if (req.timeoutMs === 0 || !context.heldBack()) {
    let first: MemoryAllocation | null;
    try {
      first = attempt();
    } catch (error) {
      return Promise.reject(error);
    }
    if (first !== null) return Promise.resolve(first);
    if (req.timeoutMs === 0) return Promise.reject(reason());
  }
  return context.waiters.wait(attempt, req.timeoutMs, reason);
}
