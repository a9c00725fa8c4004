import { native } from "../../ffi/native.ts";
import { intrinsic } from "../../ffi/boundary.ts";
import { ownerOf } from "./_ownership.ts";
import { describe } from "../base/_validate.ts";
import { mayRelease, transferredError } from "../base/_detach.ts";
import type { Ledger } from "./_ledger.ts";

// Leases: how an object that keeps its memory inside another allocator's
// block learns that the block went away (the safety model: chains cannot dangle, and an owner knows when its storage is gone).
//
// A child allocator's chunk, a DynamicArray's storage and a SIMDArray's
// vectors are ordinary blocks of their allocator. Whoever holds such a block
// *leases* it: the allocator records the block's address and, when the block
// is released by anything other than the holder (a `free` through another
// view, a scope's end, `reset()`, `dispose()`, or the allocator's own backing
// releasing it), revokes the lease. The holder then detaches every view it
// made over that memory and refuses further use with "use-after-free". The
// holder's own frees and resizes end the lease first, so they revoke nothing.
//
// Revocation goes down a chain by itself: a revoked child allocator disposes
// its own table, which revokes its own holders, and so on to any depth.
//
// Memory memkit makes outside its allocators (a mapping and its windows, a
// FramePool's frames, a PurgeableBuffer, a ResourceHeap's resources) may reach
// a holder too, through an Allocator written in JavaScript that passes it on.
// The objects that make it register as *lessors* (registerLessor) and end the
// leases over that memory before they release or reuse it (unmap, a window's
// close, a frame's release, a resource's free): rule 1 holds for views memkit
// did not make itself.
//
// Allocators that hand out many small blocks on behalf of their users (the
// DebugAllocator) *watch* their backing instead: they are told the address
// ranges a bulk release (scope end, reset, dispose) gave back, and retire the
// blocks inside them. Watching costs nothing per allocation.
//
// Cost: a single block's free tests `leases.leased !== 0`, a bulk release
// `leases.count !== 0`, before doing anything; only chained allocators and
// arrays pay for lookups, and a watching DebugAllocator costs its backing's
// frees nothing.

// Telling holders is the middle of a change: the allocator told them (a free or resize of their block, a reset,
// a scope's end) has not made it yet. Code they would run then (a child allocator giving its other chunks back
// through an Allocator written in JavaScript) could call back into that allocator halfway through it: free the
// same block again, allocate the memory being released, dispose it. So the allocator is busy while it tells them
// (tellHolders: every call into it but `owns` and `stats` is refused, "unsupported", a dispose too, as while it
// calls its backing), and what a revoked holder gives back waits until the change is made (afterChange): the
// program's code it reaches then makes ordinary calls on an allocator in order. `changing` counts the changes
// under way (they nest: a holder told may end allocators below it); `putOff` is the work waiting for the last.
let changing = 0;
let putOff: (() => void)[] = [];

// What a call into an allocator that is telling its holders reads (Ledger.busy).
const TELLING = "is releasing, resizing or moving memory that another allocator or an array holds, and code run " +
  "as that holder let go of it called back in: call again once that release has returned";

/**
 * Runs `work` (a revoked holder giving its other blocks back to its backing) once no allocator is in the middle of
 * a change it told its holders of, or now when none is. `work` must not throw (what it throws is dropped).
 */
export function afterChange(work: () => void): void {
  if (changing === 0) work();
  else putOff.push(work);
}

/**
 * Opens a change to an allocator's memory whose holders it tells (tellHolders, tellFreed, resizedUnderLease)
 * before it makes it; always paired with `endChange()`, in a `finally` after the change is made. Changes nest.
 * (Two calls rather than a callback: the paths that open one are an allocator's free and resize, whose locals a
 * closure would make the engine allocate on every call, even where the closure is never made.)
 */
export function beginChange(): void {
  changing++;
}

/** Closes a change opened by beginChange: once none is open, what holders put off (see afterChange) runs. */
export function endChange(): void {
  if (--changing !== 0 || putOff.length === 0) return;
  const work = putOff;
  putOff = [];
  for (const w of work) {
    try {
      w();
    } catch { /* giving back is quiet: a backing that refuses keeps the block */ }
  }
}

/** beginChange, `change`, endChange (for paths off the hot ones, where a closure costs nothing that matters). */
export function withChange<T>(change: () => T): T {
  beginChange();
  try {
    return change();
  } finally {
    endChange();
  }
}

