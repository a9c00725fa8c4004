// One allocation made by a MemoryInterface: the fields of MemoryAllocation
// (read-only getters over private fields, so no caller can edit what the
// interface counts by), where the block goes back to, which interface made
// it and whether it is still live. What allocations from one place share
// lives in their Origin, so an allocation is a small object (its bytes, size,
// origin and rare extras); `address` is taken on first read (a native call),
// so allocations nobody asks the address of never pay for it.
import { addressOf } from "../base/native_info.ts";
import { type Arena, rollBackBlock } from "../alloc/arena.ts";
import { freeSlot, type PoolAllocator } from "../alloc/pool_allocator.ts";
import type { Allocator, AllocatorKind } from "../base/allocator.ts";
import type { Counters, TypeCounter } from "./_memory_stats.ts";
import { T_SYSTEM, T_TEMPORARY, TYPES } from "./_request.ts";
import type { MemoryAllocation, MemoryFlag, MemoryType } from "./memory_types.ts";

/** Live bytes and allocations of one type (plain fields: cheaper to update than typed-array elements). */
export class FrameCount {
  bytes = 0;
  count = 0;
}

/**
 * The temporary allocations of one frame (or of the time outside frames), released together.
 *
 * What a frame holds is not counted per allocation (the fast paths stay lean): for each type, a type's
 * framed bytes (its counter's `used` less `unframedBytes`) are the live bytes of every open frame, so the
 * innermost frame holds the framed bytes less what the frames older than it hold. `older` keeps that: set
 * when the frame opens, lowered when a block of an older frame is released while it is open. Allocations
 * go only to the innermost frame, and a release in the innermost frame changes nothing here.
 */
export class Frame {
  open = true;
  /** By type index: the live bytes and allocations of the frames older than this one. */
  readonly older: FrameCount[] = Array.from({ length: TYPES.length }, () => new FrameCount());
  /**
   * Released blocks of this frame that the arena still holds (given back out of order: only its most recent
   * block rolls back), counted against their types' budgets (TypeCounter.held) until they come back: at the
   * frame's end, at the end of a scope of the caller's own they were made in, or, for the time outside
   * frames, when the interface resets its arena once nothing else is live in it (Books.reclaim). Null: none.
   */
  held: Allocation[] | null = null;
}

/** The types whose memory a frame holds (the arena serves the system type on request): bit per type index. */
export const FRAMED_TYPES = (1 << T_TEMPORARY) | (1 << T_SYSTEM);

/** Something that is not an allocator but gives its memory back itself (a shared mapping). */
export interface Releasable {
  /** Gives the memory back; the views over it read as length 0. */
  release(): void;
}

/** What a release updates besides the allocator: the interface's counters, its index, its waiters. */
export interface Bookkeeping {
  readonly counters: Counters;
  /**
   * `a` was released (its counters updated): the newest allocation, if it is this one, leaves the index's list
   * at once; waiters and the blocks the arena holds hear of it.
   */
  released(a: Allocation): void;
  /** `size` bytes of type `t` of `frame` (not the innermost open frame, or not a frame: null) were released. */
  releasedOutside(frame: Frame | null, t: number, size: number): void;
  /** An address was read: the index takes the allocations it holds back now. */
  remember(): void;
  /** `a` (released, of `frame`) stays held by the arena: its type's budget counts it until it comes back. */
  held(frame: Frame, a: Allocation): void;
}

// Origins are numbered as they are made, so "made after this point" is a comparison (see Origin.serial).
let origins = 0;

/**
 * What allocations from one place share: the interface that made them (and
 * its bookkeeping), their type, the allocator kind and the allocator they go
 * back to, their alignment and flags, and for the arena the frame they belong
 * to. The fast paths keep one per class pool and one per frame.
 */
export class Origin {
  constructor(
    readonly owner: object,
    readonly books: Bookkeeping,
    readonly t: number,
    readonly allocator: AllocatorKind,
    readonly alignment: number,
    readonly flags: MemoryFlag[],
    /** Where blocks go back; null for a shared mapping (see Extra.releasable). */
    readonly from: Allocator | null,
    /** For blocks of the arena: the frame whose end releases them. */
    readonly frame: Frame | null,
  ) {
    this.route = allocator === "pool" ? ROUTE_POOL : allocator === "arena" ? ROUTE_ARENA : ROUTE_OTHER;
    this.counter = books.counters.types[t];
    this.serial = origins++;
  }

  /** The serial the next origin made will have. */
  static get next(): number {
    return origins;
  }

  /**
   * Its place in the order origins are made: an allocation whose origin's serial is at least
   * `Origin.next` read at some moment was made after it (the arena's origin is made again when a
   * scope of the arena opens through getAllocator, so this holds for its fast path too).
   */
  readonly serial: number;

