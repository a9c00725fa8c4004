// The records of a DebugAllocator's blocks, one slot per block, kept in typed
// arrays (struct of arrays) rather than one object per block: a checked
// allocate+free pair then creates no garbage and touches a few cache lines,
// which is what keeps "safety checks" within ~2× of the backing's own pair.

/** One record per live block; slots are reused LIFO. `ids[slot] === 0` marks a free slot. */
export class BlockTable {
  ids: Float64Array = new Float64Array(64);
  addresses: Float64Array = new Float64Array(64);
  sizes: Float64Array = new Float64Array(64);
  aligns: Int32Array = new Int32Array(64);
  born: Float64Array = new Float64Array(64);
  unreachable: Uint8Array = new Uint8Array(64);
  /** The backing's block (front canary and header, user bytes, back canary). */
  outers: (Uint8Array | undefined)[] = new Array(64).fill(undefined);
  /** Allocation traces, when tracing. */
  traces: (Error | null)[] = new Array(64).fill(null);
  /** The block's own ArrayBuffer when views are detached on free (weakly held when unreachable blocks are reported). */
  views: (ArrayBuffer | WeakRef<ArrayBuffer> | undefined)[] = new Array(64).fill(undefined);
  /** Slots below `end` have been used; free ones are on the stack below. */
  end = 0;
  live = 0;
  #freeSlots = new Int32Array(64);
  #freeCount = 0;

  /** A free slot (growing the arrays when all are taken). */
  take(): number {
    this.live++;
    if (this.#freeCount > 0) return this.#freeSlots[--this.#freeCount];
    if (this.end === this.ids.length) this.#grow();
    return this.end++;
  }

  /** Returns `slot` to the free stack and drops what it referenced. */
  release(slot: number): void {
    this.ids[slot] = 0;
    this.outers[slot] = undefined;
    this.views[slot] = undefined;
    if (this.traces[slot] !== null) this.traces[slot] = null;
    this.unreachable[slot] = 0;
    this.#freeSlots[this.#freeCount++] = slot;
    this.live--;
  }

  /** The live slot whose user bytes start at `address`, or -1 (a scan: for error paths and reports). */
  find(address: number): number {
    for (let slot = 0; slot < this.end; slot++) {
      if (this.ids[slot] !== 0 && this.addresses[slot] === address) return slot;
    }
    return -1;
  }

  /** Live slots, oldest first. */
  liveSlots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.end; slot++) if (this.ids[slot] !== 0) slots.push(slot);
    return slots.sort((a, b) => this.ids[a] - this.ids[b]);
  }

  #grow(): void {
    const n = this.ids.length * 2;
    const widen = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: new (n: number) => T): T => {
      const fresh = new make(n);
      fresh.set(old);
      return fresh;
    };
    this.ids = widen(this.ids, Float64Array);
    this.addresses = widen(this.addresses, Float64Array);
    this.sizes = widen(this.sizes, Float64Array);
    this.aligns = widen(this.aligns, Int32Array);
    this.born = widen(this.born, Float64Array);
    this.unreachable = widen(this.unreachable, Uint8Array);
    this.#freeSlots = widen(this.#freeSlots, Int32Array);
    for (let i = this.outers.length; i < n; i++) {
      this.outers.push(undefined);
      this.traces.push(null);
      this.views.push(undefined);
    }
  }
}
