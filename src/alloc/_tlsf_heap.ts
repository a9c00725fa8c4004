// The heap of a FreeListAllocator: blocks in chunks, found by Two-Level
// Segregated Fit, split on allocation and merged on free, with quick lists of
// small freed blocks in front (like a thread cache). It knows nothing of views,
// counters or leases: the allocator around it does.
import { BlockRecords, CACHED, FREE, GRANULE, USED } from "./_block_records.ts";
import type { Chunk } from "./_chunks.ts";
import { OffsetTable } from "./_offset_table.ts";
import { SMALL, TlsfIndex } from "./_tlsf_index.ts";

// Up to QUICK_DEPTH freed blocks of each size below 256 bytes wait here for
// the next allocation of that exact size, which then skips splitting and
// merging. They are merged into the heap when an allocation would otherwise
// fail, and before a defragmentation.
const QUICK_DEPTH = 64;

/** A chunk of the heap. */
export interface HeapChunk {
  readonly chunk: Chunk;
  /** Used blocks by start offset. */
  readonly used: OffsetTable;
  /** The first block of the chunk's physical list. */
  first: number;
}

/**
 * Invariants (besides those of BlockRecords): `freeBytes` is the size of all
 * FREE and CACHED blocks; a quick list of class c holds only CACHED blocks of
 * exactly c × 16 bytes; every USED block is in its chunk's `used` table under
 * its start offset.
 */
export class TlsfHeap {
  readonly records: BlockRecords = new BlockRecords();
  readonly chunks: HeapChunk[] = [];
  readonly chunkOf: Map<ArrayBuffer, number> = new Map();
  capacityBytes = 0;
  freeBytes = 0;
  /** While true (a defragmentation), freed blocks skip the quick lists. */
  noCache = false;
  readonly #index: TlsfIndex = new TlsfIndex(this.records);
  readonly #quick = new Int32Array((SMALL / GRANULE) * QUICK_DEPTH);
  readonly #quickCount = new Int32Array(SMALL / GRANULE);
  #quickBlocks = 0;

  /** Adds `chunk` as one free block. */
  addChunk(chunk: Chunk): void {
    const index = this.chunks.length;
    const id = this.records.create(0, chunk.size, index);
    this.chunks.push({ chunk, used: new OffsetTable(), first: id });
    this.chunkOf.set(chunk.buffer, index);
    this.capacityBytes += chunk.size;
    this.#markFree(id);
  }

  /** The free block size a request needs (what a new chunk must hold for it). */
  searchSize(size: number, align: number): number {
    return searchBytes(size, align);
  }

  /**
   * Finds, splits and marks a block for `size` bytes aligned to `align`,
   * flagged USED | `kind`, and records it; its id, or -1 when no free block
   * fits (the caller may add a chunk and ask again).
   */
  take(size: number, align: number, kind: number): number {
    const r = this.records;
    const needed = Math.max(GRANULE, Math.ceil(size / GRANULE) * GRANULE);
    if (needed < SMALL && this.#quickCount[needed >>> 4] !== 0) {
      // Every cached block of this class has exactly `needed` bytes; chunks are
      // page-aligned and blocks start on the granule, so 16-byte alignment holds.
      const cls = needed >>> 4;
      const id = this.#quick[cls * QUICK_DEPTH + --this.#quickCount[cls]];
      this.#quickBlocks--;
      if (align <= GRANULE || r.start[id] % align === 0) {
        r.flags[id] = USED | kind;
        this.freeBytes -= r.size[id];
        return this.#claim(id, size, align);
      }
      this.#quickCount[cls]++; // keep it for a later request; fall through
      this.#quickBlocks++;
    }
    const search = align > GRANULE ? needed + align - GRANULE : needed;
    let id = this.#index.find(search);
    if (id === -1 && this.#quickBlocks > 0) {
      this.flushQuick();
      id = this.#index.find(search);
    }
    if (id === -1) return -1;
    this.#index.remove(id);
    this.freeBytes -= r.size[id];
    r.flags[id] = USED | kind;
    if (align > GRANULE) {
      // Chunks are page-aligned, so aligning the offset aligns the address.
      const gap = (align - (r.start[id] % align)) % align;
      if (gap > 0) {
        const front = r.create(r.start[id], gap, r.chunk[id]);
        this.#linkPhysBefore(front, id);
        r.start[id] += gap;
        r.size[id] -= gap;
        this.#markFree(front);
      }
    }
    this.#trim(id, needed);
    return this.#claim(id, size, align);
  }

