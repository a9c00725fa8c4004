// The hot paths of a DebugAllocator: alloc and free of a 16-aligned block
// with the checks on views of the backing's memory (the default options,
// also with traces), and alloc and free with counters only, each written
// flat in one function.
//
// Why flat: the general path (take, adopt, dress, locate, corruption,
// freeBlock, giveBack, forget in _debug_heap.ts) makes a dozen calls per
// pair that the JIT does not inline, and a flat version of the same checks
// measured about half the overhead (Deno, 64-byte pairs on a pool: 85 ns
// against 161 ns; untracked 28 ns). So these functions repeat what the
// general path does for the common case, in the same order, and hand
// anything else (a block without a header, a misuse, damaged canaries, a
// stale view, memory transferred away, a refusal, a bad block from the
// backing, any block of a backing without a lease table: see _block_leases.ts)
// to the general path BEFORE changing anything: the two paths check the same
// things and leave the same state. A free whose holders must hear of it (any
// lease on this heap's blocks, or on its backing's memory) is made by the
// general path's freeBlock, which tells them inside a change (see
// _debug_heap.ts): the flat paths test two counters and a flag for it
// (DebugHeap.mayTell), nothing more.
import { anyTaken } from "../base/_detach.ts";
import { bufferOf, lengthOf, offsetOf } from "../base/_validate.ts";
import { beginTake, endTake } from "../base/_native_census.ts";
import { alignedAt, armBack, backIntact, CANARY, CANARY_WORD } from "./_block_layout.ts";
import { blockLength } from "./_backing_intake.ts";
import type { DebugHeap } from "./_debug_heap.ts";
import { badBlockError } from "./_misuse.ts";
import { backingPhrase } from "../alloc/_backing_phrase.ts";
import { taskClock } from "./_task_clock.ts";
import { leaseOuter } from "./_block_leases.ts";
import type { Trace } from "./_traces.ts";

/**
 * `size` > 0 bytes aligned to 16 from a heap with `leanChecks`: the same
 * block, view and counts as `heap.allocBlock(size, 16, ...)`, or null with
 * the failure recorded. The caller has checked the arguments and that the
 * heap has not ended. `entry` and `depth` are as for `allocBlock`.
 * @throws {AllocationError} "corruption" when the backing returns a block it must not.
 */
