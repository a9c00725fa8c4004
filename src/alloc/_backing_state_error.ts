// One wording for an allocator whose backing refused it for the backing's own state (disposed, lost its memory,
// busy), shared by the chunked allocators (_chunks.ts) and the DebugAllocator: the backing's own message
// ("Cannot allocate: the Arena was disposed") read as if the allocator the program called were the one disposed.
import { allocatorName } from "../base/_allocator_name.ts";
import { AllocationError } from "../base/errors.ts";
import { backingPhrase } from "./_backing_phrase.ts";
import { describeForeign, ownDataOf, plainAllocationError, thrownCategory, thrownMessage } from "./_thrown.ts";

/**
 * "The <owner> cannot <what>: its backing, <an Arena>, <why>" for `error`, what `backing` threw when `owner` (a
 * class name) asked it to `what` ("take a 1048576-byte chunk"). <why> is the backing's own end when its message
 * is a memkit allocator's ("Cannot <op>: the <ClassName> <why>", as Ledger.usedAfterEnd says it), else
 * "refused it: <its message>". The category, call and errno stay the backing's, and its error is the cause.
 *
 * `error` is an AllocationError by its prototype chain (the caller checked it with thrownCategory), but it was
 * thrown by code of the program's and this runs in the middle of the owner's operation: its category, message,
 * call and errno are read as data (see _thrown.ts), so an accessor put on it runs nothing. One whose message is
 * not data is described by its kind ("refused it: AllocationError").
 */
export function backingStateError(
  owner: string,
  what: string,
  backing: unknown,
  error: AllocationError,
): AllocationError {
  const plain = plainAllocationError(error);
  const message = plain !== null ? plain.message : thrownMessage(error);
  const name = allocatorName(backing);
  const named = /^[A-Za-z_$][\w$]*$/.test(name); // a class name (not "a Proxy", a quoted or a given name)
  const why = named && message !== null ? message.match(/^Cannot [^:]*: the ([A-Za-z_$][\w$]*) (.+)$/s) : null;
  const state = why !== null && why[1] === name ? why[2] : `refused it: ${message || describeForeign(error)}`;
  const call = ownDataOf(error, "call");
  const errno = ownDataOf(error, "errno");
  return new AllocationError(
    thrownCategory(error) ?? "corruption",
    `The ${owner} cannot ${what}: ${backingPhrase("its", backing)} ${state}`,
    {
      cause: error,
      call: typeof call === "string" ? call : undefined,
      errno: typeof errno === "number" ? errno : undefined,
    },
  );
}
