// What a DebugAllocator remembers of blocks that are gone, so a late free
// says "double-free" (or "use-after-free", naming the release) instead of
// "invalid-free", or worse, freeing whichever block now lives at that address.
//
// Double free after the address was reused (the pattern of Zig issue 6004).
// A free names its block by something that outlives the block; whether a
// stale name can be told from a live one depends on what it is:
//
// - A view with its own ArrayBuffer (detachFreed: true): the buffer is
//   the generation. Freeing detaches it and marks its tag freed; a new block
//   at the same address gets a new buffer, so a stale view can never reach it.
// - A view of the backing's memory (the default): the view object is
//   the generation. The table keeps the view it handed out for each block
//   (BlockTable.handed); a free through any other view of a live block looks
//   that view up among the views of the last RING freed blocks, and a hit is a
//   stale view of an older block at the same address: a double free, and the
//   live block is left alone. (A view the user derived from a stale view,
//   `subarray()` and the like, is not recognised.)
// - A C-style address carries no generation at all: `cFree(p)` after `q`
//   reused p's address is the very call that frees q. So the address must not
//   be reused while the record is kept: with `retainMetadata`, a freed block's
//   memory stays in a quarantine (the most recent QUARANTINE_BYTES freed, or
//   everything with `neverUnmap`) and its record (allocation id, size,
//   traces) is kept by address. A second free finds no live block there but
//   the record: a double free. Records outlive the quarantine (up to
//   KEPT_RECORDS); when a new block is allocated at a kept address, its
//   record is superseded (the new id is larger: the record is of an older
//   generation) and dropped.
import type { Lease } from "../alloc/_lease.ts";
import type { BufferWords } from "./_block_layout.ts";
import { newMap, setIn } from "./_builtins.ts";
import type { Trace } from "./_traces.ts";

/** Frees whose address, id and view are always remembered. */
const RING = 256;
/** Records kept by address with `retainMetadata` (without it: blocks the backing released, up to RETIRED_RECORDS). */
const KEPT_RECORDS = 65_536;
const RETIRED_RECORDS = 4096;
/** Bytes of freed memory `retainMetadata` holds back from the backing, so their addresses are not reused. */
export const QUARANTINE_BYTES: number = 64 << 20;

/** What is remembered of a block that is gone. */
export interface FreedBlock {
  readonly id: number;
  readonly address: number;
  readonly size: number;
  /** Where it was allocated, when traced. */
  readonly trace: Trace | null;
  /** Where it was first freed, when traced. */
  readonly freedTrace: Trace | null;
  /** Why it is gone when its backing released it (a reset, a scope's end), else null. */
  readonly releasedBy: string | null;
}

/** The last frees, and the kept records of freed and released blocks. */
export class FreedRecords {
  readonly #addresses = new Float64Array(RING).fill(-1);
  readonly #ids = new Float64Array(RING);
  readonly #sizes = new Float64Array(RING);
  readonly #views: (object | undefined)[] = new Array(RING).fill(undefined);
  readonly #traces: (Trace | null)[] = new Array(RING).fill(null);
  readonly #freedTraces: (Trace | null)[] = new Array(RING).fill(null);
  #at = 0;
  readonly #kept = new Map<number, FreedBlock>();
  readonly #keptLimit: number;
  readonly #retiredViews = new WeakMap<object, FreedBlock>();

  constructor(retainMetadata: boolean) {
    this.#keptLimit = retainMetadata ? KEPT_RECORDS : RETIRED_RECORDS;
  }

  /** Records kept by address (0 on the hot path unless `retainMetadata` or a release by the backing). */
  kept = 0;

  /**
   * A block was freed (the hot path: a few stores). `view` is the view handed
   * out for it, if kept; `trace` and `freedTrace` where it was allocated and
   * freed, when it was traced.
   */
  noteFree(
    address: number,
    id: number,
    size: number,
    view: object | undefined,
    trace: Trace | null,
    freedTrace: Trace | null,
  ): void {
    const at = this.#at;
    this.#addresses[at] = address;
    this.#ids[at] = id;
    this.#sizes[at] = size;
    this.#views[at] = view;
    this.#traces[at] = trace;
    this.#freedTraces[at] = freedTrace;
    this.#at = (at + 1) & (RING - 1);
  }