export function allocChecked(
  heap: DebugHeap,
  size: number,
  entry: unknown,
  depth: number,
): Uint8Array<ArrayBuffer> | null {
  if (heap.ledger.allocatedBytes + size > heap.limit) return heap.failLimit();
  // The trace first: nothing has changed yet (see _traces.ts).
  const tracer = heap.tracer;
  const trace = tracer.frames > 0 && tracer.sampled(heap.nextId) ? tracer.capture(entry, depth + 1) : null;
  const need = size + 2 * CANARY; // front canary and header, user bytes, back canary
  let outer: unknown;
  const previous = beginTake(heap.census); // the census counts what the backing takes from the system for this heap
  const calling = heap.ledger.busy();
  try {
    outer = heap.backing.tryAlloc(need);
  } catch (error) {
    outer = heap.intake.refused(error, need);
  } finally {
    endTake(previous);
    if (calling) heap.ledger.idle();
  }
  if (heap.ledger.ended !== null) heap.endedWhileAsking(outer);
  let slot: number;
  if (outer === null) {
    // No room for canaries: an out-of-band block, as take() does.
    const plain = heap.intake.ask(size, undefined);
    if (plain === null) return heap.ledger.fail("out-of-memory", heap.intake.refusal, heap.intake.cause);
    slot = heap.adopt(plain, 0, size, 16, trace);
  } else if (blockLength(outer) < need) {
    slot = heap.adopt(outer, CANARY, size, 16, trace); // throws "corruption", naming what is wrong
  } else {
    const blocks = heap.blocks;
    // blockLength read its slot: a Uint8Array (over an ArrayBuffer, or refused below as `host.shared`).
    const block = outer as Uint8Array<ArrayBuffer>;
    // From the view's internal slots: a subclass's getters could name memory the backing never gave.
    const buffer = bufferOf(block);
    const offset = offsetOf(block);
    const host = heap.intake.hostOf(buffer);
    const user = offset + CANARY;
    const address = host.base + user;
    const words = host.words;
    const h = (user - CANARY) >>> 2;
    // A live block already at this place (a header there names it, or the address index) is memory handed out twice.
    let twin = -1;
    if (
      // A block to lease (a backing without a lease table: see _block_leases.ts) takes the general path too.
      heap.leasing || host.shared || offset + need > host.byteLength || !alignedAt(host, offset, 16) ||
      (user & 3) !== 0 || user + size + CANARY > words.length * 4 ||
      ((twin = words[h]) >= 0 && twin < blocks.end && blocks.hosts[twin] === host &&
        blocks.userOffsets[twin] === user) ||
      (heap.index.size !== 0 && (twin = heap.index.get(address)) >= 0 && blocks.ids[twin] !== 0 &&
        blocks.addresses[twin] === address)
    ) {
      // Anything unusual (including every bad block: adopt throws for it) takes the general path.
      slot = heap.adopt(outer, CANARY, size, 16, trace);
    } else {
      slot = blocks.take();
      const id = heap.nextId++;
      blocks.ids[slot] = id;
      blocks.addresses[slot] = address;
      blocks.sizes[slot] = size;
      blocks.userOffsets[slot] = user;
      blocks.aligns[slot] = 16;
      blocks.fronts[slot] = CANARY;
      blocks.born[slot] = taskClock();
      blocks.outers[slot] = block;
      blocks.hosts[slot] = host;
      // The header (slot, id, two canary words) and the back canary, as armBlock writes them.
      words[h] = slot;
      words[h + 1] = id | 0;
      words[h + 2] = CANARY_WORD;
      words[h + 3] = CANARY_WORD;
      armBack(host, user + size);
      if (heap.records.kept !== 0) heap.records.supersede(address); // an older generation lived here
      if (trace !== null) blocks.traces[slot] = trace;
      heap.top = slot;
      const view = new Uint8Array(host.buffer, user, size);
      blocks.handed[slot] = view;
      heap.ledger.allocated(size);
      return view;
    }
  }
  const view = heap.dress(slot);
  heap.ledger.allocated(size);
  return view;
}

/**
 * Frees `view` in a heap with `leanChecks` when it is the view handed out
 * for a live in-band block with intact canaries and nothing about it is
 * unusual: true. False when the general path must judge it; nothing has
 * changed then. The caller has checked that `view` is a view and that the
 * heap has not ended. What the backing's free throws goes to the caller,
 * and nothing has changed (as in freeBlock). `entry` and `depth` are for the
 * trace of where a traced block was freed.
 */
