// The bookkeeping every allocator shares: counters, the record of the last
// failure, and whether the allocator is still alive. One instance per
// allocator, held in a private field; hot paths touch its plain fields.
import { ENDED_ON_THEFT } from "../base/_detach.ts";
import { AllocationError, type AllocationErrorCategory } from "../base/errors.ts";
import type { AllocatorKind, AllocatorStats } from "../base/allocator.ts";
import { fragmentation } from "./fragmentation.ts";

/** What an allocator knows about its free space, for {@linkcode Ledger.stats}. */
export interface FreeSpace {
  /** Bytes held from the backing (or the OS). */
  capacityBytes: number;
  /** Bytes it can hand out without asking its backing for more. */
  availableBytes: number;
  /** Largest block it could hand out now. */
  largestFreeBlock: number;
  /** Sizes of its free blocks (for the fragmentation metric), or the metric itself. */
  freeBlocks: Iterable<number> | number;
  /** Bytes held beyond what was requested; default: capacity - available - allocated. */
  overheadBytes?: number;
}

/**
 * Counters, the last failure and the lifetime of one allocator.
 *
 * Invariants: `live === totalAllocations - totalFrees`; `allocatedBytes` is
 * the sum of the requested sizes of live blocks; zero-size blocks are never
 * counted (they hold no memory).
 */
export class Ledger {
  /** Which allocator (for stats). */
  readonly kind: AllocatorKind;
  /** Its class name, for messages. */
  readonly name: string;
  allocatedBytes = 0;
  peakBytes = 0;
  live = 0;
  totalAllocations = 0;
  totalFrees = 0;
  failedAllocations = 0;
  /**
   * Null while the allocator can be used; otherwise why not ("was disposed", ...), or, while it is
   * {@linkcode Ledger.busy}, why not now. Hot paths test only this field.
   */
  ended: string | null = null;
  /**
   * What a use now is: "use-after-free" after the end, "corruption" when the allocator ended on a theft,
   * "unsupported" while it is busy.
   */
  endedAs: "use-after-free" | "corruption" | "unsupported" = "use-after-free";
  /**
   * An end that came while the allocator was busy (its backing releasing its memory; a dispose is refused
   * then), in force from `idle()` on. Invariant: non-null only while busy; while busy, `ended` and `endedAs`
   * say so.
   */
  #endedWhileBusy: [string, "use-after-free" | "corruption"] | null = null;
  #busy = false;
  #category: AllocationErrorCategory = "out-of-memory";
  #reason = "";
  #call: string | undefined;
  #errno: number | undefined;

  constructor(kind: AllocatorKind, name: string) {
    this.kind = kind;
    this.name = name;
  }

  /** A block of `size` bytes was handed out. */
  allocated(size: number): void {
    this.allocatedBytes += size;
    if (this.allocatedBytes > this.peakBytes) this.peakBytes = this.allocatedBytes;
    this.live++;
    this.totalAllocations++;
  }

  /**
   * Takes back the count of an allocation whose view could not be made (an
   * operation that throws changes nothing); `peakBefore` is `peakBytes` from
   * before it.
   */
  retract(size: number, peakBefore: number): void {
    this.allocatedBytes -= size;
    this.peakBytes = peakBefore;
    this.live--;
    this.totalAllocations--;
  }

  /** A block of `size` bytes came back. */
  freed(size: number): void {
    this.allocatedBytes -= size;
    this.live--;
    this.totalFrees++;
  }

  /** A live block changed size in place. */
  resized(oldSize: number, newSize: number): void {
    this.allocatedBytes += newSize - oldSize;
    if (this.allocatedBytes > this.peakBytes) this.peakBytes = this.allocatedBytes;
  }