/**
 * Tells holders of an allocator's memory (`tell`: its lease table's `freed` or `released`) that it is released or
 * changed, with the allocator busy (`ledger`): code they run cannot call into it halfway through the change (every
 * call but `owns` and `stats` is refused, "unsupported", a dispose too). Call it between beginChange and
 * endChange, with the change made after it, so what holders give back waits until then.
 * @throws What `tell` throws; "use-after-free" for `op` when code a holder ran ended the allocator (released its
 *   memory through its own backing): the change must not be made.
 */
export function tellHolders(ledger: Ledger, op: string, tell: () => void): void {
  const busy = ledger.busy(TELLING);
  try {
    tell();
  } finally {
    if (busy) ledger.idle();
  }
  if (busy && ledger.ended !== null) throw ledger.usedAfterEnd(op);
}

/** tellHolders of `table.freed(address, reason, size)`: the block of `size` bytes at `address` was freed or moved. */
export function tellFreed(
  ledger: Ledger,
  op: string,
  table: LeaseTable,
  address: number,
  reason: string,
  size: number,
): void {
  const busy = ledger.busy(TELLING);
  try {
    table.freed(address, reason, size);
  } finally {
    if (busy) ledger.idle();
  }
  if (busy && ledger.ended !== null) throw ledger.usedAfterEnd(op);
}

/**
 * tellFreed for an allocator that tells its holders once its change is made, not before: a DebugAllocator, whose
 * backing may refuse its free (a stack freeing out of order), so it tells only what its backing took. The
 * allocator (`ledger`) is busy meanwhile, as for tellFreed; call it between beginChange and endChange, after the
 * change, so what holders give back waits until the caller is done. An end that code a holder ran brought about
 * is not thrown (the change stands): the caller reads `ledger.ended`. `except`: a lease of the allocator's own
 * on that memory, which the change does not release (see LeaseTable.freed).
 */
export function tellFreedAfter(
  ledger: Ledger,
  table: LeaseTable,
  address: number,
  reason: string,
  size: number,
  except: Lease | null = null,
): void {
  const busy = ledger.busy(TELLING);
  try {
    table.freed(address, reason, size, except);
  } finally {
    if (busy) ledger.idle();
  }
}

/** tellFreedAfter of `table.released(lo, hi, reason)`: memory in [lo, hi) went back to the allocator. */
export function tellReleasedAfter(ledger: Ledger, table: LeaseTable, lo: number, hi: number, reason: string): void {
  const busy = ledger.busy(TELLING);
  try {
    table.released(lo, hi, reason);
  } finally {
    if (busy) ledger.idle();
  }
}

/** Something that keeps memory inside a block it leased. */
export interface LeaseHolder {
  /**
   * The leased block was released by someone other than the holder. Called
   * once, with the lessor busy (see tellHolders) or already ended. `partial`
   * is true when the lessor itself lives on (a free, a scope's end, a reset),
   * so the holder may still return its other blocks to it, through afterChange
   * (the lessor may be in the middle of its change); false when the lessor is
   * gone. Must not throw.
   */
  revoke(reason: string, partial: boolean): void;
}

/** Something that retires its own records of memory a bulk release gave back. */
export interface RangeWatcher {
  /** Memory in [lo, hi) went back (a scope's end, a reset); the lessor lives on. */
  released(lo: number, hi: number, reason: string): void;
  /** Everything went back: the lessor was disposed or revoked. */
  releasedAll(reason: string): void;
}

/** A holder's claim on one block. */
export interface Lease {
  /** Whether the lease still holds (false after `end()` or a revocation). */
  readonly active: boolean;
  /** The holder is about to free or resize the block itself: stop watching it. Idempotent. */
  end(): void;
}

interface Entry extends Lease {
  readonly address: number;
  readonly size: number;
  readonly holder: LeaseHolder;
}

// Each memkit allocator's lease table, by allocator: module-private, so no
// caller can swap a table and make a release go unheard. A wrapper whose
// blocks are another allocator's (a FailingAllocator, a counters-only
// DebugAllocator) registers a function that finds that allocator's table.
const tables = new WeakMap<object, LeaseTable | (() => LeaseTable | null)>();

/** Gives `owner` its lease table, or a function that finds the table of the allocator whose blocks it hands out. */
export function registerLeases(owner: object, table: LeaseTable | (() => LeaseTable | null)): void {
  tables.set(owner, table);
}

// A lease table the next allocator made takes as its own (set by withLeaseTable around its construction).
let pendingTable: LeaseTable | null = null;

/**
 * Makes allocators (`make`) that keep their leases in `table`: several allocators that act as one (the HAL's
 * size-class pools, a region's heap made on first use) then tell one table of their releases, so a chain or
 * a DebugAllocator over the one they make up hears of every block any of them gives back, in O(1).
 */