export function freeChecked(
  heap: DebugHeap,
  view: ArrayBufferView,
  reason: string,
  entry: unknown,
  depth: number,
): boolean {
  // A leased block's free ends its lease first: the general path does it.
  if (heap.leasing) return false;
  const host = heap.intake.knownHostOf(bufferOf(view));
  if (host === undefined) return false;
  // A detached view reads offset 0, which no in-band block has (its header comes first).
  const user = offsetOf(view);
  const words = host.words;
  if ((user & 3) !== 0 || user < CANARY || user > words.length * 4) return false;
  const h = (user - CANARY) >>> 2;
  const slot = words[h];
  const blocks = heap.blocks;
  if (
    !(slot >= 0 && slot < blocks.end && blocks.hosts[slot] === host && blocks.userOffsets[slot] === user &&
      (blocks.ids[slot] | 0) === words[h + 1]) ||
    view !== blocks.handed[slot] || // another view of the block: the general path checks its generation
    blocks.fronts[slot] !== CANARY || words[h + 2] !== CANARY_WORD || words[h + 3] !== CANARY_WORD ||
    !backIntact(host, user + blocks.sizes[slot]) || anyTaken()
  ) return false;
  if (heap.mayTell()) {
    // Holders may hear of it: checked as the flat path checked it, freed by the general path (see freeBlock).
    heap.freeBlock(slot, reason, entry, depth + 1);
    return true;
  }
  const size = blocks.sizes[slot];
  // Where a traced block was freed, captured before anything changes (see _traces.ts).
  const trace = blocks.traces[slot];
  const freedTrace = trace !== null ? heap.tracer.capture(entry, depth + 1) : null;
  heap.busy = slot; // a backing that reports its own free as a release must not retire this block
  const calling = heap.ledger.busy();
  try {
    heap.backing.free(blocks.outers[slot]!);
  } finally {
    heap.busy = -1;
    if (calling) heap.ledger.idle();
  }
  if (heap.ledger.ended !== null) return true; // the backing's code ended the heap meanwhile: its teardown counted all
  const address = blocks.addresses[slot];
  heap.records.noteFree(address, blocks.ids[slot], size, view, trace, freedTrace);
  if (heap.index.size !== 0) heap.index.delete(address);
  if (heap.top === slot) heap.top = -1;
  blocks.release(slot);
  heap.ledger.freed(size);
  return true;
}

/**
 * `size` > 0 bytes from a heap with counters only: the backing's own block
 * and view, recorded by address so that a free through any view of it counts
 * its real size (no canaries, no checks beyond the backing's own), or null
 * with the failure recorded. The caller has checked the arguments and that
 * the heap has not ended.
 * @throws {AllocationError} "corruption" when the backing returns something that is not a block of `size` bytes
 *   (not a Uint8Array, too short, not aligned to an `align` other than the backing's default that it was asked
 *   for, or at the first byte of a live block of this heap); nothing is recorded then.
 */
export function allocCounted(
  heap: DebugHeap,
  size: number,
  align: number,
  entry: unknown,
  depth: number,
): Uint8Array<ArrayBuffer> | null {
  // Small enough for the JIT to inline into alloc(): the rare outcomes are calls.
  if (heap.ledger.allocatedBytes + size > heap.limit) return heap.failLimit();
  const trace = heap.tracer.frames > 0 ? traceNext(heap, entry, depth + 1) : null; // before anything changes
  const outer = askCounted(heap, size, align);
  if (blockLength(outer) < size) return missCounted(heap, outer, size, align);
  // blockLength read its slot: a Uint8Array (over an ArrayBuffer, or refused below as `host.shared`).
  const block = outer as Uint8Array<ArrayBuffer>;
  // From the view's internal slots: a subclass's getters could name another block's place.
  const host = heap.intake.hostOf(bufferOf(block));
  const user = offsetOf(block);
  const address = host.base + user;
  // An alignment the backing was asked for and did not keep, or a live block's place (memory handed out twice,
  // which would take over that block's record): not a block this heap can count.
  if (
    host.shared || (align !== 16 && !alignedAt(host, user, align)) ||
    (heap.index.size !== 0 && heap.index.get(address) >= 0)
  ) {
    return missCounted(heap, outer, size, align);
  }
  const blocks = heap.blocks;
  const slot = blocks.take();
  const id = heap.nextId++;
  blocks.ids[slot] = id;
  blocks.addresses[slot] = address;
  blocks.sizes[slot] = size;
  blocks.userOffsets[slot] = user;
  blocks.aligns[slot] = align;
  // fronts[slot] stays 0: no block of a heap with counters only has canaries (nothing writes another value there).
  blocks.born[slot] = taskClock();
  blocks.outers[slot] = block;
  blocks.hosts[slot] = host;
  heap.index.set(address, slot);
  if (trace !== null) blocks.traces[slot] = trace;
  heap.top = slot;
  if (heap.leasing) leaseOuter(heap, slot); // a backing without a lease table (see _block_leases.ts)
  heap.ledger.allocated(size);
  return block;
}

