// Resizing a DebugAllocator's block. Moving it (a new block, a copy, the old
// one freed) catches stale pointers best, so it comes first; a backing that
// can only resize in place (a stack) gets its own resize for its top block,
// and any backing gets it when a move is impossible (the old block refused
// out of order, or no room for a new one). A failure leaves the block, its
// view, the counters and the backing as they were (rule 5). The block's
// holders are told once it has moved or changed (DebugHeap.tellFreed), inside
// the change the caller opened (beginChange), so what they give back waits
// until the caller has read the result.
import { intrinsic } from "../../ffi/boundary.ts";
import { AllocationError } from "../base/errors.ts";
import { backingStateError } from "../alloc/_backing_state_error.ts";
import { backingPhrase } from "../alloc/_backing_phrase.ts";
import { describeForeign, isInstance, plainAllocationError, thrownMessage } from "../alloc/_thrown.ts";
import { beginTake, endTake } from "../base/_native_census.ts";
import { armBlock, bytesOf, CANARY, FRESH_BYTE } from "./_block_layout.ts";
import type { DebugHeap } from "./_debug_heap.ts";
import { badBlockError } from "./_misuse.ts";
import { leaseAgain, leaseOuter, unlease } from "./_block_leases.ts";

/**
 * Resizes live `slot` of `heap` to `newSize` > 0 bytes; returns the block's
 * slot (a new one when it moved). With `dress`, `heap.lastView` is the view
 * to hand out (the old one then reads as length 0). `entry` and `depth` are
 * for the trace of a new block (see _traces.ts). Call it between beginChange
 * and endChange, with `heap.lastView` (or the new slot's address) read before
 * endChange: holders told of the move give their other blocks back then.
 * @throws {AllocationError} "limit-exceeded" (before the backing is asked), "out-of-memory", or the backing's own
 *   refusal said about the backing (its category kept, its error the cause); "use-after-free" when code the
 *   backing ran released the block's memory meanwhile.
 */
