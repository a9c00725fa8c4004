// A DebugAllocator's dump(): what it holds from its backing, read from its
// block table and quarantine when asked (nothing is recorded for it on the
// alloc and free paths). Each outer block the backing gave is a chunk, as a
// SystemAllocator's mallocs are its chunks: in it, the user's block at its
// offset, tagged with where it was allocated when that was traced, and the
// guard bytes around it (header and canaries) as used blocks tagged
// "canary", so a block map shows them as what they are, not as free space.
import type { AllocatorStats } from "../base/allocator.ts";
import { type AllocatorDump, makeDump, type RawBlock } from "../alloc/dump.ts";
import { CANARY } from "./_block_layout.ts";
import type { DebugHeap } from "./_debug_heap.ts";

/** The owner tag of a DebugAllocator's guard bytes (a block's header and canaries). */
export const CANARY_OWNER = "canary";
/** The owner tag of a freed block's memory held back from the backing (`neverUnmap`, `retainMetadata`). */
export const QUARANTINE_OWNER = "quarantine";

interface Extent {
  /** Allocation id: chunks are listed in the order the blocks were allocated. */
  readonly id: number;
  readonly address: number;
  readonly size: number;
  readonly blocks: RawBlock[];
}

/** The dump of `heap` (the caller has checked that it has not ended). */
export function dumpHeap(heap: DebugHeap, stats: AllocatorStats): AllocatorDump {
  const blocks = heap.blocks;
  const extents: Extent[] = [];
  for (let slot = 0; slot < blocks.end; slot++) {
    if (blocks.ids[slot] === 0) continue;
    const size = blocks.sizes[slot];
    const front = blocks.fronts[slot];
    const owner = siteOf(heap, slot);
    // Out-of-band blocks (and every block with safety off) have no guard bytes: the outer block is the user's.
    const raw: RawBlock[] = front === 0 ? [{ offset: 0, size, free: false, requested: size, owner }] : [
      { offset: 0, size: front, free: false, requested: 0, owner: CANARY_OWNER },
      { offset: front, size, free: false, requested: size, owner },
      { offset: front + size, size: CANARY, free: false, requested: 0, owner: CANARY_OWNER },
    ];
    extents.push({
      id: blocks.ids[slot],
      address: blocks.addresses[slot] - front,
      size: front === 0 ? size : front + size + CANARY,
      blocks: raw,
    });
  }
  for (const held of heap.quarantine?.held() ?? []) {
    extents.push({
      id: held.id,
      address: held.start,
      size: held.bytes,
      blocks: [{ offset: 0, size: held.bytes, free: true, owner: QUARANTINE_OWNER }],
    });
  }
  extents.sort((a, b) => a.id - b.id);
  return makeDump(stats, extents);
}

// The first frame of the program's where `slot` was allocated, when it was traced; else null.
function siteOf(heap: DebugHeap, slot: number): string | null {
  const trace = heap.blocks.traces[slot];
  if (trace === null) return null;
  const frames = heap.tracer.format(trace);
  if (frames === undefined) return null;
  const first = frames.split("\n", 1)[0];
  return first.startsWith("at ") ? first.slice(3) : first;
}
