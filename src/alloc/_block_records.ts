// The block records of a FreeListAllocator: one id per block (used, free or
// cached), its fields in parallel typed arrays. Records live in JS memory, not
// next to the blocks, so nothing written through a view can corrupt them.

/** Smallest block and alignment step: every block starts and ends on it. */
export const GRANULE = 16;

/** Record flags. */
export const FREE = 1;
export const USED = 2;
export const HANDLE = 4;
/** A small freed block kept in a quick list: free, but not merged or listed yet. */
export const CACHED = 8;

/**
 * Parallel arrays indexed by block id. Invariants: in each chunk the blocks
 * linked by prevPhys/nextPhys tile the chunk in address order without gaps;
 * no two FREE blocks are physical neighbours (a free merges at once); every
 * FREE block, and only those, is in the size-class index; CACHED blocks are
 * in a quick list instead.
 */
export class BlockRecords {
  start = new Float64Array(256);
  size = new Float64Array(256);
  /** Bytes the user asked for (0 for free blocks). */
  requested = new Float64Array(256);
  align = new Float64Array(256);
  /** Index of the chunk the block lies in. */
  chunk = new Int32Array(256);
  prevPhys = new Int32Array(256);
  nextPhys = new Int32Array(256);
  prevFree = new Int32Array(256);
  nextFree = new Int32Array(256);
  flags = new Uint8Array(256);
  #count = 0;
  readonly #spare: number[] = [];

  /** A fresh record, unlinked and flagged 0. */
  create(start: number, size: number, chunk: number): number {
    let id = this.#spare.pop();
    if (id === undefined) {
      if (this.#count === this.start.length) this.#grow();
      id = this.#count++;
    }
    this.start[id] = start;
    this.size[id] = size;
    this.requested[id] = 0;
    this.align[id] = GRANULE;
    this.chunk[id] = chunk;
    this.prevPhys[id] = this.nextPhys[id] = -1;
    this.prevFree[id] = this.nextFree[id] = -1;
    this.flags[id] = 0;
    return id;
  }

  /** Gives `id` back for reuse (its block merged into a neighbour). */
  recycle(id: number): void {
    this.flags[id] = 0;
    this.#spare.push(id);
  }

  #grow(): void {
    const n = this.start.length * 2;
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const fresh = make(n);
      fresh.set(old);
      return fresh;
    };
    this.start = grow(this.start, (k) => new Float64Array(k));
    this.size = grow(this.size, (k) => new Float64Array(k));
    this.requested = grow(this.requested, (k) => new Float64Array(k));
    this.align = grow(this.align, (k) => new Float64Array(k));
    this.chunk = grow(this.chunk, (k) => new Int32Array(k));
    this.prevPhys = grow(this.prevPhys, (k) => new Int32Array(k));
    this.nextPhys = grow(this.nextPhys, (k) => new Int32Array(k));
    this.prevFree = grow(this.prevFree, (k) => new Int32Array(k));
    this.nextFree = grow(this.nextFree, (k) => new Int32Array(k));
    this.flags = grow(this.flags, (k) => new Uint8Array(k));
  }
}
