// One wording for an allocator whose backing refused it for the backing's own state (disposed, lost its memory,
// busy), shared by the chunked allocators (_chunks.ts) and the DebugAllocator: the backing's own message
// ("Cannot allocate: the Arena was disposed") read as if the allocator the program called were the one disposed.
import { allocatorName } from "../base/_allocator_name.ts";
import { AllocationError } from "../base/errors.ts";
import { backingPhrase } from "./_backing_phrase.ts";

/**
 * "The <owner> cannot <what>: its backing, <an Arena>, <why>" for `error`, what `backing` threw when `owner` (a
 * class name) asked it to `what` ("take a 1048576-byte chunk"). <why> is the backing's own end when its message
 * is a memkit allocator's ("Cannot <op>: the <ClassName> <why>", as Ledger.usedAfterEnd says it), else
 * "refused it: <its message>". The category, call and errno stay the backing's, and its error is the cause.
 */
export function backingStateError(
  owner: string,
  what: string,
  backing: unknown,
  error: AllocationError,
): AllocationError {
  const name = allocatorName(backing);
  const plain = /^[A-Za-z_$][\w$]*$/.test(name); // a class name (not "a Proxy", a quoted or a given name)
  const why = plain ? error.message.match(/^Cannot [^:]*: the ([A-Za-z_$][\w$]*) (.+)$/s) : null;
  const state = why !== null && why[1] === name ? why[2] : `refused it: ${error.message}`;
  return new AllocationError(
    error.category,
    `The ${owner} cannot ${what}: ${backingPhrase("its", backing)} ${state}`,
    { cause: error, call: error.call, errno: error.errno },
  );
}