export function resizeBlock(
  heap: DebugHeap,
  slot: number,
  newSize: number,
  dress: boolean,
  entry: unknown,
  depth: number,
): number {
  const blocks = heap.blocks;
  const ledger = heap.ledger;
  heap.checkKept(slot, "resize"); // a move or the backing's resize would give that memory back
  const oldSize = blocks.sizes[slot];
  if (ledger.allocatedBytes - oldSize + newSize > heap.limit) {
    heap.failLimit();
    throw ledger.failure(newSize);
  }
  const inPlaceFirst = heap.lifo && slot === heap.top;
  const first = inPlaceFirst ? resizeInPlace(heap, slot, newSize, dress) : null;
  if (inPlaceFirst && first === null) return slot;
  // No answer an Allocator gives (nothing has changed yet): said now, not hidden by a move that works.
  if (first !== null && isForeign(first.thrown)) throw foreignError(heap, oldSize, newSize, first.thrown);
  const top = heap.top;
  // Where a traced block was moved from, captured before anything changes (see _traces.ts).
  const freedTrace = heap.safety && blocks.traces[slot] !== null ? heap.tracer.capture(entry, depth + 1) : null;
  const id = blocks.ids[slot];
  const address = blocks.addresses[slot];
  const fresh = heap.take(newSize, blocks.aligns[slot], entry, depth + 1);
  if (blocks.ids[slot] !== id) {
    // Code the backing ran released the old block's memory (it was retired): the resize fails as a free of it would.
    if (fresh >= 0) heap.discard(fresh);
    throw releasedMeanwhile(heap, address, oldSize, "the block");
  }
  if (fresh < 0) {
    const refusal = inPlaceFirst ? first! : resizeInPlace(heap, slot, newSize, dress);
    if (refusal === null) return slot;
    const { thrown } = refusal;
    if (isForeign(thrown)) throw foreignError(heap, oldSize, newSize, thrown);
    const own = plainAllocationError(thrown);
    if (own !== null && own.category !== "out-of-memory" && own.category !== "limit-exceeded") {
      throw inPlaceError(heap, oldSize, newSize, own);
    }
    ledger.fail("out-of-memory", heap.intake.refusal, heap.intake.cause);
    throw ledger.failure(newSize);
  }
  const old = heap.userBytes(slot);
  intrinsic.set(
    heap.userBytes(fresh),
    intrinsic.uint8Array(intrinsic.bufferOf(old), intrinsic.offsetOf(old), Math.min(oldSize, newSize)),
  );
  const freshId = blocks.ids[fresh];
  const freshAddress = blocks.addresses[fresh];
  const peak = ledger.peakBytes;
  ledger.allocated(newSize); // counted before the backing's free runs: its code may retire the new block
  let view: Uint8Array<ArrayBuffer> | null = null;
  const oldBuffer = blocks.hosts[slot]?.buffer ?? null;
  let held = false;
  try {
    if (dress) view = heap.dress(fresh);
    // Checked again: the backing's take() above may have run code that transferred the old block's buffer
    // (then the old block stays allocated in the backing for good).
    if (!heap.mustKeep(slot)) held = heap.giveBack(slot);
  } catch (error) {
    // The backing's code ended the heap meanwhile: its end let go of both blocks and counted them.
    if (ledger.ended !== null) throw error;
    ledger.retract(newSize, peak);
    // A backing that frees only in LIFO order refuses the old block while the
    // new one is above it (or the new view could not be made): undo, then
    // let the backing resize the old block itself.
    heap.discard(fresh);
    heap.top = top;
    if (inPlaceFirst) throw error;
    const refusal = resizeInPlace(heap, slot, newSize, dress);
    if (refusal === null) return slot;
    const { thrown } = refusal;
    if (isForeign(thrown)) throw foreignError(heap, oldSize, newSize, thrown);
    // The backing's own reason is the clearer one (a stack: "only the top block can change size"), said about
    // the backing: its message names its own block (the user's with its canaries) and its own call.
    const own = plainAllocationError(thrown);
    throw own !== null ? inPlaceError(heap, oldSize, newSize, own) : error;
  }
  // The backing's code ended the heap while it took the old block back: its end let go of both blocks.
  if (ledger.ended !== null) throw ledger.usedAfterEnd("resize");
  heap.forget(slot, freedTrace, true);
  ledger.freed(oldSize);
  heap.tellFreed(address, oldSize, "DebugAllocator.resize() moved it", held ? oldBuffer : null);
  // Code a holder ran ended the heap (it released the backing's memory): the new block went with it.
  if (ledger.ended !== null) throw ledger.usedAfterEnd("resize");
  if (blocks.ids[fresh] !== freshId) {
    // Its code released the new block's memory meanwhile (retired, and counted as freed): nothing to hand out.
    throw releasedMeanwhile(heap, freshAddress, newSize, "the new block");
  }
  heap.lastView = view;
  return fresh;
}

// A block retired while the backing served a resize (code it ran released that memory): "use-after-free", naming
// the release when it is recorded.
function releasedMeanwhile(heap: DebugHeap, address: number, size: number, which: string): AllocationError {
  const why = heap.records.byAddress(address)?.releasedBy ?? null;
  return new AllocationError(
    "use-after-free",
    `Cannot resize the ${size}-byte block at 0x${address.toString(16)}: ${which}'s memory was released while ` +
      `the backing served the resize${why === null ? "" : ` (${why})`}`,
  );
}

// Whether what the backing's resize threw is no answer an Allocator gives: not a plain AllocationError (its
// category, message, call and errno its own data), a RangeError or a TypeError. Read without running its code.
function isForeign(thrown: unknown): boolean {
  return plainAllocationError(thrown) === null && !isInstance(thrown, RangeError) && !isInstance(thrown, TypeError);
}

// What the backing's resize threw when it is no answer an Allocator gives (see isForeign): "corruption", as the
// same from its tryAlloc is (see BackingIntake.refused), the value its cause.
function foreignError(heap: DebugHeap, oldSize: number, newSize: number, thrown: unknown): AllocationError {
  return new AllocationError(
    "corruption",
    `The DebugAllocator cannot resize a ${oldSize}-byte block to ${newSize} bytes: ${
      backingPhrase("its", heap.backing)
    } threw ${describeForeign(thrown)} (the cause), but an Allocator's resize returns a block or throws an ` +
      "AllocationError, RangeError or TypeError to refuse",
    { cause: thrown },
  );
}

