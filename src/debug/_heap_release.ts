// When a DebugAllocator's memory goes by itself (its backing released it, or
// the owner of memory an Allocator written in JavaScript passed on: the
// safety model: chains cannot dangle) and when the allocator ends (deinit, dispose).
import { OffsetTable } from "../alloc/_offset_table.ts";
import { beginChange, endChange, tellReleasedAfter } from "../alloc/_lease.ts";
import { sortBy } from "./_builtins.ts";
import type { DebugHeap } from "./_debug_heap.ts";
import { unlease } from "./_block_leases.ts";

/**
 * The backing released [lo, hi) by itself (a scope's end, `reset()`, a
 * rewind): every block whose outer block starts there is retired, not freed
 * again: its views detached, its record kept as released (a later free says
 * what released it), counted as freed. Then the news goes on to the
 * allocator's own lessees and watchers, whose memory lies inside its blocks,
 * as any allocator tells them (see DebugHeap.tellFreed): the heap busy
 * meanwhile, and what they give back put off until it is done.
 */
export function retireRange(heap: DebugHeap, lo: number, hi: number, reason: string): void {
  // Also while the heap calls its backing (code the backing runs may release memory): its own buffers must be
  // detached before that memory is reused or unmapped (rule 1). The block it hands back or resizes is `busy`.
  if (heap.ledger.over) return;
  const blocks = heap.blocks;
  let retired = 0;
  for (let slot = 0; slot < blocks.end; slot++) {
    if (blocks.ids[slot] === 0 || slot === heap.busy) continue;
    const start = blocks.addresses[slot] - blocks.fronts[slot];
    if (start >= lo && start < hi) {
      heap.retire(slot, reason);
      retired++;
    }
  }
  const taken = heap.quarantine?.takeRange(lo, hi);
  if (taken !== undefined) { for (let i = 0; i < taken.length; i++) taken[i].lease?.end(); }
  if (retired !== 0 && heap.leases.count !== 0) {
    beginChange();
    try {
      tellReleasedAfter(heap.ledger, heap.leases, lo, hi, reason);
    } finally {
      endChange();
    }
  }
}

/**
 * The owner of memory the backing passed on released the outer block at [lo, hi) (see _block_leases.ts):
 * `partial`, that owner lives on (its free of the block, a reset, a window's close), and the blocks in it are
 * retired, as a memkit backing's reset does; else the owner is gone (unmapped, disposed), and the heap ends, as
 * over a memkit backing that is disposed. Once the heap has ended, a block it keeps for its deinit() (`stranded`)
 * is dropped: its memory is no longer the backing's to take back.
 */
export function outerReleased(heap: DebugHeap, lo: number, hi: number, reason: string, partial: boolean): void {
  if (heap.ledger.over) {
    const stranded = heap.stranded;
    for (let i = 0; i < stranded.length; i++) {
      const start = stranded[i].start;
      if (start >= lo && start < hi) stranded.splice(i--, 1);
    }
  } else if (partial) retireRange(heap, lo, hi, reason);
  else loseLeased(heap, reason);
}

/**
 * The owner of some of the heap's memory is gone: the allocator ends (every later call is "use-after-free"
 * naming `reason`), its lessees first. Its blocks are retired; those whose memory lives on (their lease still
 * holds: the owner ended every lease over its memory before telling any holder) are kept, still leased, and go
 * back to the backing at the allocator's deinit() or dispose() (`stranded`), not now: the owner is in the middle
 * of its release, and code the backing runs must not call back into it halfway through.
 */
