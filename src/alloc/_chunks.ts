// Where chunked allocators (Arena, Stack, Pool, Buddy, FreeList) get their
// memory: blocks of a backing allocator, checked before they are carved,
// leased so a release anywhere above reaches them, and each given the owner's
// own ArrayBuffer so the owner can detach every view it made (rule 4).
import { native } from "../../ffi/native.ts";
import { intrinsic } from "../../ffi/boundary.ts";
import { bufferOf, describe, lengthOf } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { detach, isDetached, mayRelease } from "../base/_detach.ts";
import { afterChange, type Lease, leaseBlock } from "./_lease.ts";
import { backingStateError } from "./_backing_state_error.ts";
import { backingPhrase } from "./_backing_phrase.ts";
import { describeForeign, isInstance, thrownCategory, thrownMessage } from "./_thrown.ts";
import type { Ledger } from "./_ledger.ts";
import { beginTake, type CensusOwner, censusOwner, endTake } from "../base/_native_census.ts";

// What `take` found when the backing did not throw.
const NO_FAILURE = Symbol("no failure");

/** A region of native memory an allocator carves blocks from. */
export interface Chunk {
  /** The block the backing gave (freed through the backing). */
  readonly block: Uint8Array;
  readonly address: number;
  readonly size: number;
  /**
   * The owner's own buffer over the whole chunk; every view the owner makes is
   * over it (or a segment of it). Unless `wrapped`, an empty buffer of the
   * chunk's own that reaches no memory (an owner that views its chunks only
   * through segments never pays for a buffer over all of it).
   */
  buffer: ArrayBuffer;
  /** Whether `buffer` is over the chunk's memory. */
  wrapped: boolean;
  /** The lease on `block` while the backing is a memkit allocator. */
  lease: Lease | null;
  /** True once the backing released the chunk itself (it must not be freed again). */
  lost: boolean;
  /** When it was taken, from its owner's backing (a later chunk has a larger number): chunks go back newest first. */
  readonly serial: number;
}

// Numbers chunks in the order they are taken (see Chunk.serial).
let chunkSerial = 0;

// The chunks taken from each backing, to catch a backing that hands out the
// same memory twice. (A grandchild's chunk lies inside its parent's chunk, so
// only chunks of one backing are compared.) Chunks are taken rarely, so a
// scan is cheap enough.
const heldFrom = new WeakMap<Allocator, Set<Chunk>>();

/** `bytes` rounded up to whole pages. */
export function roundToPage(bytes: number): number {
  const page = native.pageSize;
  return Math.ceil(bytes / page) * page;
}

/**
 * The chunks of one allocator. `onRevoke` is called once when the backing
 * releases any of them without being asked (its reset, scope end, dispose);
 * the owner then detaches everything and ends itself, and may `give` back
 * its other chunks when `partial` says the backing lives on.
 */
export class ChunkSource {
  /** Where chunks come from. */
  readonly backing: Allocator;
  /** Why the last `take` returned null. */
  refusal = "";
  readonly #owner: string;
  readonly #held: Set<Chunk>;
  /** This owner's chunks, oldest first (they go back newest first, which a stack backing needs). */
  readonly #live: Chunk[] = [];
  readonly #onRevoke: (reason: string, partial: boolean) => void;
  /** Who the chunks are for in the census of native memory (the leak check at exit). */
  readonly #census: CensusOwner;
  /** The owner's ledger: busy while the backing runs (see `#calling`). */
  readonly #ledger: Ledger;

  constructor(
    backing: Allocator,
    owner: string,
    ledger: Ledger,
    onRevoke: (reason: string, partial: boolean) => void,
  ) {
    this.backing = backing;
    this.#owner = owner;
    this.#ledger = ledger;
    this.#census = censusOwner(owner);
    this.#onRevoke = onRevoke;
    let held = heldFrom.get(backing);
    if (held === undefined) heldFrom.set(backing, held = new Set());
    this.#held = held;
  }

