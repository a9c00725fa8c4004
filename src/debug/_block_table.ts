// The records of a DebugAllocator's blocks, one slot per block, kept in typed
// arrays (struct of arrays) rather than one object per block: a checked
// allocate+free pair then creates no garbage and touches a few cache lines,
// which is what keeps "safety checks" within a few times the backing's own pair.
//
// Invariants (a slot is "live" while ids[slot] !== 0):
// 1. `live` is the number of live slots; slots at or above `end` were never
//    used; free slots below `end` are on the free stack, reused last-in first-out.
// 2. Allocation ids are unique and only grow, so sorting live slots by id
//    gives allocation order. A zero-size request never gets a slot.
// 3. For a live slot, `outers[slot]` is the block the backing gave, not yet
//    returned to it; `hosts[slot]` is the cached words of that block's buffer;
//    the user bytes are [userOffsets[slot], + sizes[slot]) of that buffer, at
//    `addresses[slot]` = hosts.base + userOffsets. No two live slots share an
//    address.
// 4. `fronts[slot]` > 0 for an in-band block: its front canary and header
//    take the `front` bytes before the user bytes and its back canary the 16
//    after them, so the outer block starts at `addresses[slot] - fronts[slot]`.
//    0 for an out-of-band block (no canaries; the outer block is the user bytes).
// 5. A block whose header can be read as Int32 words names its slot and id
//    there; every other live block (unaligned, out-of-band, C-style) is in the
//    allocator's address index.
// 6. With detached views, `buffers[slot]` is the block's own ArrayBuffer (a
//    WeakRef to it when unreachable blocks are reported), tagged with the
//    owner, slot and id; otherwise `handed[slot]` is the view object last
//    handed out for the block (its generation: a stale view of a freed block
//    whose address was reused is a different object).
// 7. The owner's Ledger agrees: ledger.live === live, and ledger.allocatedBytes
//    is the sum of `sizes` over live slots.
// 8. Over a backing without a lease table (an Allocator written in JavaScript),
//    `leases[slot]` is the lease on the outer block (null when no one can tell
//    of its release); otherwise always null (see _block_leases.ts).
import type { Lease } from "../alloc/_lease.ts";
import type { BufferWords } from "./_block_layout.ts";
import { sortBy } from "./_builtins.ts";
import type { Trace } from "./_traces.ts";

/** One record per live block; see the invariants above. */
export class BlockTable {
  ids: Float64Array = new Float64Array(64);
  addresses: Float64Array = new Float64Array(64);
  sizes: Float64Array = new Float64Array(64);
  userOffsets: Float64Array = new Float64Array(64);
  aligns: Int32Array = new Int32Array(64);
  fronts: Int32Array = new Int32Array(64);
  born: Float64Array = new Float64Array(64);
  unreachable: Uint8Array<ArrayBuffer> = new Uint8Array(64);
  /** The backing's block (front canary and header, user bytes, back canary). */
  outers: (Uint8Array<ArrayBuffer> | undefined)[] = new Array(64).fill(undefined);
  /** The cached words of each outer block's buffer. */
  hosts: (BufferWords | undefined)[] = new Array(64).fill(undefined);
  /** Allocation traces, when tracing. */
  traces: (Trace | null)[] = new Array(64).fill(null);
  /** The block's own ArrayBuffer when views are detached on free. */
  buffers: (ArrayBuffer | WeakRef<ArrayBuffer> | undefined)[] = new Array(64).fill(undefined);
  /** The view object handed out, when views are not detached. */
  handed: (ArrayBufferView | undefined)[] = new Array(64).fill(undefined);
  /** The lease on the outer block, over a backing that cannot tell of its releases (invariant 8). */
  leases: (Lease | null)[] = new Array(64).fill(null);
  /** Slots below `end` have been used; free ones are on the stack below. */
  end = 0;
  live = 0;
  #freeSlots = new Int32Array(64);
  #freeCount = 0;

  /** A free slot (growing the arrays when all are taken). The caller fills it and sets its id. */
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
    this.hosts[slot] = undefined;
    if (this.buffers[slot] !== undefined) this.buffers[slot] = undefined;
    if (this.handed[slot] !== undefined) this.handed[slot] = undefined;
    if (this.traces[slot] !== null) this.traces[slot] = null;
    this.unreachable[slot] = 0;
    this.#freeSlots[this.#freeCount++] = slot;
    this.live--;
  }

  /**
   * `release` for a heap with counters only, whose slots never hold an own
   * buffer, a handed view or the unreachable mark (those come with safety).
   */
  releaseCounted(slot: number): void {
    this.ids[slot] = 0;
    this.outers[slot] = undefined;
    this.hosts[slot] = undefined;
    if (this.traces[slot] !== null) this.traces[slot] = null;
    this.#freeSlots[this.#freeCount++] = slot;
    this.live--;
  }

  /** The live slot whose user bytes start at `address`, or -1 (a scan: for error paths and the C-style API). */
  find(address: number): number {
    for (let slot = 0; slot < this.end; slot++) {
      if (this.ids[slot] !== 0 && this.addresses[slot] === address) return slot;
    }
    return -1;
  }

  /** The live slot whose user bytes contain `address` (not at their start), or -1 (a scan: for error paths). */
  containing(address: number): number {
    for (let slot = 0; slot < this.end; slot++) {
      const start = this.addresses[slot];
      if (this.ids[slot] !== 0 && address > start && address < start + this.sizes[slot]) return slot;
    }
    return -1;
  }

  /** Live slots, oldest first (with the built-ins captured at load: leak reports use it). */
  liveSlots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.end; slot++) if (this.ids[slot] !== 0) slots[slots.length] = slot;
    const ids = this.ids;
    return sortBy(slots, (a, b) => ids[a] - ids[b]);
  }

  /** Address of the outer block of live `slot` (where the backing's block starts). */
  outerAddress(slot: number): number {
    return this.addresses[slot] - this.fronts[slot];
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
    this.userOffsets = widen(this.userOffsets, Float64Array);
    this.aligns = widen(this.aligns, Int32Array);
    this.fronts = widen(this.fronts, Int32Array);
    this.born = widen(this.born, Float64Array);
    this.unreachable = widen(this.unreachable, Uint8Array);
    this.#freeSlots = widen(this.#freeSlots, Int32Array);
    for (let i = this.outers.length; i < n; i++) {
      this.outers.push(undefined);
      this.hosts.push(undefined);
      this.traces.push(null);
      this.buffers.push(undefined);
      this.handed.push(undefined);
      this.leases.push(null);
    }
  }
}
