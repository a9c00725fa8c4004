// A hash table from block offsets to block ids in typed arrays: open
// addressing with linear probing and backward-shift deletion, so there are no
// tombstones and it never shrinks. A Map would do, except that V8 and JSC
// rehash a large Map on every set+delete of one key (measured: 11 µs per pair
// at 100,000 entries), which would make a free+alloc pair O(live blocks).

/** Offsets (non-negative integers below 2^53) → non-negative ids. */
export class OffsetTable {
  #keys = new Float64Array(64).fill(-1);
  #values = new Int32Array(64);
  #mask = 63;
  #size = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  #slot(key: number): number {
    // Offsets are multiples of 16 here; mix high and low bits.
    if (key < 4294967296) return Math.imul(key >>> 4, 0x9e3779b1) >>> 0 & this.#mask;
    const low = (key / 16) | 0;
    const high = (key / 2 ** 36) | 0;
    return Math.imul(low ^ Math.imul(high, 0x27d4eb2d), 0x9e3779b1) >>> 0 & this.#mask;
  }

  /** The id stored for `key`, or -1. */
  get(key: number): number {
    const keys = this.#keys;
    for (let i = this.#slot(key);; i = (i + 1) & this.#mask) {
      const k = keys[i];
      if (k === key) return this.#values[i];
      if (k === -1) return -1;
    }
  }

  /** Stores `id` for `key` (replacing any). */
  set(key: number, id: number): void {
    if ((this.#size + 1) * 2 > this.#keys.length) this.#grow();
    const keys = this.#keys;
    let i = this.#slot(key);
    while (keys[i] !== -1 && keys[i] !== key) i = (i + 1) & this.#mask;
    if (keys[i] === -1) this.#size++;
    keys[i] = key;
    this.#values[i] = id;
  }

  /** Removes `key`; true when it was there. */
  delete(key: number): boolean {
    const keys = this.#keys;
    let i = this.#slot(key);
    while (keys[i] !== key) {
      if (keys[i] === -1) return false;
      i = (i + 1) & this.#mask;
    }
    // Backward shift: move later entries of the run into the hole when their
    // home slot allows it, so lookups never need a tombstone.
    let hole = i;
    for (let j = (i + 1) & this.#mask; keys[j] !== -1; j = (j + 1) & this.#mask) {
      const home = this.#slot(keys[j]);
      const distanceToJ = (j - home) & this.#mask;
      const distanceToHole = (hole - home) & this.#mask;
      if (distanceToHole <= distanceToJ) {
        keys[hole] = keys[j];
        this.#values[hole] = this.#values[j];
        hole = j;
      }
    }
    keys[hole] = -1;
    this.#size--;
    return true;
  }

  #grow(): void {
    const oldKeys = this.#keys, oldValues = this.#values;
    this.#keys = new Float64Array(oldKeys.length * 2).fill(-1);
    this.#values = new Int32Array(oldKeys.length * 2);
    this.#mask = this.#keys.length - 1;
    this.#size = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i] !== -1) this.set(oldKeys[i], oldValues[i]);
  }
}