  /** Frees a used block: into its quick list when small, else merged with free neighbours. */
  release(id: number): void {
    const r = this.records;
    this.chunks[r.chunk[id]].used.delete(r.start[id]);
    r.requested[id] = 0;
    const size = r.size[id];
    if (size < SMALL && r.flags[id] === USED && !this.noCache) {
      const cls = size >>> 4;
      if (this.#quickCount[cls] < QUICK_DEPTH) {
        r.flags[id] = CACHED;
        this.freeBytes += size;
        this.#quick[cls * QUICK_DEPTH + this.#quickCount[cls]++] = id;
        this.#quickBlocks++;
        return;
      }
    }
    r.flags[id] = 0;
    this.#markFree(id);
  }

  /**
   * Whether `resizeInPlace(id, newSize)` would succeed (nothing changes but a
   * cached neighbour merged, as there). Freeing other blocks meanwhile keeps
   * it true: that only adds free neighbours.
   */
  fitsInPlace(id: number, newSize: number): boolean {
    const r = this.records;
    const needed = Math.max(GRANULE, Math.ceil(newSize / GRANULE) * GRANULE);
    if (needed <= r.size[id]) return true;
    if (r.nextPhys[id] !== -1 && r.flags[r.nextPhys[id]] === CACHED) this.#uncache(r.nextPhys[id]);
    const next = r.nextPhys[id];
    return next !== -1 && r.flags[next] === FREE && r.size[id] + r.size[next] >= needed;
  }

  /**
   * Grows or shrinks used block `id` in place to hold `newSize` bytes, taking
   * its free neighbour when it must grow; false (nothing changed but a cached
   * neighbour merged) when it cannot.
   */
  resizeInPlace(id: number, newSize: number): boolean {
    const r = this.records;
    const needed = Math.max(GRANULE, Math.ceil(newSize / GRANULE) * GRANULE);
    if (needed > r.size[id] && r.nextPhys[id] !== -1 && r.flags[r.nextPhys[id]] === CACHED) {
      this.#uncache(r.nextPhys[id]); // merge the cached neighbour so the block can grow into it
    }
    const next = r.nextPhys[id];
    if (needed > r.size[id] && next !== -1 && r.flags[next] === FREE && r.size[id] + r.size[next] >= needed) {
      this.#index.remove(next);
      this.freeBytes -= r.size[next];
      r.size[id] += r.size[next];
      this.#unlinkPhys(next);
    }
    if (needed > r.size[id]) return false;
    this.#trim(id, needed);
    r.requested[id] = newSize;
    return true;
  }

  /** Returns every cached block to the heap proper, merging as a free would. */
  flushQuick(): void {
    const r = this.records;
    for (let cls = 0; cls < this.#quickCount.length; cls++) {
      while (this.#quickCount[cls] > 0) {
        const id = this.#quick[cls * QUICK_DEPTH + --this.#quickCount[cls]];
        r.flags[id] = 0;
        this.freeBytes -= r.size[id]; // markFree counts it again
        this.#markFree(id);
      }
    }
    this.#quickBlocks = 0;
  }

  /**
   * Moves used block `used` down to the start of free block `free` just
   * before it, copying its bytes; `free` becomes the free space after it.
   */
  slideDown(heapChunk: HeapChunk, free: number, used: number, bytes: Uint8Array<ArrayBuffer>): void {
    const r = this.records;
    const from = r.start[used];
    const to = r.start[free];
    const length = r.size[used];
    bytes.copyWithin(to, from, from + r.requested[used]);
    this.#index.remove(free);
    // Swap the two in physical order: ..., used, free, ...
    const before = r.prevPhys[free];
    const after = r.nextPhys[used];
    r.prevPhys[used] = before;
    if (before !== -1) r.nextPhys[before] = used;
    else heapChunk.first = used;
    r.nextPhys[used] = free;
    r.prevPhys[free] = used;
    r.nextPhys[free] = after;
    if (after !== -1) r.prevPhys[after] = free;
    r.start[used] = to;
    r.start[free] = to + length;
    heapChunk.used.delete(from);
    heapChunk.used.set(to, used);
    const next = r.nextPhys[free];
    if (next !== -1 && r.flags[next] === FREE) {
      this.#index.remove(next);
      r.size[free] += r.size[next];
      this.#unlinkPhys(next);
    }
    this.#index.insert(free);
  }