export function withLeaseTable<T>(table: LeaseTable, make: () => T): T {
  pendingTable = table;
  try {
    return make();
  } finally {
    pendingTable = null;
  }
}

/** An allocator's own lease table: the one `withLeaseTable` passes, else a new one. Call it first thing. */
export function ownLeaseTable(): LeaseTable {
  const pending = pendingTable;
  pendingTable = null; // only the first allocator made takes it (options' getters may make others)
  if (pending === null) return new LeaseTable();
  pending.shared = true;
  return pending;
}

// What the program did when memkit releases memory on its behalf (MemoryInterface.endFrame() resets the
// interface's arena, FramePool.dispose() unmaps its frames): the holders told first hear that, not the call
// memkit made inside ("Arena.reset()", which the program never called). Holders further down a chain are told
// by their own lessor, in its own words, which include the first one's (telling > 0).
let onBehalfOf: string | null = null;
let telling = 0;

/**
 * Runs `release`, telling the holders and watchers of whatever it releases that `reason` released it (say,
 * "MemoryInterface.dispose() released it"): for a public operation that releases memory through memkit's own
 * allocators or mappings, whose names the program never used. Nests: the outermost reason wins (the call the
 * program made; MemoryInterface.dispose() closing its shared memory is not SharedMemory.close()).
 */
export function releasingFor<T>(reason: string, release: () => T): T {
  const outer = onBehalfOf;
  onBehalfOf ??= reason;
  try {
    return release();
  } finally {
    onBehalfOf = outer;
  }
}

// The reason the holders of a release hear: see releasingFor.
function reasonFor(reason: string): string {
  return telling === 0 && onBehalfOf !== null ? onBehalfOf : reason;
}

// Memory memkit made outside its allocators and later releases or reuses itself: a mapping and its windows
// (mapPages, mapFile, shared memory, a FramePool's frames, a PurgeableBuffer's pages), a ResourceHeap's
// resources. An Allocator written in JavaScript may pass such memory on; the holder that takes it then leases
// it from the object that made it, found here by address. Held strongly until the lessor unregisters (its
// unmap or dispose): one that never does keeps its native memory for good anyway. (A WeakRef per lessor, or a
// closure to unregister it, made mapPages + unmap 6 to 15 % slower; an array slot costs it no more than noise.)

/** The leases to end when the `size` bytes at `address`, reached through `buffer`, go; null: not the lessor's. */
export type FindLeases = (lessor: object, buffer: ArrayBufferLike, address: number, size: number) => LeaseTable | null;

/** A registered lessor: give it to unregisterLessor once its memory is gone. */
export interface Lending {
  readonly lessor: object;
  readonly find: FindLeases;
  /** Its place in `lessors`; -1 once unregistered. */
  at: number;
}

// Every registered lessor, in no order: each knows its place, so unregistering is a swap with the last.
const lessors: Lending[] = [];

/**
 * Registers `lessor`, an object that hands out views over native memory it later releases or reuses (a
 * mapping, a ResourceHeap): `find` (which must not capture it: it is passed in) returns the table of the
 * leases to end when the `size` bytes at `address`, reached through `buffer`, go or change hands, or null
 * when that memory is not (or no longer) the lessor's. The lessor ends those leases (`released`,
 * `releasedAll`) before it releases or reuses the memory, and unregisters when the memory is gone.
 */
export function registerLessor(lessor: object, find: FindLeases): Lending {
  const lending: Lending = { lessor, find, at: lessors.length };
  lessors.push(lending);
  return lending;
}

/** Takes `lending`'s lessor out of the lessors leaseBlock looks through; a second call does nothing. */
export function unregisterLessor(lending: Lending): void {
  const at = lending.at;
  if (at < 0) return;
  const last = lessors.pop()!;
  if (last !== lending) {
    lessors[at] = last;
    last.at = at;
  }
  lending.at = -1;
}

// The table of the registered lessor whose memory holds the `size` bytes at `address`, or null (a scan: for the
// rare path of a chain over an Allocator written in JavaScript).
function lessorTable(buffer: ArrayBufferLike, address: number, size: number): LeaseTable | null {
  for (const lending of lessors) {
    const table = lending.find(lending.lessor, buffer, address, size);
    if (table !== null) return table;
  }
  return null;
}

// Loose leases in every table (see LeaseTable's #loose): memory an Allocator written in JavaScript passed on, held
// somewhere down a chain the allocator whose memory it is cannot name (anyLooseLeases).
let looseLeases = 0;

