// Finding an allocation by address (isValidPointer, getAllocationInfo,
// deallocate(address | view)). Allocating only appends to a list; the
// address map is brought up to date when someone asks, so allocations nobody
// looks up by address never pay for their address (a native call). Released
// allocations are dropped from the list as it grows, and from the map when
// it holds more of them than live ones.
import { Allocation } from "./_allocation.ts";

/** How many adds one holder of the newest allocation serves (see AllocationIndex's #newest). */
const HOLDER_ADDS = 256;

export class AllocationIndex {
  /** Allocations added since the map was last brought up to date: the first #count slots of a fixed array. */
  #pending: (Allocation | undefined)[] = new Array(1024).fill(undefined);
  #count = 0;
  /**
   * The newest allocation, not yet in the list, in a small holder made anew every HOLDER_ADDS adds. Why:
   * storing a just-made object into a long-lived one costs V8 a write barrier call per store (it records
   * the slot for the next minor GC); a holder replaced that often is itself young, so storing into it is
   * plain (one barrier per HOLDER_ADDS adds, when the new holder is stored here).
   */
  #newest: { a: Allocation | null } = { a: null };
  #adds = 0;
  readonly #byAddress = new Map<number, Allocation>();
  #live: () => number;

  /** `live`: how many allocations are live (to size the cleanups). */
  constructor(live: () => number) {
    this.#live = live;
  }

  /**
   * A new allocation. It waits in a slot of its own until the next one comes,
   * so an allocate / deallocate pair never touches the list.
   */
  add(a: Allocation): void {
    const holder = this.#newest;
    const newest = holder.a;
    holder.a = a;
    if (newest !== null) {
      this.#pending[this.#count++] = newest;
      if (this.#count === this.#pending.length) this.#compact();
    }
    if (++this.#adds === HOLDER_ADDS) {
      this.#adds = 0;
      this.#newest = { a: holder.a };
    }
  }

  /** An allocation was released: the newest one (or the list's last) leaves at once. */
  released(a: Allocation): void {
    const holder = this.#newest;
    if (holder.a === a) {
      holder.a = null;
      return;
    }
    const last = this.#count - 1;
    if (last >= 0 && this.#pending[last] === a) {
      this.#pending[last] = undefined;
      this.#count = last;
    }
  }

  /**
   * Someone read `a`'s address: index it now, so that after its release a
   * free of that address is told apart from a foreign one ("double-free").
   */
  remember(): void {
    this.#update();
  }

  /**
   * The allocation whose first byte is at `address` (the latest one there,
   * live or released), else, with `containing`, a live one containing it.
   */
  find(address: number, containing: boolean): Allocation | undefined {
    this.#update();
    const found = this.#byAddress.get(address);
    if (found !== undefined && (Allocation.isLive(found) || !containing)) return found;
    if (!containing) return undefined;
    // Inside a block: a walk over the live ones (interior addresses are rare; exact ones are O(1)).
    for (const a of this.#byAddress.values()) {
      if (!Allocation.isLive(a)) continue;
      const start = Allocation.addressIfLive(a);
      if (address >= start && address < start + a.size) return a;
    }
    return undefined;
  }

  /** Every live allocation (for dispose). */
  all(): Allocation[] {
    this.#update();
    return [...this.#byAddress.values()].filter((a) => Allocation.isLive(a));
  }

  /**
   * How many live allocations pass `test`, without reading any address (for
   * the checks of what getAllocator returns: off the hot path, O(live)).
   */
  countLive(test: (a: Allocation) => boolean): number {
    let n = 0;
    const newest = this.#newest.a;
    if (newest !== null && Allocation.isLive(newest) && test(newest)) n++;
    const pending = this.#pending;
    for (let i = 0; i < this.#count; i++) {
      const a = pending[i]!;
      if (Allocation.isLive(a) && test(a)) n++;
    }
    for (const a of this.#byAddress.values()) if (Allocation.isLive(a) && test(a)) n++;
    return n;
  }

  /** Forgets everything. */
  clear(): void {
    this.#newest.a = null;
    this.#pending.fill(undefined, 0, this.#count);
    this.#count = 0;
    this.#byAddress.clear();
  }

  #update(): void {
    const newest = this.#newest.a;
    if (newest !== null) {
      this.#newest.a = null;
      this.#pending[this.#count++] = newest;
      if (this.#count === this.#pending.length) this.#compact();
    }
    const pending = this.#pending, count = this.#count;
    if (count === 0) return;
    const map = this.#byAddress;
    // Oldest first: a later allocation at a reused address replaces an earlier, released one.
    for (let i = 0; i < count; i++) {
      const a = pending[i]!;
      pending[i] = undefined;
      if (Allocation.isLive(a)) map.set(Allocation.addressIfLive(a), a);
      else {
        // Released before it was indexed: kept only if someone read its address (to tell a second free
        // of that address from a foreign one), and never over a live allocation.
        const address = Allocation.knownAddress(a);
        const there = map.get(address);
        if (address > 0 && (there === undefined || !Allocation.isLive(there))) map.set(address, a);
      }
    }
    this.#count = 0;
    if (map.size > 2 * this.#live() + 1024) {
      for (const [address, a] of map) if (!Allocation.isLive(a)) map.delete(address);
    }
  }

  // The list is full: drop the released allocations in place (a second free of their address then reads as
  // a foreign one); when at least half are live, double it (amortized O(1) per add).
  #compact(): void {
    const pending = this.#pending, count = this.#count;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const a = pending[i]!;
      if (Allocation.isLive(a)) pending[kept++] = a;
    }
    for (let i = kept; i < count; i++) pending[i] = undefined;
    this.#count = kept;
    if (kept * 2 >= pending.length) {
      const larger = new Array(pending.length * 2).fill(undefined);
      for (let i = 0; i < kept; i++) larger[i] = pending[i];
      this.#pending = larger;
    }
  }
}
