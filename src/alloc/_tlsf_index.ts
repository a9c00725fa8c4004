// The size-class index of Two-Level Segregated Fit (Masmano et al.): free
// blocks in lists by size class, found through two bitmaps in O(1).
//
// Classes: sizes below 256 bytes map linearly (one class per 16-byte
// granule); above, each power of two splits into 16 second-level classes.
import type { BlockRecords } from "./_block_records.ts";

const SL_LOG2 = 4;
const SL_COUNT = 1 << SL_LOG2;
/** Sizes below this map linearly (one class per granule). */
export const SMALL = 256;
const FL_SHIFT = 8; // log2(SMALL)
const FL_COUNT = 48 - FL_SHIFT + 1;

/** floor(log2(n)) for n up to 2^53. */
export function log2Floor(n: number): number {
  if (n < 2 ** 31) return 31 - Math.clz32(n);
  return 63 - Math.clz32(Math.floor(n / 2 ** 32));
}

function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

/** TLSF mapping: size → class (first level << SL_LOG2 | second level). */
function classOf(size: number): number {
  if (size < SMALL) return size >>> 4;
  if (size < 2 ** 31) {
    const fl = 31 - Math.clz32(size);
    return ((fl - FL_SHIFT + 1) << SL_LOG2) + (size >>> (fl - SL_LOG2)) - SL_COUNT;
  }
  const fl = log2Floor(size);
  const sl = Math.floor(size / 2 ** (fl - SL_LOG2)) - SL_COUNT;
  return (fl - FL_SHIFT + 1) * SL_COUNT + sl;
}

/** The smallest size whose class holds only blocks of at least `size` bytes. */
export function roundUpToClass(size: number): number {
  if (size < SMALL) return size;
  return size < 2 ** 30 ? size + (1 << (27 - Math.clz32(size))) - 1 : size + 2 ** (log2Floor(size) - SL_LOG2) - 1;
}

/** The free lists and their bitmaps. Invariant: a bit is set exactly when its list is not empty. */
export class TlsfIndex {
  readonly #records: BlockRecords;
  #flLow = 0;
  #flHigh = 0;
  readonly #slBitmap = new Uint32Array(FL_COUNT);
  readonly #heads = new Int32Array(FL_COUNT * SL_COUNT).fill(-1);

  constructor(records: BlockRecords) {
    this.#records = records;
  }

  /** Lists free block `id` in its class. */
  insert(id: number): void {
    const r = this.#records;
    const cls = classOf(r.size[id]);
    const head = this.#heads[cls];
    r.prevFree[id] = -1;
    r.nextFree[id] = head;
    if (head !== -1) r.prevFree[head] = id;
    this.#heads[cls] = id;
    const fl = cls >> SL_LOG2;
    this.#slBitmap[fl] |= 1 << (cls & (SL_COUNT - 1));
    if (fl < 32) this.#flLow |= 1 << fl;
    else this.#flHigh |= 1 << (fl - 32);
  }

  /** Unlists free block `id` (its size must be the one it was listed with). */
  remove(id: number): void {
    const r = this.#records;
    const cls = classOf(r.size[id]);
    const prev = r.prevFree[id], next = r.nextFree[id];
    if (prev !== -1) r.nextFree[prev] = next;
    else this.#heads[cls] = next;
    if (next !== -1) r.prevFree[next] = prev;
    r.prevFree[id] = r.nextFree[id] = -1;
    if (this.#heads[cls] === -1) {
      const fl = cls >> SL_LOG2;
      this.#slBitmap[fl] &= ~(1 << (cls & (SL_COUNT - 1)));
      if (this.#slBitmap[fl] === 0) {
        if (fl < 32) this.#flLow &= ~(1 << fl);
        else this.#flHigh &= ~(1 << (fl - 32));
      }
    }
  }

  /**
   * A free block of at least `size` bytes, or -1. Good fit in O(1): round the
   * size up to the next class, so every block listed there fits, and take the
   * first non-empty list at or above it. When none is found, the blocks of
   * `size`'s own class may still fit (a block of exactly the size just freed
   * lives there): that one list is searched, so any request up to the largest
   * free block succeeds.
   */
  find(size: number): number {
    const id = this.#firstAtOrAbove(classOf(roundUpToClass(size)));
    return id !== -1 ? id : this.#fitIn(classOf(size), size);
  }

  #firstAtOrAbove(cls: number): number {
    let fl = cls >> SL_LOG2;
    if (fl >= FL_COUNT) return -1;
    let slMap = this.#slBitmap[fl] & (~0 << (cls & (SL_COUNT - 1)));
    if (slMap === 0) {
      const low = fl + 1 < 32 ? this.#flLow & (~0 << (fl + 1)) : 0;
      if (low !== 0) fl = lowestBit(low);
      else {
        const high = fl + 1 < 32 ? this.#flHigh : this.#flHigh & (~0 << (fl + 1 - 32));
        if (high === 0) return -1;
        fl = lowestBit(high) + 32;
      }
      slMap = this.#slBitmap[fl];
    }
    return this.#heads[fl * SL_COUNT + lowestBit(slMap)];
  }

  // The first block in class `cls` of at least `size` bytes (a walk of one list).
  #fitIn(cls: number, size: number): number {
    if (cls >> SL_LOG2 >= FL_COUNT) return -1;
    const r = this.#records;
    for (let id = this.#heads[cls]; id !== -1; id = r.nextFree[id]) {
      if (r.size[id] >= size) return id;
    }
    return -1;
  }
}
