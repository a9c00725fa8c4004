// The budget family's objects are used through one view over all their memory (a PurgeableBuffer's bytes, a
// frame's bytes, a ResourceHeap's block): a size above what one ArrayBuffer may hold in this runtime
// (nativeInfo().maxViewBytes: 4 GiB in Bun, no limit below 2^47 in Deno) could be mapped but never used.
// Such sizes are refused before anything is mapped, in the words the pages family uses for its own views.
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../base/errors.ts";

const RUNTIME = native.runtime === "deno" ? "Deno" : "Bun";

/**
 * Throws `AllocationError("unsupported")` when `bytes` is more than one ArrayBuffer holds here.
 *
 * @param op What was refused ("create PurgeableBuffer").
 * @param what What needs the bytes in one view ("the buffer").
 * @param instead What to do instead.
 */
export function checkViewLimit(bytes: number, op: string, what: string, instead: string): void {
  if (bytes <= native.maxViewBytes) return;
  throw new AllocationError(
    "unsupported",
    `Cannot ${op} as ${what} needs ${bytes} bytes in one view: ${RUNTIME} allows at most ${native.maxViewBytes} ` +
      `bytes per ArrayBuffer (nativeInfo().maxViewBytes); ${instead}`,
  );
}
