// The C-style entry to a DebugAllocator: blocks by address, freed with the
// size they were allocated with (the global allocator's `malloc`, `cRealloc`
// and `cFree`). Each DebugAllocator registers its heap here when it is made;
// the functions below look it up, so nothing outside the class reaches its
// private state and there is no mutable module state to fill in.
//
// An address carries no generation, so a double free after the address was
// reused cannot be told from a free of the new block by the call itself;
// with `retainMetadata` the freed memory is held in a quarantine so the
// address is not reused while its record is kept (see _freed_records.ts).
import { valuesOf } from "../base/_captured_set.ts";
import { beginChange, endChange } from "../alloc/_lease.ts";
import { deref, getWeak } from "./_builtins.ts";
import type { DebugHeap } from "./_debug_heap.ts";
import { resizeBlock } from "./_heap_resize.ts";
import { goneError, noBlockError, wrongSizeError } from "./_misuse.ts";

const heaps = new WeakMap<object, DebugHeap>();
// Every DebugAllocator's heap, weakly, for the leak check at exit: a DebugAllocator over a backing of its own
// (a pool, an arena) is not the owner of its memory in the census (its backing is), and its blocks must still
// be listed. A heap lives as long as its DebugAllocator (and while a memkit backing watches it for it).
const everyHeap = new Set<WeakRef<DebugHeap>>();
const forget = new FinalizationRegistry<WeakRef<DebugHeap>>((ref) => everyHeap.delete(ref));

/** Called by the DebugAllocator constructor. */
export function registerHeap(debug: object, heap: DebugHeap): void {
  heaps.set(debug, heap);
  const ref = new WeakRef(heap);
  everyHeap.add(ref);
  forget.register(debug, ref);
}

/** Every DebugAllocator's heap still reachable, oldest first (read with the built-ins captured at load). */
export function everyDebugHeap(): DebugHeap[] {
  const refs = valuesOf(everyHeap);
  const out: DebugHeap[] = [];
  for (let i = 0; i < refs.length; i++) {
    const heap = deref(refs[i]);
    if (heap !== undefined) out[out.length] = heap;
  }
  return out;
}

/** The heap of `debug` when it is a DebugAllocator, else undefined (read with the built-ins captured at load). */
export function registeredHeap(debug: object): DebugHeap | undefined {
  return getWeak(heaps, debug);
}

function heapOf(debug: object, op: string): DebugHeap {
  const heap = heaps.get(debug);
  if (heap === undefined) throw new TypeError(`Cannot ${op}: the allocator is not a DebugAllocator`);
  heap.ledger.guard(op);
  return heap;
}

/**
 * `size` fresh bytes of `debug`: their address, 0 for size 0 (like
 * `malloc(0)` returning NULL: nothing to free). `entry` is the public
 * function the user called, `depth` the frames from this call out to it.
 * @throws {AllocationError} "out-of-memory" or "limit-exceeded"; "use-after-free" after `deinit()`.
 */
export function cMalloc(debug: object, size: number, entry: unknown, depth: number): number {
  const heap = heapOf(debug, "allocate");
  if (size === 0) return 0;
  if (heap.ledger.allocatedBytes + size > heap.limit) {
    heap.failLimit();
    throw heap.ledger.failure(size);
  }
  const slot = heap.take(size, 16, entry, depth + 1);
  if (slot < 0) {
    heap.ledger.fail("out-of-memory", heap.intake.refusal, heap.intake.cause);
    throw heap.ledger.failure(size);
  }
  const address = heap.blocks.addresses[slot];
  heap.index.set(address, slot); // C-style blocks are found by address
  heap.ledger.allocated(size);
  return address;
}

/**
 * Frees the block at `address`, which must have been allocated with `size`
 * bytes; address 0 is a no-op.
 * @throws {AllocationError} "double-free", "invalid-free" (no block there, or the wrong size), "corruption" (the block is still freed).
 */
export function cFreeIn(debug: object, address: number, size: number, entry: unknown, depth: number): void {
  const heap = heapOf(debug, "free");
  if (address === 0) return;
  const slot = slotOf(heap, address, size, "free");
  const corruption = heap.corruption(slot);
  heap.freeBlock(slot, "cFree() released it", entry, depth + 1);
  if (corruption !== null) throw corruption;
}

/**
 * Resizes the block at `address` (allocated with `oldSize` bytes) to
 * `newSize`, keeping its contents; returns the new address (0 for size 0,
 * which frees it). Address 0 allocates.
 * @throws {AllocationError} As for {@linkcode cMalloc} and {@linkcode cFreeIn}; on failure the block is unchanged.
 */
export function cReallocIn(
  debug: object,
  address: number,
  oldSize: number,
  newSize: number,
  entry: unknown,
  depth: number,
): number {
  const heap = heapOf(debug, "realloc");
  if (address === 0) {
    const fresh = cMalloc(debug, newSize, entry, depth + 1);
    return fresh;
  }
  const slot = slotOf(heap, address, oldSize, "realloc");
  const corruption = heap.corruption(slot);
  if (corruption !== null) throw corruption;
  if (newSize === 0) {
    heap.freeBlock(slot, "cRealloc(address, size, 0) released it", entry, depth + 1);
    return 0;
  }
  // Holders told of the move give back what they put off once the new block is recorded (see resizeBlock).
  beginChange();
  try {
    const moved = resizeBlock(heap, slot, newSize, false, entry, depth + 1);
    const next = heap.blocks.addresses[moved];
    heap.index.set(next, moved);
    return next;
  } finally {
    endChange();
  }
}

// The live block at `address`, checking the size; throws for everything else.
function slotOf(heap: DebugHeap, address: number, size: number, op: string): number {
  const blocks = heap.blocks;
  let slot = heap.index.size !== 0 ? heap.index.get(address) : -1;
  if (slot < 0 || blocks.ids[slot] === 0 || blocks.addresses[slot] !== address) slot = blocks.find(address);
  if (slot < 0) {
    const freed = heap.records.byAddress(address);
    if (freed !== null) throw goneError(op, `0x${address.toString(16)}`, freed, heap.tracer, false);
    throw noBlockError(op, address);
  }
  const actual = heap.blocks.sizes[slot];
  if (actual !== size) throw wrongSizeError(op, address, size, actual);
  return slot;
}