  /** Keeps `record` by its address (retainMetadata, or a block its backing released). */
  keep(record: FreedBlock): void {
    this.#kept.delete(record.address);
    this.#kept.set(record.address, record);
    if (this.#kept.size > this.#keptLimit) this.#kept.delete(this.#kept.keys().next().value!);
    this.kept = this.#kept.size;
  }

  /** Remembers that `view` was handed out for a block its backing released (views of the backing's memory). */
  keepView(view: object, record: FreedBlock): void {
    this.#retiredViews.set(view, record);
  }

  /** A new block lives at `address`: a record kept there is of an older generation. */
  supersede(address: number): void {
    this.#kept.delete(address);
    this.kept = this.#kept.size;
  }

  /** What is remembered of the block that was at `address`, most recent first. */
  byAddress(address: number): FreedBlock | null {
    const kept = this.#kept.get(address);
    if (kept !== undefined) return kept;
    for (let i = 1; i <= RING; i++) {
      const at = (this.#at - i) & (RING - 1);
      if (this.#addresses[at] === address) return this.#fromRing(at);
    }
    return null;
  }

  /** The freed or released block `view` was handed out for, if it is remembered. */
  byView(view: object): FreedBlock | null {
    for (let i = 1; i <= RING; i++) {
      const at = (this.#at - i) & (RING - 1);
      if (this.#views[at] === view) return this.#fromRing(at);
    }
    return this.#retiredViews.get(view) ?? null;
  }

  #fromRing(at: number): FreedBlock {
    return {
      id: this.#ids[at],
      address: this.#addresses[at],
      size: this.#sizes[at],
      trace: this.#traces[at],
      freedTrace: this.#freedTraces[at],
      releasedBy: null,
    };
  }
}

/** A freed block whose memory is held back from the backing. */
export interface Quarantined {
  /** The backing's block, freed through it when it leaves the quarantine. */
  readonly outer: Uint8Array<ArrayBuffer>;
  /** The words of the outer block's buffer, and where the freed user bytes are in it (checked when poisoned). */
  readonly host: BufferWords;
  readonly user: number;
  readonly size: number;
  /** Address of the outer block's first byte. */
  readonly start: number;
  /** Bytes of the outer block. */
  readonly bytes: number;
  /** The allocation id of the block it held (frees go newest first, for LIFO backings). */
  readonly id: number;
  /** The lease on the outer block, over a backing that cannot tell of its releases (see _block_leases.ts). */
  lease: Lease | null;
}

/** Freed blocks held back from the backing, oldest first, up to a byte budget. */
export class Quarantine {
  #entries: Quarantined[] = [];
  #head = 0;
  #bytes = 0;
  readonly #budget: number;

  constructor(budget: number) {
    this.#budget = budget;
  }

  /** Blocks held. */
  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** Holds `entry`; returns the oldest entries that no longer fit the budget (the caller frees them). */
  add(entry: Quarantined): Quarantined[] {
    this.#entries.push(entry);
    this.#bytes += entry.bytes;
    let evicted: Quarantined[] | null = null;
    while (this.#bytes > this.#budget && this.#head < this.#entries.length - 1) {
      const old = this.#entries[this.#head];
      this.#entries[this.#head++] = undefined as unknown as Quarantined;
      this.#bytes -= old.bytes;
      (evicted ??= []).push(old);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return evicted ?? [];
  }

  /** Removes and returns the entries whose outer block starts in [lo, hi) (their backing released them). */
  takeRange(lo: number, hi: number): Quarantined[] {
    const taken: Quarantined[] = [];
    const kept: Quarantined[] = [];
    for (let i = this.#head; i < this.#entries.length; i++) {
      const entry = this.#entries[i];
      if (entry.start >= lo && entry.start < hi) {
        taken.push(entry);
        this.#bytes -= entry.bytes;
      } else kept.push(entry);
    }
    if (taken.length > 0) {
      this.#entries = kept;
      this.#head = 0;
    }
    return taken;
  }

  /**
   * The bytes held back from each outer block, by the block's address: for
   * the leak check at exit, where memory held for freed blocks is no leak.
   * Built with the built-ins captured at load (see _builtins.ts).
   */
  heldByStart(): Map<number, number> {
    const map = newMap<number, number>();
    for (let i = this.#head; i < this.#entries.length; i++) {
      const entry = this.#entries[i];
      setIn(map, entry.start, entry.bytes);
    }
    return map;
  }

  /** The entries held, oldest first. */
  held(): Quarantined[] {
    return this.#entries.slice(this.#head);
  }

  /** The block held most recently (the one `add` just took), or null. */
  newest(): Quarantined | null {
    return this.#entries.length > this.#head ? this.#entries[this.#entries.length - 1] : null;
  }

  /** Removes and returns every entry (an index loop: teardown must not depend on a replaced `slice`). */
  drain(): Quarantined[] {
    const all: Quarantined[] = [];
    for (let i = this.#head; i < this.#entries.length; i++) all[all.length] = this.#entries[i];
    this.#entries = [];
    this.#head = 0;
    this.#bytes = 0;
    return all;
  }
}