  /**
   * The largest block a request can get without a new chunk (cached and free
   * neighbours count as one: they are merged before an allocation fails),
   * and the fragmentation metric of the free space.
   */
  freeSummary(): { largest: number; fragmentation: number } {
    const r = this.records;
    let sum = 0, squares = 0, largest = 0;
    for (const heapChunk of this.chunks) {
      for (let id = heapChunk.first; id !== -1; id = r.nextPhys[id]) {
        if (r.flags[id] !== FREE && r.flags[id] !== CACHED) continue;
        const size = r.size[id];
        sum += size;
        squares += size * size;
        if (size > largest) largest = size;
      }
    }
    if (this.#quickBlocks > 0) largest = this.#largestRun(largest);
    return { largest, fragmentation: sum === 0 ? 0 : Math.max(0, 1 - Math.sqrt(squares) / sum) };
  }

  /** The block containing `offset` in chunk `index`, or -1 (a walk: error paths and owns()). */
  containing(index: number, offset: number): number {
    const r = this.records;
    for (let id = this.chunks[index].first; id !== -1; id = r.nextPhys[id]) {
      if (offset >= r.start[id] && offset < r.start[id] + r.size[id]) return id;
    }
    return -1;
  }

  #largestRun(atLeast: number): number {
    const r = this.records;
    let largest = atLeast;
    for (const heapChunk of this.chunks) {
      let run = 0;
      for (let id = heapChunk.first; id !== -1; id = r.nextPhys[id]) {
        if (r.flags[id] === FREE || r.flags[id] === CACHED) run += r.size[id];
        else run = 0;
        if (run > largest) largest = run;
      }
    }
    return largest;
  }

  // The bookkeeping of every allocation once its block is final (placed,
  // aligned, trimmed): record it by offset.
  #claim(id: number, size: number, align: number): number {
    const r = this.records;
    r.requested[id] = size;
    r.align[id] = align;
    this.chunks[r.chunk[id]].used.set(r.start[id], id);
    return id;
  }

  // Splits the tail beyond `keep` bytes off a used block, as a free block.
  #trim(id: number, keep: number): void {
    const r = this.records;
    const rest = r.size[id] - keep;
    if (rest < GRANULE) return;
    const tail = r.create(r.start[id] + keep, rest, r.chunk[id]);
    this.#linkPhysAfter(tail, id);
    r.size[id] = keep;
    this.#markFree(tail);
  }

  // Takes one block out of its quick list and frees it for real.
  #uncache(id: number): void {
    const r = this.records;
    const cls = r.size[id] >>> 4;
    const base = cls * QUICK_DEPTH;
    const count = this.#quickCount[cls];
    for (let i = 0; i < count; i++) {
      if (this.#quick[base + i] !== id) continue;
      this.#quick[base + i] = this.#quick[base + count - 1];
      this.#quickCount[cls]--;
      this.#quickBlocks--;
      r.flags[id] = 0;
      this.freeBytes -= r.size[id]; // markFree counts it again
      this.#markFree(id);
      return;
    }
  }

  // Marks a block free, merging with free physical neighbours, and lists it.
  #markFree(id: number): void {
    const r = this.records;
    this.freeBytes += r.size[id];
    const prev = r.prevPhys[id];
    if (prev !== -1 && r.flags[prev] === FREE) {
      this.#index.remove(prev);
      r.size[prev] += r.size[id];
      this.#unlinkPhys(id);
      id = prev;
    }
    const next = r.nextPhys[id];
    if (next !== -1 && r.flags[next] === FREE) {
      this.#index.remove(next);
      r.size[id] += r.size[next];
      this.#unlinkPhys(next);
    }
    r.flags[id] = FREE;
    this.#index.insert(id);
  }

  #linkPhysBefore(id: number, before: number): void {
    const r = this.records;
    const prev = r.prevPhys[before];
    r.prevPhys[id] = prev;
    r.nextPhys[id] = before;
    r.prevPhys[before] = id;
    if (prev !== -1) r.nextPhys[prev] = id;
    else this.chunks[r.chunk[id]].first = id;
  }

  #linkPhysAfter(id: number, after: number): void {
    const r = this.records;
    const next = r.nextPhys[after];
    r.prevPhys[id] = after;
    r.nextPhys[id] = next;
    r.nextPhys[after] = id;
    if (next !== -1) r.prevPhys[next] = id;
  }

  // Removes a record from the physical list and recycles its id.
  #unlinkPhys(id: number): void {
    const r = this.records;
    const prev = r.prevPhys[id], next = r.nextPhys[id];
    if (prev !== -1) r.nextPhys[prev] = next;
    else this.chunks[r.chunk[id]].first = next;
    if (next !== -1) r.prevPhys[next] = prev;
    r.recycle(id);
  }
}

/** The free block size a TLSF request of `size` bytes at `align` needs (what a new chunk must hold for it). */
export function searchBytes(size: number, align: number): number {
  const needed = Math.max(GRANULE, Math.ceil(size / GRANULE) * GRANULE);
  return align > GRANULE ? needed + align - GRANULE : needed;
}