// The backing's refusal to resize a block in place, said about the backing (its category kept, its error the cause).
function inPlaceError(heap: DebugHeap, oldSize: number, newSize: number, error: AllocationError): AllocationError {
  return backingStateError(
    "DebugAllocator",
    `resize a ${oldSize}-byte block to ${newSize} bytes`,
    heap.backing,
    error,
  );
}

/** What a backing's resize threw (any value: a Symbol, null, a Proxy...), to be read without running its code. */
interface Refusal {
  readonly thrown: unknown;
}

/**
 * The backing's own resize of `slot`'s outer block: null when it worked
 * (the old view then reads as length 0), or what the backing threw, with
 * nothing changed. A refusal for want of room (a plain AllocationError, a
 * RangeError or TypeError) is recorded in the intake, its message read as
 * data (see _thrown.ts: the value runs no code of the program's here).
 */
export function resizeInPlace(heap: DebugHeap, slot: number, newSize: number, dress: boolean): Refusal | null {
  const blocks = heap.blocks;
  const front = blocks.fronts[slot];
  const need = front === 0 ? newSize : front + newSize + CANARY;
  let outer: unknown;
  if (heap.leasing) unlease(heap, slot); // its own resize must not revoke its lease
  heap.busy = slot;
  const previous = beginTake(heap.census);
  const calling = heap.ledger.busy();
  try {
    outer = heap.backing.resize(blocks.outers[slot]!, need);
  } catch (error) {
    if (heap.leasing) leaseAgain(heap, slot);
    const own = plainAllocationError(error);
    if (own !== null) heap.intake.refuse(own.message, own);
    else if (isInstance(error, RangeError) || isInstance(error, TypeError)) {
      heap.intake.refuse(
        `${backingPhrase("the", heap.backing)} cannot resize a block to ${need} bytes: ${
          thrownMessage(error) ?? describeForeign(error)
        }`,
        undefined,
      );
    }
    return { thrown: error };
  } finally {
    endTake(previous);
    heap.busy = -1;
    if (calling) heap.ledger.idle();
  }
  // The backing's code ended the heap meanwhile: its teardown let go of the block; the resize fails as any use after
  // the end does.
  if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("resize");
  const align = blocks.aligns[slot];
  const problem = heap.intake.check(outer, need, align);
  if (problem !== null) {
    if (heap.leasing) leaseAgain(heap, slot); // the old block, as it was
    throw badBlockError(heap.backing, need, align, problem);
  }
  const host = heap.intake.host!;
  const user = heap.intake.offset + front;
  const address = host.base + user;
  const oldAddress = blocks.addresses[slot];
  const oldSize = blocks.sizes[slot];
  if (heap.detach) heap.detachOwn(slot, null, null, true);
  const indexed = heap.index.size !== 0 && heap.index.delete(oldAddress);
  blocks.outers[slot] = outer as Uint8Array<ArrayBuffer>; // check() refused a shared buffer
  blocks.hosts[slot] = host;
  blocks.userOffsets[slot] = user;
  blocks.addresses[slot] = address;
  blocks.sizes[slot] = newSize;
  if (front === 0 || !armBlock(host, user, front, newSize, slot, blocks.ids[slot]) || indexed) {
    heap.index.set(address, slot);
  }
  if (heap.poison && newSize > oldSize) intrinsic.fill(bytesOf(host), FRESH_BYTE, user + oldSize, user + newSize);
  heap.ledger.resized(oldSize, newSize);
  // Its holders: moved or not, the memory they hold changed under them (a shrink gave some of it back).
  const reason = address !== oldAddress ? "DebugAllocator.resize() moved it" : "DebugAllocator.resize() changed it";
  heap.tellFreed(oldAddress, oldSize, reason, null);
  // Code a holder ran ended the heap (it released the backing's memory): the block went with it.
  if (heap.ledger.ended !== null) throw heap.ledger.usedAfterEnd("resize");
  if (heap.leasing) leaseOuter(heap, slot);
  heap.lastView = dress ? heap.dress(slot) : null;
  return null;
}
