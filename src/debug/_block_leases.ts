// Leases on the blocks a DebugAllocator takes from a backing that cannot tell it of its releases: an Allocator
// written in JavaScript (or a wrapper over one), which may pass on memory memkit owns: a SystemAllocator's, an
// Arena's or a pool's blocks, a mapping, a FramePool's frames... A memkit backing is watched instead (one
// subscription for every block, see DebugHeap); here each block taken from the backing (the outer block: canaries
// and user bytes) is leased, by address, from the memkit allocator or lessor whose memory it is (leaseBlock), so
// that memory's release reaches the heap before it is reused or unmapped (safety rules 1 and 4):
// - a release by an owner that lives on (its free of the block, a reset, a window's close) retires the blocks in
//   it, as a memkit backing's reset does: their views detached, a later free names the release;
// - the owner's end (unmap, dispose) ends the heap, as a memkit backing's dispose does: every later call is
//   "use-after-free" naming the release (see loseLeased).
// The heap ends a block's lease before it gives the block back or resizes it itself (its own calls revoke
// nothing), and leases it again when the backing refuses. Invariant: while `heap.leasing`, a live slot's lease
// (blocks.leases) and a quarantined block's lease (Quarantined.lease) are active or revoked, never ended, and
// nothing else holds one. Only this path pays: a heap over a memkit backing never comes here, and the flat free
// paths of _hot_path.ts hand a leasing heap's frees to the general path.
import { intrinsic } from "../../ffi/boundary.ts";
import { leaseBlock } from "../alloc/_lease.ts";
import type { DebugHeap } from "./_debug_heap.ts";
import { outerReleased } from "./_heap_release.ts";

/**
 * The DebugAllocator looking for the owner of memory its backing passed on, and where that memory starts (null
 * otherwise). A DebugAllocator's blocks are views of its backing's buffer, which other memory in that buffer
 * shares: while one is sought, a DebugAllocator claims such a buffer (see DebugAllocator's `holds`) only for a
 * block of its own that holds `address`, and never for `self`, so the lease goes to the memory's real owner.
 */
export const seeking: { self: object | null; address: number } = { self: null, address: 0 };

/** Leases live `slot`'s outer block from the owner of its memory (nothing when no one can tell of its release). */
export function leaseOuter(heap: DebugHeap, slot: number): void {
  const blocks = heap.blocks;
  const outer = blocks.outers[slot]!;
  const lo = blocks.addresses[slot] - blocks.fronts[slot];
  const hi = lo + intrinsic.typedArrayLength(outer); // elements of a Uint8Array are bytes
  seeking.self = heap.owner;
  seeking.address = lo;
  try {
    // By address (no allocator named): the backing has no lease table, nor has a wrapper's allocator below it.
    blocks.leases[slot] = leaseBlock(undefined, outer, {
      revoke: (reason, partial) => outerReleased(heap, lo, hi, reason, partial),
    });
  } finally {
    seeking.self = null;
  }
}

/** Ends the lease on live `slot`'s outer block: the heap is about to give it back, resize it or forget it. */
export function unlease(heap: DebugHeap, slot: number): void {
  const lease = heap.blocks.leases[slot];
  if (lease === null) return;
  heap.blocks.leases[slot] = null;
  lease.end();
}

/** After the backing refused to take back or resize live `slot`'s outer block: the block is leased again. */
export function leaseAgain(heap: DebugHeap, slot: number): void {
  if (heap.blocks.ids[slot] !== 0 && heap.blocks.leases[slot] === null) leaseOuter(heap, slot);
}