function loseLeased(heap: DebugHeap, reason: string): void {
  if (!heap.ledger.end(`lost its memory: ${reason}`)) return;
  if (heap.leases.count !== 0) heap.leases.releasedAll(`the DebugAllocator lost its memory (${reason})`);
  const blocks = heap.blocks;
  const stranded = heap.stranded;
  const slots = blocks.liveSlots();
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i];
    const lease = blocks.leases[slot];
    // (Not the block the heap is handing back or resizing right now: the backing has it. Nor memory another
    // buffer may reach: it stays allocated for good.)
    if (slot !== heap.busy && (lease === null || lease.active) && !heap.mustKeep(slot)) {
      blocks.leases[slot] = null; // kept: retire() must not end it
      stranded[stranded.length] = {
        outer: blocks.outers[slot]!,
        id: blocks.ids[slot],
        start: blocks.addresses[slot] - blocks.fronts[slot],
        lease,
      };
    }
    heap.retire(slot, reason);
  }
  const held = heap.quarantine?.drain() ?? [];
  for (let i = 0; i < held.length; i++) {
    const lease = held[i].lease;
    if (lease === null || lease.active) stranded[stranded.length] = held[i];
  }
  heap.ledger.freedAll();
}

// Gives back what the heap kept of memory that lives on when the owner of other memory of it went (see
// loseLeased), newest first, as teardown gives blocks back.
function giveBackStranded(heap: DebugHeap): void {
  const back = heap.stranded;
  if (back.length === 0) return;
  heap.stranded = [];
  sortBy(back, (a, b) => b.id - a.id);
  for (let i = 0; i < back.length; i++) {
    back[i].lease?.end();
    heap.intake.freeQuietly(back[i].outer);
  }
}

/**
 * The backing released everything (it was disposed, or lost its own
 * memory): the allocator ends, and every later call throws
 * "use-after-free" naming why.
 */
export function retireAll(heap: DebugHeap, reason: string): void {
  if (!heap.ledger.end(`lost its memory: ${reason}`)) return;
  heap.unwatch?.();
  if (heap.leases.count !== 0) heap.leases.releasedAll(`the DebugAllocator lost its memory (${reason})`);
  const slots = heap.blocks.liveSlots();
  for (let i = 0; i < slots.length; i++) heap.retire(slots[i], reason);
  heap.quarantine?.drain();
  heap.ledger.freedAll();
}

/**
 * Ends the allocator (deinit or dispose): its lessees first, then every
 * block, live or quarantined, back to the backing, newest first so a LIFO
 * backing takes them all. Returns whether blocks were still live, or null
 * when it had already ended.
 */
export function teardown(heap: DebugHeap, ended: string, released: string): boolean | null {
  // Not from code its backing runs while the heap calls it (an Arena observer): a call there is refused.
  heap.ledger.refuseWhileBusy(ended === "was disposed" ? "dispose" : "deinit");
  if (!heap.ledger.end(ended)) {
    giveBackStranded(heap);
    return null;
  }
  heap.unwatch?.();
  if (heap.leases.count !== 0) heap.leases.releasedAll(released);
  const blocks = heap.blocks;
  const leaked = blocks.live > 0;
  const outers: { outer: Uint8Array<ArrayBuffer>; id: number }[] = [];
  const slots = blocks.liveSlots();
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i];
    // Memory another buffer may reach stays allocated in the backing for good.
    const kept = heap.mustKeep(slot);
    if (heap.leasing) unlease(heap, slot);
    if (heap.detach) heap.detachOwn(slot, released, null, false);
    if (!kept) outers[outers.length] = { outer: blocks.outers[slot]!, id: blocks.ids[slot] };
    blocks.release(slot);
  }
  const held = heap.quarantine?.drain() ?? [];
  for (let i = 0; i < held.length; i++) {
    held[i].lease?.end();
    outers[outers.length] = held[i];
  }
  // Index loops and built-ins captured at load: a program's replaced Array methods must not keep memory back.
  sortBy(outers, (a, b) => b.id - a.id);
  for (let i = 0; i < outers.length; i++) heap.intake.freeQuietly(outers[i].outer);
  heap.ledger.freedAll();
  heap.index = new OffsetTable();
  heap.top = -1;
  return leaked;
}
