// What an interface updates on every release besides the allocator: its
// counters, its index of allocations, and its waiting allocations (a release
// may give them room). One per interface, shared by its allocations' origins.
//
// It also keeps the released blocks the temporary arena still holds (given
// back out of order: only the arena's most recent block rolls back), which
// count against their types' budgets until they come back (Frame.held), and
// gives them back outside frames as soon as that is safe (reclaim).
import { arenaEnded, bulkReleaseRefusal } from "../alloc/arena.ts";
import { releasingFor } from "../alloc/_lease.ts";
import { addressOf } from "../base/native_info.ts";
import { Allocation, type Bookkeeping, type Frame } from "./_allocation.ts";
import type { AllocationIndex } from "./_allocation_index.ts";
import type { Backings } from "./_backings.ts";
import type { Counters } from "./_memory_stats.ts";
import { T_TEMPORARY } from "./_request.ts";
import type { WaitQueue } from "./_wait_queue.ts";

/** What holders of the arena's memory hear when the interface gives its released blocks back. */
const RECLAIMED = "the MemoryInterface released its temporary blocks (nothing temporary was live)";

export class Books implements Bookkeeping {
  /** Released blocks the arena holds, in every frame (the sum of their `held` lists' lengths). */
  heldBlocks = 0;
  /**
   * Blocks of the caller's own (from getAllocator("arena")) they freed and the arena kept (it rolls back only
   * its most recent block), by first byte: they are live in the arena's count but hold the reset back no
   * longer (see reclaim). Invariant: each is a block the arena still holds; so after any release of many
   * blocks at once (a reset, a scope's or frame's end, every one followed by returned()) the ones it took go.
   */
  readonly #ownFreed = new Map<number, ArrayBufferView>();
  /** Waiting allocations (the wait queue's count, as it tells it: see waitersCounted). */
  #waiting = 0;
  /**
   * Whether a release has more to do than update the index: nonzero while allocations wait or the arena holds
   * released blocks. One field, so that a pool's deallocation reads one field here, as it read one before.
   */
  attention = 0;

  constructor(
    readonly counters: Counters,
    readonly index: AllocationIndex,
    readonly waiters: WaitQueue,
    readonly backings: Backings,
  ) {}

  releasedOutside(frame: Frame | null, t: number, size: number): void {
    if (frame !== null) this.backings.releasedFrom(frame, t, size);
    else {
      const counter = this.counters.types[t];
      counter.unframedBytes -= size;
      counter.unframedCount--;
    }
  }

  released(a: Allocation): void {
    this.index.released(a);
    if (this.attention !== 0) this.#settle();
  }

  /** The wait queue's count changed to `count`. */
  waitersCounted(count: number): void {
    this.#waiting = count;
    this.attention = count + this.heldBlocks;
  }

  // After a release, when anything waits on one: blocks the arena holds may come back now (outside frames, once
  // nothing else is live in it), and waiting allocations may find room.
  #settle(): void {
    if (this.heldBlocks !== 0) this.reclaim();
    if (this.waiters.count !== 0) this.waiters.wake();
  }

  remember(): void {
    this.index.remember();
  }

  held(frame: Frame, a: Allocation): void {
    (frame.held ??= []).push(a);
    this.heldBlocks++;
    this.attention++;
    this.counters.hold(Allocation.counter(a), a.size);
  }

  /** The caller freed a block of their own in the arena: it `kept` it, or rolled it back (its place is free). */
  ownFreed(view: ArrayBufferView, kept: boolean): void {
    const address = addressOf(view);
    if (kept) this.#ownFreed.set(address, view); // once per block however often it is freed
    else this.#ownFreed.delete(address);
  }

  /**
   * The held blocks of `frame` made from origin serial `since` on came back (all of them by default): the
   * frame ended, or a scope of the caller's own on the arena did, or the arena was reset.
   */
  returned(frame: Frame, since = 0): void {
    if (this.#ownFreed.size !== 0) this.#forgetReleased();
    const held = frame.held;
    if (held === null) return;
    let kept = 0;
    for (const a of held) {
      if (Allocation.serial(a) < since) held[kept++] = a;
      else {
        this.counters.hold(Allocation.counter(a), -a.size);
        this.heldBlocks--;
      }
    }
    held.length = kept;
    if (kept === 0) frame.held = null;
    this.attention = this.#waiting + this.heldBlocks;
    this.counters.changed();
  }

  /**
   * Outside frames, once no temporary allocation of the interface is live: when the arena holds nothing but
   * released blocks of the interface (no block of the caller's own from getAllocator("arena"), no scope of
   * theirs open, nothing else served by the arena live: its live count is exactly the blocks held), it is
   * reset at once, which is what endFrame() outside frames would do, and they come back. Its views then read
   * as length 0 (the arena detaches every view it released: nothing reads the memory it hands out again).
   * Otherwise they stay held until a later release, endFrame(), or the end of the caller's scope.
   */
  reclaim(): void {
    const backings = this.backings;
    const held = backings.base.held;
    if (held === null || backings.frameDepth !== 0 || this.counters.types[T_TEMPORARY].count !== 0) return;
    const arena = backings.arena; // made: it holds blocks
    if (arenaEnded(arena) || bulkReleaseRefusal("reset") !== null) return; // a claim under way: later
    const stats = arena.stats();
    // Live in it: the released blocks held, the caller's blocks freed (kept), and what else is live.
    if (stats.scopeDepth !== 0 || stats.liveAllocations !== held.length + this.#ownFreed.size) return;
    try {
      releasingFor(RECLAIMED, () => arena.reset("retain-capacity"));
    } finally {
      // The arena is reset even when a chunk's backing threw (see Arena.reset): the blocks came back.
      this.returned(backings.base);
      if (this.waiters.count !== 0) this.waiters.wake();
    }
  }

  // The arena released many blocks at once: the caller's freed blocks among them are gone (their places may be
  // handed out again, to blocks that are live).
  #forgetReleased(): void {
    const arena = this.backings.arenaMade ? this.backings.arena : null;
    for (const [address, view] of this.#ownFreed) {
      if (arena === null || !arena.owns(view)) this.#ownFreed.delete(address);
    }
  }
}