  /**
   * Every live block came back at once. Not after an end on a theft: that
   * memory is kept, so the counters stay as they were when it was found.
   */
  freedAll(): void {
    if ((this.#busy ? this.#endedWhileBusy?.[1] : this.endedAs) === "corruption") return;
    this.totalFrees += this.live;
    this.live = 0;
    this.allocatedBytes = 0;
  }

  /** Records why an allocation failed; returns null for `tryAlloc` to pass on. */
  fail(category: "out-of-memory" | "limit-exceeded", reason: string, cause?: AllocationError): null {
    this.failedAllocations++;
    this.#category = category;
    this.#reason = reason;
    this.#call = cause?.call;
    this.#errno = cause?.errno;
    return null;
  }

  /** The error `alloc` throws after `tryAlloc` returned null. */
  failure(size: number, align?: number): AllocationError {
    return new AllocationError(
      this.#category,
      `Cannot allocate ${size} bytes${align === undefined ? "" : ` aligned to ${align}`} in the ${this.name}: ` +
        this.#reason,
      { call: this.#call, errno: this.#errno },
    );
  }

  /** Throws "use-after-free" once the allocator has ended ("unsupported" while it is busy). */
  guard(op: string): void {
    if (this.ended !== null) throw this.usedAfterEnd(op);
  }

  /** Whether the allocator has ended for good (`ended` also says so while it is only busy). */
  get over(): boolean {
    return this.#busy ? this.#endedWhileBusy !== null : this.ended !== null;
  }

  /**
   * Refuses every use of the allocator ("unsupported", through `ended`) while it calls its backing: the
   * backing may run code of the user's (an arena's observer, an Allocator written in JavaScript) that must
   * not call back into an allocator halfway through growing or shrinking (or, with `why` saying so, through
   * a change the holders of its blocks are told of: see tellHolders). False, with nothing changed, when it had
   * ended or was busy already. Always paired with `idle()`.
   */
  busy(why = "is taking memory from or giving it back to its backing, whose code called back into it"): boolean {
    if (this.ended !== null) return false;
    this.#busy = true;
    this.ended = why;
    this.endedAs = "unsupported";
    return true;
  }

  /** Ends `busy()`: the allocator is usable again, unless it ended meanwhile (that end is in force now). */
  idle(): void {
    if (!this.#busy) return;
    const end = this.#endedWhileBusy;
    this.#busy = false;
    this.#endedWhileBusy = null;
    this.ended = end === null ? null : end[0];
    this.endedAs = end === null ? "use-after-free" : end[1];
  }

  /** Throws "unsupported" while the allocator is busy (for paths that must not run then but test nothing else). */
  refuseWhileBusy(op: string): void {
    if (this.#busy) throw this.usedAfterEnd(op);
  }

  /** The error for any use after the allocator ended. */
  usedAfterEnd(op: string): AllocationError {
    return new AllocationError(this.endedAs, `Cannot ${op}: the ${this.name} ${this.ended}`);
  }

  /**
   * Ends the allocator because it lost its memory: `reason` names the release
   * that took it (later calls are "use-after-free"), or null for a theft
   * (memory a transferred buffer may reach, kept for good: later calls are
   * "corruption"). False when it had already ended.
   */
  lose(reason: string | null): boolean {
    return reason === null ? this.end(ENDED_ON_THEFT, "corruption") : this.end(`lost its memory: ${reason}`);
  }

  /** Marks the allocator ended; false when it already was. */
  end(reason: string, as: "use-after-free" | "corruption" = "use-after-free"): boolean {
    if (this.#busy) {
      if (this.#endedWhileBusy !== null) return false;
      this.#endedWhileBusy = [reason, as];
      return true;
    }
    if (this.ended !== null) return false;
    this.ended = reason;
    this.endedAs = as;
    return true;
  }

  /** The stats every allocator reports, from the counters and its free space. */
  stats(space: FreeSpace): AllocatorStats {
    const frag = typeof space.freeBlocks === "number" ? space.freeBlocks : fragmentation(space.freeBlocks);
    return {
      kind: this.kind,
      capacityBytes: space.capacityBytes,
      allocatedBytes: this.allocatedBytes,
      availableBytes: space.availableBytes,
      peakBytes: this.peakBytes,
      liveAllocations: this.live,
      totalAllocations: this.totalAllocations,
      totalFrees: this.totalFrees,
      failedAllocations: this.failedAllocations,
      largestFreeBlock: space.largestFreeBlock,
      fragmentation: frag,
      // Never negative: an allocator that ended on a theft holds no capacity but keeps its counters.
      overheadBytes: Math.max(
        0,
        space.overheadBytes ?? space.capacityBytes - space.availableBytes - this.allocatedBytes,
      ),
    };
  }
}
