// When a DebugAllocator's memory goes by itself (its backing released it:
// the safety model: chains cannot dangle) and when the allocator ends (deinit, dispose).
import { OffsetTable } from "../alloc/_offset_table.ts";
import { sortBy } from "./_builtins.ts";
import type { DebugHeap } from "./_debug_heap.ts";

/**
 * The backing released [lo, hi) by itself (a scope's end, `reset()`, a
 * rewind): every block whose outer block starts there is retired, not freed
 * again: its views detached, its record kept as released (a later free says
 * what released it), counted as freed. Then the news goes on to the
 * allocator's own lessees and watchers, whose memory lies inside its blocks.
 */
export function retireRange(heap: DebugHeap, lo: number, hi: number, reason: string): void {
  if (heap.ledger.ended !== null) return;
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
  heap.quarantine?.takeRange(lo, hi);
  if (retired !== 0 && heap.leases.count !== 0) heap.leases.released(lo, hi, reason);
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
  if (!heap.ledger.end(ended)) return null;
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
    if (heap.detach) heap.detachOwn(slot, released, null, false);
    if (!kept) outers[outers.length] = { outer: blocks.outers[slot]!, id: blocks.ids[slot] };
    blocks.release(slot);
  }
  const held = heap.quarantine?.drain() ?? [];
  for (let i = 0; i < held.length; i++) outers[outers.length] = held[i];
  // Index loops and built-ins captured at load: a program's replaced Array methods must not keep memory back.
  sortBy(outers, (a, b) => b.id - a.id);
  for (let i = 0; i < outers.length; i++) heap.intake.freeQuietly(outers[i].outer);
  heap.ledger.freedAll();
  heap.index = new OffsetTable();
  heap.top = -1;
  return leaked;
}