  /**
   * A chunk of `size` bytes aligned to `align` (default: the page size), or
   * null when the backing cannot give one (`refusal` says why); with `wrap`
   * false, without a buffer over it (see `Chunk.wrapped`).
   * @throws {AllocationError} "corruption" when the backing returns something it must not (named in the message);
   *   the backing's own category when it refuses for its state (disposed, lost its memory), said about the backing.
   */
  take(size: number, align: number = native.pageSize, wrap = true): Chunk | null {
    let block: unknown = null;
    let failure: unknown = NO_FAILURE;
    const outer = beginTake(this.#census);
    const busy = this.#ledger.busy();
    try {
      block = this.backing.tryAlloc(size, align);
    } catch (error) {
      failure = error;
    } finally {
      endTake(outer);
      if (busy) this.#ledger.idle();
    }
    if (busy && this.#ledger.ended !== null) {
      // The backing's code ended the owner while it ran (disposed it, or released its memory): what it gave
      // goes back, and the operation that grew the owner fails as any use after the end does.
      if (failure === NO_FAILURE && ArrayBuffer.isView(block)) {
        try {
          this.backing.free(block);
        } catch { /* the backing let go of it itself */ }
      }
      throw this.#ledger.usedAfterEnd("allocate");
    }
    if (failure !== NO_FAILURE) {
      const error = failure;
      // (What the backing threw is read without running its code: it may be anything, a Proxy, a Symbol...)
      const category = thrownCategory(error);
      // A backing that cannot serve this size at all (a pool's block size, a
      // stack's capacity) refuses; only its state errors are the caller's problem.
      if (category !== null && category !== "out-of-memory" && category !== "limit-exceeded") {
        // Said about the backing: its own message would read as if the owner were the one disposed.
        throw backingStateError(this.#owner, `take a ${size}-byte chunk`, this.backing, error as AllocationError);
      }
      if (category === null && !isInstance(error, RangeError)) {
        // Not a refusal: the backing does not work (a Proxy around an allocator cannot reach its private state).
        throw new TypeError(
          `${backingPhrase(`The ${this.#owner}'s`, this.backing)} is not a usable Allocator: its tryAlloc threw ` +
            `${describeForeign(error)} (the cause)`,
          { cause: error },
        );
      }
      this.refusal = `${backingPhrase("the", this.backing)} cannot give a ${size}-byte chunk: ${
        thrownMessage(error) ?? describeForeign(error)
      }`;
      return null;
    }
    if (block === null) {
      this.refusal = `${backingPhrase("the", this.backing)} refused a ${size}-byte chunk`;
      return null;
    }
    const problem = this.#check(block, size, align);
    if (problem !== null) {
      throw new AllocationError(
        "corruption",
        `The ${this.#owner} cannot use what ${backingPhrase("its", this.backing)} returned for a ${size}-byte chunk ` +
          `aligned to ${align}: ${problem}`,
      );
    }
    const view = block as Uint8Array;
    const address = native.addressOf(view);
    let buffer: ArrayBuffer;
    try {
      // SAFETY: the backing gave `size` bytes at `address` (checked above), and
      // the owner detaches this buffer before the chunk goes back.
      buffer = wrap ? native.wrap(address, size) : new ArrayBuffer(0);
    } catch (error) {
      // No chunk may outlive a failed wrap (Bun cannot view 4 GiB at once).
      try {
        this.backing.free(view);
      } catch { /* the backing is gone: nothing to return */ }
      this.refusal = `the runtime cannot view a ${size}-byte chunk at once: ${(error as Error).message}`;
      return null;
    }
    const chunk: Chunk = {
      block: view,
      address,
      size,
      buffer,
      wrapped: wrap,
      lease: null,
      lost: false,
      serial: ++chunkSerial,
    };
    chunk.lease = leaseBlock(this.backing, view, {
      revoke: (reason, partial) => {
        chunk.lost = true;
        chunk.lease = null;
        this.#held.delete(chunk);
        this.#onRevoke(reason, partial);
      },
    });
    this.#held.add(chunk);
    this.#live.push(chunk);
    return chunk;
  }

  /**
   * Detaches the owner's buffer over `chunk` (rule 1: before the memory goes
   * back) and returns it to the backing, unless a buffer over any of it was
   * transferred away: that chunk stays allocated in the backing for good
   * (the owner forgets it; nothing reuses memory another buffer may reach).
   */
  give(chunk: Chunk): void {
    const intact = !chunk.wrapped || detach(chunk.buffer, chunk.address, chunk.size);
    this.#held.delete(chunk);
    const at = this.#live.lastIndexOf(chunk);
    if (at >= 0) this.#live.splice(at, 1);
    if (chunk.lost) return;
    chunk.lease?.end();
    chunk.lease = null;
    chunk.lost = true;
    if (!intact || !mayRelease(chunk.address, chunk.size)) return;
    const busy = this.#ledger.busy();
    try {
      this.backing.free(chunk.block);
    } finally {
      if (busy) this.#ledger.idle();
    }
    // The backing's code ended the owner while it ran: the operation giving memory back stops here.
    if (busy && this.#ledger.ended !== null) throw this.#ledger.usedAfterEnd("give memory back");
  }

  /** Like `give`, for teardown after a revocation: a backing that refuses is not the owner's failure. */
  giveQuietly(chunk: Chunk): void {
    try {
      this.give(chunk);
    } catch {
      // The backing already let go of it (or is gone): nothing left to return.
    }
  }

  /**
   * Gives back every chunk, newest first (the reverse of the order they were
   * taken, which a stack backing needs). `quietly` after a revocation: a
   * backing that refuses is not the owner's failure.
   *
   * Otherwise (the owner's dispose): every chunk's buffer is detached before
   * the backing runs any code, every chunk the backing takes goes back, and
   * only then is a refusal reported. A chunk the backing refused (a stack with
   * a block of the program's on top of it, a backing whose free throws) stays
   * allocated in the backing, which frees it as any block of its own; the
   * owner has let go of it (no lease, no view), so nothing dangles whatever
   * the backing does with it later.
   * @throws {AllocationError} When not `quietly` and the backing refused any chunk: the category of its first
   * error ("invalid-free" when that was not an AllocationError), which is the cause.
   */
  giveAll(quietly: boolean): void {
    if (quietly) {
      // After a revocation, which may come from an allocator in the middle of a change (its free or resize of
      // one of these chunks, a reset): every chunk is detached now (rule 1: that memory may go back as soon as
      // the change is made), and given back once it is made (the backing may be that allocator, or code of the
      // program's that calls into it: see beginChange).
      for (const chunk of this.#live) this.unwrap(chunk);
      afterChange(() => {
        while (this.#live.length > 0) this.giveQuietly(this.#live[this.#live.length - 1]);
      });
      return;
    }
    // Rule 1 for every chunk first: a free that throws below must not leave a view over a chunk not yet given back.
    for (const chunk of this.#live) this.unwrap(chunk);
    const total = this.#live.length;
    let refused = 0, refusedBytes = 0;
    let firstError: unknown;
    while (this.#live.length > 0) {
      const chunk = this.#live[this.#live.length - 1];
      try {
        this.give(chunk); // forgets the chunk (no lease, not live) before the backing's free runs
      } catch (error) {
        if (refused++ === 0) firstError = error;
        refusedBytes += chunk.size;
      }
    }
    if (refused === 0) return;
    // What the backing threw may be anything (a Symbol, a revoked Proxy, an object whose message getter throws):
    // it is read without running its code, and is the cause.
    const cause = firstError;
    throw new AllocationError(
      thrownCategory(cause) ?? "invalid-free",
      `The ${this.#owner} was disposed and every view it handed out reads as length 0, but ${
        backingPhrase("its", this.backing)
      } refused to take back ${refused} of its ${total} chunks (${refusedBytes} bytes): they stay allocated ` +
        "there until the backing frees them (a StackAllocator's reset(), or its rewind() once the blocks above " +
        `them are freed; the backing's dispose()). The backing's error (the cause): ${describeForeign(cause)}`,
      { cause },
    );
  }

  /** Detaches the owner's buffer over every chunk (the backing already took the memory back). */
  detachAll(): void {
    for (const chunk of this.#live.splice(0)) {
      if (chunk.wrapped) detach(chunk.buffer, chunk.address, chunk.size);
      this.#held.delete(chunk);
    }
  }

  /** Whether one of the owner's chunk buffers was detached by someone else (transferred away). */
  anyTransferred(): boolean {
    for (const chunk of this.#live) if (chunk.wrapped && isDetached(chunk.buffer)) return true;
    return false;
  }

  /**
   * Detaches the owner's buffer over `chunk` (its views read as length 0) and
   * leaves the chunk unwrapped; false when someone had transferred it away.
   */
  unwrap(chunk: Chunk): boolean {
    if (!chunk.wrapped) return true;
    const intact = detach(chunk.buffer, chunk.address, chunk.size);
    chunk.buffer = new ArrayBuffer(0);
    chunk.wrapped = false;
    return intact;
  }

  // What is wrong with a block the backing returned, or null.
  #check(block: unknown, size: number, align: number): string | null {
    // (By its internal slots: the block's prototype chain may hold a Proxy.)
    if (!ArrayBuffer.isView(block) || intrinsic.typedArrayTag(block) !== "Uint8Array") {
      return `${
        ArrayBuffer.isView(block) ? describe(block) : describeForeign(block)
      } is not a Uint8Array view of memory`;
    }
    if (isDetached(bufferOf(block))) return "its buffer is detached (that memory was released)";
    if (intrinsic.isResizable(bufferOf(block))) {
      return "its buffer is a resizable ArrayBuffer (shrinking it would release memory the chunk's blocks use)";
    }
    const length = lengthOf(block);
    if (length < size) return `it has ${length} bytes`;
    const address = native.addressOf(block);
    if (address % align !== 0) return `its address 0x${address.toString(16)} is not a multiple of ${align}`;
    for (const other of this.#held) {
      if (address < other.address + other.size && other.address < address + size) {
        return `it overlaps memory already in use as a ${other.size}-byte chunk at 0x${other.address.toString(16)}`;
      }
    }
    return null;
  }
}