  /** The type's counters. */
  readonly counter: TypeCounter;

  /**
   * Which of release's call sites frees the block: pools and the arena each
   * have their own, so each site sees one class (V8 and JSC keep a call site
   * fast while it sees few; the fast paths' pools and arena in one site made
   * a pool pair 1.5-2.5x slower in Deno once the arena's blocks went through it too).
   */
  readonly route: number;
}

const ROUTE_POOL = 0, ROUTE_ARENA = 1, ROUTE_OTHER = 2;

/** What few allocations have: a padded block, a mapping that releases itself, a name. */
export interface Extra {
  /** The block as the allocator gave it (longer than `bytes` when padded to cache lines). */
  reserved: Uint8Array<ArrayBuffer>;
  releasable: Releasable | null;
  name: string | undefined;
}

// A view's address by its buffer's: chunked allocators hand out many views of one buffer, so looking up
// addresses (the index, isValidPointer) costs one native call per chunk, not per block.
const bases = new WeakMap<ArrayBufferLike, number>();

function addressOfLive(bytes: Uint8Array<ArrayBuffer>): number {
  if (bytes.byteLength === 0) return 0; // detached (an allocation has at least one byte): its place is gone
  const buffer = bytes.buffer;
  let base = bases.get(buffer);
  if (base === undefined) {
    base = addressOf(bytes) - bytes.byteOffset;
    bases.set(buffer, base);
  }
  return base + bytes.byteOffset;
}

/** A live or released allocation. */
export class Allocation implements MemoryAllocation {
  readonly #bytes: Uint8Array<ArrayBuffer>;
  /** The size asked for; negated (below 0) once released. */
  #size: number;
  readonly #origin: Origin;
  readonly #extra: Extra | null;
  #address = -1;
  /**
   * Where a fast path took its block, which gives it back the same way: its index in its class pool, or its
   * number in the arena (see carveBlock); else -1.
   */
  readonly #slot: number;

  constructor(origin: Origin, bytes: Uint8Array<ArrayBuffer>, size: number, extra: Extra | null, slot: number) {
    this.#origin = origin;
    this.#bytes = bytes;
    this.#size = size;
    this.#extra = extra;
    this.#slot = slot;
  }

  /** The block (exactly `size` bytes). */
  get bytes(): Uint8Array<ArrayBuffer> {
    return this.#bytes;
  }

