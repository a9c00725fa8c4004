// Two small pieces of MemoryInterface kept out of its file: what each type's
// statistics come from, and defragmentation over the allocators
// that can move blocks (the free-list heap's handles).
import type { FreeListAllocator } from "../alloc/free_list_allocator.ts";
import type { DefragReport } from "../alloc/free_list_types.ts";
import {
  B_ARENA,
  B_BUDDY,
  B_HEAP,
  B_LOCKED,
  B_NETWORK,
  B_POOLS,
  B_SECRET,
  B_STACK,
  B_SYSTEM,
  type Backings,
  PACKET_BYTES,
} from "./_backings.ts";
import type { TypeSources } from "./_memory_stats.ts";
import { lockableBytes } from "./_memlock_limit.ts";
import { T_AUDIO, T_NETWORK, T_POOL, T_SHARED, T_STACK } from "./_request.ts";
import { LARGEST_CLASS } from "./_size_class_pools.ts";

// The backings that serve each type by default (index: type), whose figures its statistics show.
const TYPE_BACKINGS: readonly (readonly number[])[] = [
  [B_SYSTEM, B_SECRET, B_BUDDY],
  [B_HEAP],
  [B_LOCKED],
  [B_NETWORK],
  [], // shared: mappings, counted apart
  [B_ARENA],
  [B_STACK],
  [B_POOLS],
];

/** What the statistics of type `t` (all types for `t` past the last) come from. */
export function typeSources(backings: Backings, t: number): TypeSources {
  const wanted = TYPE_BACKINGS[t] ?? null;
  const made = backings.made().filter((m) => wanted === null || wanted.includes(m.backing));
  let largestBlock = Infinity;
  if (t === T_POOL) largestBlock = LARGEST_CLASS;
  else if (t === T_NETWORK) largestBlock = PACKET_BYTES;
  // Audio blocks are pages locked in RAM: none larger than the kernel will still lock (RLIMIT_MEMLOCK).
  else if (t === T_AUDIO) largestBlock = lockableBytes();
  else if (t === T_STACK) {
    // The stack's room above its top (all of it before its first use).
    largestBlock = made.find((m) => m.backing === B_STACK)?.allocator.stats().largestFreeBlock ?? backings.stackBytes;
  }
  const extraHeld = t === T_SHARED || wanted === null ? backings.sharedBytes() : 0;
  // Audio's largest block follows what the whole process has locked: no counter of the interface tells.
  return { allocators: made.map((m) => m.allocator), largestBlock, extraHeld, outside: t === T_AUDIO };
}

/** Defragments the heap if there is one; a report of nothing moved otherwise. */
export function defragmentHeap(
  heap: FreeListAllocator | undefined,
  onProgress?: (movedBytes: number, totalBytes: number, progress: number) => void,
): DefragReport {
  if (heap !== undefined) return heap.defragment(onProgress);
  return {
    movedBytes: 0,
    movedBlocks: 0,
    fragmentationBefore: 0,
    fragmentationAfter: 0,
    largestFreeBlockBefore: 0,
    largestFreeBlockAfter: 0,
    durationMs: 0,
  };
}