/**
 * Whether any holder anywhere keeps memory an Allocator written in JavaScript passed on (a loose lease): an
 * allocator whose blocks such memory may lie in, but whose holders lease it from another allocator's table (a
 * DebugAllocator's blocks are views of its backing's memory), opens a change around a release only then.
 */
export function anyLooseLeases(): boolean {
  return looseLeases !== 0;
}

/**
 * The lease table of the allocator or lessor whose memory `buffer` is, at `address` (`size` bytes), where a holder
 * of memory an Allocator written in JavaScript passed on leases it (as leaseBlock finds it), or null. For an
 * allocator that releases memory its backing never hears of (a DebugAllocator holding a freed block back): it
 * tells those holders itself. (A scan of allocators and lessors: for a rare path.)
 */
export function looseTableOf(buffer: ArrayBufferLike, address: number, size: number): LeaseTable | null {
  const owner = ownerOf(buffer);
  return owner !== undefined ? leaseTableOf(owner) : lessorTable(buffer, address, size);
}

/** The leases and watchers of one allocator. */
export class LeaseTable {
  /** Leases plus watchers: bulk release paths (scope end, reset, rewind) skip everything when it is 0. */
  count = 0;
  /** Leases alone: a single block's free skips `freed()` when it is 0 (watchers hear only of bulk releases). */
  leased = 0;
  /**
   * Whether several allocators keep their leases here (see withLeaseTable): one of them that ends must end
   * only the leases within its own memory (`released(lo, hi, reason, false)`), not `releasedAll`.
   */
  shared = false;
  readonly #byStart = new Map<number, Entry[]>();
  readonly #watchers = new Set<RangeWatcher>();
  /**
   * Leases that may start inside one of this allocator's blocks (made through an Allocator in JavaScript passing
   * blocks on, which may pass a part of one): a free of a block revokes those within it too. Also in #byStart.
   */
  readonly #loose = new Set<Entry>();

  /**
   * Records that `holder` keeps memory in the block of `size` bytes at `address`; `loose` when `address` may lie
   * inside one of the allocator's blocks rather than at its start.
   */
  lease(address: number, size: number, holder: LeaseHolder, loose = false): Lease {
    const entry: Entry = {
      address,
      size,
      holder,
      active: true,
      end: () => {
        if (entry.active) this.#remove(entry);
      },
    };
    const list = this.#byStart.get(address);
    if (list === undefined) this.#byStart.set(address, [entry]);
    else list.push(entry);
    if (loose) this.#loose.add(entry);
    if (loose) looseLeases++;
    this.count++;
    this.leased++;
    return entry;
  }