  /** The address of the first byte; 0 when first read after the memory went back. */
  get address(): number {
    if (this.#address < 0) {
      this.#address = addressOfLive(this.#bytes);
      if (this.#size > 0) this.#origin.books.remember(); // a later free of this address can be recognized
    }
    return this.#address;
  }

  /** Bytes asked for. */
  get size(): number {
    return this.#size < 0 ? -this.#size : this.#size;
  }

  /** The alignment its address is guaranteed to have. */
  get alignment(): number {
    return this.#origin.alignment;
  }

  /** The memory type that served it. */
  get type(): MemoryType {
    return TYPES[this.#origin.t];
  }

  /** The kind of allocator that served it. */
  get allocator(): AllocatorKind {
    return this.#origin.allocator;
  }

  /** The flags it was allocated with (a frozen list). */
  get flags(): MemoryFlag[] {
    return this.#origin.flags;
  }

  /** For the `shared` type: the name another Worker or process opens it by; otherwise undefined. */
  get name(): string | undefined {
    return this.#extra?.name;
  }

  /** The fields as a plain object, without the bytes (for JSON). */
  toJSON(): Omit<MemoryAllocation, "bytes"> {
    return {
      address: this.address,
      size: this.size,
      alignment: this.alignment,
      type: this.type,
      allocator: this.allocator,
      flags: this.flags,
      ...(this.name === undefined ? {} : { name: this.name }),
    };
  }

  /** Deno's console shows the fields. */
  [Symbol.for("Deno.customInspect")](
    inspect?: (value: unknown, options?: unknown) => string,
    options?: unknown,
  ): string {
    const fields = { bytes: this.#bytes, ...this.toJSON() };
    return typeof inspect === "function" ? `MemoryAllocation ${inspect(fields, options)}` : "MemoryAllocation";
  }

  /** Node's and Bun's console show the fields. */
  [Symbol.for("nodejs.util.inspect.custom")](): MemoryAllocation {
    return { bytes: this.#bytes, ...this.toJSON() };
  }

  /** Whether `x` is an Allocation (a brand check: no getter or Proxy fakes it). */
  static is(x: unknown): x is Allocation {
    return typeof x === "object" && x !== null && #size in x;
  }

  /** Whether `owner` made it. */
  static ownedBy(a: Allocation, owner: object): boolean {
    return a.#origin.owner === owner;
  }

  /** Whether it is live: not deallocated, and (temporary memory) its frame not ended. */
  static isLive(a: Allocation): boolean {
    return a.#size > 0 && (a.#origin.frame === null || a.#origin.frame.open);
  }

  /** Why it is not live, for messages. */
  static whyReleased(a: Allocation): string {
    return a.#size > 0 ? "its frame ended (endFrame())" : "it was deallocated";
  }

  /** Its address for the index: known, or taken now if live (0 otherwise). */
  static addressIfLive(a: Allocation): number {
    if (a.#address < 0 && Allocation.isLive(a)) a.#address = addressOfLive(a.#bytes);
    return a.#address < 0 ? 0 : a.#address;
  }

  /** The allocator it goes back to (null for a shared mapping). */
  static from(a: Allocation): Allocator | null {
    return a.#origin.from;
  }

  /** Its origin's serial (see {@linkcode Origin.serial}). */
  static serial(a: Allocation): number {
    return a.#origin.serial;
  }

  /** Its address if it was ever read or looked up; -1 otherwise. */
  static knownAddress(a: Allocation): number {
    return a.#address;
  }

  /**
   * Gives the memory of `a`, when it is a live allocation of `owner`, back,
   * and takes it off the counters and the index; false (nothing done) for
   * anything else. Throws, changing nothing, when its allocator refuses (a
   * stack block out of order).
   */
  static release(a: unknown, owner: object): boolean {
    if (typeof a !== "object" || a === null || !(#size in a)) return false;
    const origin = a.#origin, size = a.#size;
    if (origin.owner !== owner || size < 0) return false;
    const route = origin.route;
    // The arena's most recent block rolls back by its number (see rollBackBlock). That it still can means
    // no scope began or ended and no reset came since it was carved, so its frame is open (a frame ends
    // only with its scope's end, a reset or the arena's end): no frame to check on this path.
    if (route !== ROUTE_ARENA || !rollBackBlock(origin.from as Arena, a.#slot)) {
      if (!Allocation.#giveBack(a, origin, route)) return false;
      // A block released outside the innermost frame changes what the frames count (see Frame): never
      // the pool's (no frame, a type frames do not hold), nor a block that rolled back (the innermost's).
      if (origin.frame !== null || (FRAMED_TYPES & (1 << origin.t)) !== 0) {
        origin.books.releasedOutside(origin.frame, origin.t, size);
      }
    }
    a.#size = -size;
    const books = origin.books;
    books.counters.removed(origin.counter, size);
    books.released(a); // which gives back what the arena holds when it can now (see Books.reclaim)
    return true;
  }

  // Frees `a`'s block (one the arena's fast path could not roll back by its number) in the arena. When the
  // arena kept it (counted the free and left the block taken) rather than rolled it back, it stays taken until
  // its frame ends, and its type's budget counts it till then (see Frame.held). A block carved by number (slot 0
  // or more) was kept (the view the fast path made is never the one `free` rolls back); a block from `tryAlloc`
  // rolled back if it was still the most recent: then its first byte is past the arena's allocation point, in
  // no block of the arena's. (Apart from #giveBack, so that the pool's path through it stays as short.)
  static #giveBackToArena(a: Allocation, origin: Origin): void {
    const arena = origin.from as Arena;
    const view = a.#extra === null ? a.#bytes : a.#extra.reserved;
    arena.free(view);
    if (a.#slot >= 0 || arena.owns(view)) origin.books.held(origin.frame!, a);
  }

  /** The counters of its type. */
  static counter(a: Allocation): TypeCounter {
    return a.#origin.counter;
  }

  // release() of anything but the arena's most recent block: false (nothing done) when its frame ended.
  static #giveBack(a: Allocation, origin: Origin, route: number): boolean {
    const frame = origin.frame;
    if (frame !== null && !frame.open) return false;
    const extra = a.#extra;
    if (route === ROUTE_ARENA) Allocation.#giveBackToArena(a, origin);
    else if (extra !== null) {
      if (origin.from !== null) origin.from.free(extra.reserved);
      else extra.releasable!.release();
    } else if (route === ROUTE_POOL) {
      const slot = a.#slot;
      const bytes = a.#bytes;
      if (slot < 0 || !freeSlot(origin.from as PoolAllocator, slot, bytes)) {
        (origin.from as PoolAllocator).free(bytes);
      }
    } else origin.from!.free(a.#bytes);
    return true;
  }

  /** Marks it released without giving anything back (its allocator went away as a whole). */
  static forget(a: Allocation): void {
    if (a.#size > 0) a.#size = -a.#size;
  }
}
