// What one ArrayBuffer may hold in this runtime (nativeInfo().maxViewBytes: 4 GiB in Bun, no limit below
// 2^47 in Deno). Memory that must be handed out as one view (an allocation's bytes, a buffer's, a heap's
// block) above it could be mapped but never used: such sizes are refused before anything is mapped, in the
// words the pages family uses for its own views. The HAL and the budget family use it.
import { native } from "../../ffi/native.ts";
import { AllocationError } from "./errors.ts";

const RUNTIME = native.runtime === "deno" ? "Deno" : "Bun";

/**
 * The `AllocationError("unsupported")` for `bytes` above what one ArrayBuffer holds here, or null when it
 * holds them.
 *
 * @param op What was refused ("allocate audio memory").
 * @param what What needs the bytes in one view ("the allocation").
 * @param instead What to do instead.
 */
export function viewLimitError(bytes: number, op: string, what: string, instead: string): AllocationError | null {
  if (bytes <= native.maxViewBytes) return null;
  return new AllocationError(
    "unsupported",
    `Cannot ${op} as ${what} needs ${bytes} bytes in one view: ${RUNTIME} allows at most ${native.maxViewBytes} ` +
      `bytes per ArrayBuffer (nativeInfo().maxViewBytes); ${instead}`,
  );
}

/** Throws {@linkcode viewLimitError}'s error when `bytes` is more than one ArrayBuffer holds here. */
export function checkViewLimit(bytes: number, op: string, what: string, instead: string): void {
  const error = viewLimitError(bytes, op, what, instead);
  if (error !== null) throw error;
}