  /** Tells `watcher` about every bulk release until the returned function is called. */
  watch(watcher: RangeWatcher): () => void {
    if (!this.#watchers.has(watcher)) {
      this.#watchers.add(watcher);
      this.count++;
    }
    return () => {
      if (this.#watchers.delete(watcher)) this.count--;
    };
  }

  /**
   * Whether a holder keeps memory in the block of `size` bytes at `address`: a lease at its start, or a loose one
   * anywhere inside it (or reaching into it), as `freed` would revoke.
   */
  holds(address: number, size: number): boolean {
    if (this.#byStart.has(address)) return true;
    for (const entry of this.#loose) {
      if (entry.address < address + size && entry.address + entry.size > address) return true;
    }
    return false;
  }

  /**
   * The block of `size` bytes starting at `address` was freed or moved by someone other than its holder (a
   * loose lease anywhere inside it is revoked too). `except` stays: the lease of whoever releases the block on
   * memory it keeps (a DebugAllocator holding a freed block back in its quarantine leases the whole block, which
   * it still has: it tells the holders inside it, not itself).
   */
  freed(address: number, reason: string, size: number, except: Lease | null = null): void {
    const list = this.#byStart.get(address);
    const revoked = list === undefined ? [] : [...list];
    if (this.#loose.size !== 0) {
      for (const entry of this.#loose) {
        // Inside the block, or starting before it and reaching into it (a block passed on together with its
        // neighbour): either way the holder keeps memory the free just gave back.
        if (entry.address !== address && entry.address < address + size && entry.address + entry.size > address) {
          revoked.push(entry);
        }
      }
    }
    if (except !== null) {
      const at = revoked.indexOf(except as Entry);
      if (at >= 0) revoked.splice(at, 1);
    }
    if (revoked.length === 0) return;
    for (const entry of revoked) this.#remove(entry);
    const said = reasonFor(reason);
    telling++;
    try {
      for (const entry of revoked) entry.holder.revoke(said, true);
    } finally {
      telling--;
    }
  }

  /**
   * Memory in [lo, hi) went back: to the allocator, which lives on (`partial`, the default), or with the
   * allocator, one of several sharing this table, that ended (`partial` false).
   */
  released(lo: number, hi: number, reason: string, partial = true): void {
    if (hi <= lo) return;
    const revoked: Entry[] = [];
    for (const list of this.#byStart.values()) {
      for (const entry of list) {
        if (entry.address < hi && entry.address + Math.max(entry.size, 1) > lo) revoked.push(entry);
      }
    }
    for (const entry of revoked) this.#remove(entry);
    const said = reasonFor(reason);
    telling++;
    try {
      for (const entry of revoked) entry.holder.revoke(said, partial);
      for (const watcher of [...this.#watchers]) watcher.released(lo, hi, said);
    } finally {
      telling--;
    }
  }

  /** Everything went back: the allocator was disposed or revoked. Watchers are dropped too. */
  releasedAll(reason: string): void {
    const revoked: Entry[] = [];
    for (const list of this.#byStart.values()) revoked.push(...list);
    const watchers = [...this.#watchers];
    for (const entry of revoked) this.#remove(entry);
    this.#watchers.clear();
    this.count = 0;
    this.leased = 0;
    const said = reasonFor(reason);
    telling++;
    try {
      for (const entry of revoked) entry.holder.revoke(said, false);
      for (const watcher of watchers) watcher.releasedAll(said);
    } finally {
      telling--;
    }
  }

  #remove(entry: Entry): void {
    (entry as { active: boolean }).active = false;
    if (this.#loose.has(entry)) looseLeases--;
    this.#loose.delete(entry);
    const list = this.#byStart.get(entry.address);
    if (list === undefined) return;
    const at = list.indexOf(entry);
    if (at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.#byStart.delete(entry.address);
    this.count--;
    this.leased--;
  }
}

/** The lease table of a memkit allocator, or null for any other object. */
export function leaseTableOf(allocator: unknown): LeaseTable | null {
  if (typeof allocator !== "object" || allocator === null) return null;
  const table = tables.get(allocator);
  return table === undefined ? null : typeof table === "function" ? table() : table;
}

/**
 * Leases `block` of `allocator` for `holder`; null when the block is empty, or
 * when neither the allocator nor the memkit object whose memory the block is
 * (an Allocator in JavaScript passing memkit's memory on: a memkit allocator's
 * block, or memory of a registered lessor such as a mapping or a ResourceHeap)
 * can tell anyone about releases. Every memkit allocator has a table, or finds
 * one (a wrapper over several allocators shares one among them, as the HAL's
 * size-class pools do): no scan for them.
 */
export function leaseBlock(allocator: unknown, block: ArrayBufferView, holder: LeaseHolder): Lease | null {
  const length = intrinsic.byteLength(block);
  if (length === 0) return null;
  let table = leaseTableOf(allocator);
  if (table === null && !tables.has(allocator as object)) {
    // Not memkit's: the block may still be one of a memkit allocator's, which tells its leases of its releases
    // (a scan of every allocator, paid only by chains over an Allocator written in JavaScript), or memory a
    // mapping, a frame, a resource... made (a scan of those): their release or reuse ends the lease too.
    const buffer = intrinsic.range(block as Uint8Array)[0];
    const address = native.addressOf(block);
    const owner = ownerOf(buffer);
    if (owner !== undefined) table = leaseTableOf(owner);
    else table = lessorTable(buffer, address, length);
    if (table === null) return null;
    return table.lease(address, length, holder, true);
  }
  if (table === null) return null;
  return table.lease(native.addressOf(block), length, holder);
}

/**
 * A block of `size` bytes at `address` is about to change size or place through `view`. A lease on it is a
 * holder's who did not ask (holders end their lease before they resize): the holder's memory changes under it,
 * so the lease is revoked as a free's would be. Then, when a buffer over that memory was transferred away (the
 * holder may have just found it), the resize is refused ("corruption"): that memory is kept for good. Call it
 * when `table.leased !== 0 || anyTaken()`, once the resize is certain to succeed but before anything changes
 * (the room for it found, or taken): a resize that fails for want of room must leave the holder as it was. The
 * allocator (`ledger`) is busy while the holder is told (see tellHolders): call it between beginChange and
 * endChange, the resize made after it. `name` is the allocator's class name.
 */
export function resizedUnderLease(
  ledger: Ledger,
  table: LeaseTable,
  address: number,
  size: number,
  view: ArrayBufferView,
  name: string,
): void {
  if (table.leased !== 0) tellFreed(ledger, "resize", table, address, `${name}.resize() changed it`, size);
  if (!mayRelease(address, size)) throw transferredError("resize", `the block ${describe(view)} names`);
}