// The backing's answer to a request for `size` bytes (null: a refusal, recorded in the intake).
function askCounted(heap: DebugHeap, size: number, align: number): unknown {
  const previous = beginTake(heap.census);
  let outer: unknown;
  const calling = heap.ledger.busy();
  try {
    outer = heap.backing.tryAlloc(size, align === 16 ? undefined : align);
  } catch (error) {
    return heap.intake.refused(error, size);
  } finally {
    endTake(previous);
    if (calling) heap.ledger.idle();
  }
  if (heap.ledger.ended !== null) heap.endedWhileAsking(outer);
  // A null is a refusal too: recorded as intake.ask records it (a throw was, by `refused`), so alloc's error names
  // this refusal, not an empty reason or an earlier refusal's.
  if (outer === null) refusedNull(heap, size);
  return outer;
}

function refusedNull(heap: DebugHeap, size: number): void {
  heap.intake.refuse(`${backingPhrase("the", heap.backing)} refused ${size} bytes`, undefined);
}

// A refusal (null, recorded as out-of-memory), or a throw for anything else that is not a new block of `size`
// bytes (the backing keeps what it gave, as adopt() leaves it).
function missCounted(heap: DebugHeap, outer: unknown, size: number, align: number): null {
  if (outer === null) return heap.ledger.fail("out-of-memory", heap.intake.refusal, heap.intake.cause);
  const intake = heap.intake;
  let problem = intake.check(outer, size, align);
  if (problem === null) {
    const address = intake.host!.base + intake.offset;
    const twin = heap.index.size !== 0 ? heap.index.get(address) : -1;
    problem = twin >= 0
      ? `it is memory the backing already gave: the live ${heap.blocks.sizes[twin]}-byte block at 0x${
        address.toString(16)
      }`
      : "it is not a block";
  }
  throw badBlockError(heap.backing, size, align, problem);
}

// The trace of the next allocation when its id is sampled, else null.
function traceNext(heap: DebugHeap, entry: unknown, depth: number): Trace | null {
  const tracer = heap.tracer;
  return tracer.sampled(heap.nextId) ? tracer.capture(entry, depth + 1) : null;
}

/**
 * Frees `view` in a heap with counters only when it starts a live block
 * found by address and nothing about it is unusual: true. False when the
 * general path must judge it (nothing has changed then). `reason` is what
 * holders of the block hear released it.
 */
export function freeCounted(heap: DebugHeap, view: ArrayBufferView, reason: string): boolean {
  const buffer = bufferOf(view);
  const host = heap.intake.knownHostOf(buffer);
  // (A leased block's free ends its lease first: the general path does it.)
  if (host === undefined || heap.index.size === 0 || heap.leasing || anyTaken()) return false;
  const user = offsetOf(view);
  // A detached view, or one its shrunk resizable buffer no longer covers, reads offset 0 and length 0 (and must not
  // free the block at offset 0): the general path judges it.
  if (user === 0 && lengthOf(view) === 0) return false;
  const address = host.base + user;
  const slot = heap.index.get(address);
  const blocks = heap.blocks;
  if (slot < 0 || blocks.hosts[slot] !== host || blocks.userOffsets[slot] !== user) return false;
  if (heap.mayTell()) {
    // Holders of the block (their leases are the backing's, or loose) may hear of it: freed by the general path.
    heap.freeBlock(slot, reason, undefined, 0);
    return true;
  }
  const size = blocks.sizes[slot];
  heap.busy = slot;
  const calling = heap.ledger.busy();
  try {
    heap.backing.free(blocks.outers[slot]!);
  } finally {
    heap.busy = -1;
    if (calling) heap.ledger.idle();
  }
  if (heap.ledger.ended !== null) return true; // the backing's code ended the heap meanwhile: its teardown counted all
  heap.index.delete(address);
  if (heap.top === slot) heap.top = -1;
  blocks.releaseCounted(slot);
  heap.ledger.freed(size);
  return true;
}
