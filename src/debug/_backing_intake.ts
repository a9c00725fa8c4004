// What a DebugAllocator takes from its backing: asking for a block (a
// refusal is a null, whatever form it takes), and checking what comes back
// before anything is written into it (the safety model: chains cannot dangle): a Uint8Array view,
// long enough, inside its buffer, aligned as asked. Its range is read from
// the view's internal slots (blockLength, bufferOf, offsetOf): a
// subclass's getters or own properties could name other memory than the view
// covers. The memory handed out twice is caught by the heap, which knows the live blocks.
import type { Ledger } from "../alloc/_ledger.ts";
import { isDetached } from "../base/_detach.ts";
import { bufferOf, describe, offsetOf } from "../base/_validate.ts";
import type { Allocator } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { intrinsic } from "../../ffi/boundary.ts";
import { beginTake, type CensusOwner, endTake } from "../base/_native_census.ts";
import { alignedAt, type BufferWords, cachedWordsOf, wordsOf } from "./_block_layout.ts";
import { allocatorName } from "../base/_allocator_name.ts";
import { backingStateError } from "../alloc/_backing_state_error.ts";
import { backingPhrase } from "../alloc/_backing_phrase.ts";
import { describeForeign, isInstance, plainAllocationError, thrownMessage } from "../alloc/_thrown.ts";

/**
 * Throws a TypeError, before anything is made, unless `backing` is an object
 * with each of `methods` (the Allocator methods `owner` will call): an object
 * without one would fail at its first use with the engine's own message.
 */
export function checkBacking(backing: unknown, owner: string, methods: readonly string[]): void {
  const missing: string[] = [];
  if (typeof backing === "object" && backing !== null) {
    for (let i = 0; i < methods.length; i++) {
      if (typeof (backing as Record<string, unknown>)[methods[i]] !== "function") missing[missing.length] = methods[i];
    }
    if (missing.length === 0) return;
  }
  throw new TypeError(
    `Cannot create ${owner} as 'backing' must be an Allocator (with ${listed(methods, "and")} methods): ` +
      (missing.length === 0 || missing.length === methods.length
        ? `current value is ${describe(backing)}`
        : `current value ${allocatorName(backing)} has no ${listed(missing, "or")} method`),
  );
}

// "a, b and c" (or "a, b or c").
function listed(names: readonly string[], last: string): string {
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} ${last} ${names[names.length - 1]}`;
}

/** Requests to one backing, and the last one's outcome. */
export class BackingIntake {
  readonly backing: Allocator;
  /** Why the last request was refused (for the failure record). */
  refusal = "";
  /** The backing's own error behind the refusal, if it threw one. */
  cause: AllocationError | undefined = undefined;
  /** What `check` found: the block's buffer words … */
  host: BufferWords | null = null;
  /** … and the block's offset in that buffer. */
  offset = 0;
  // The last buffer seen: most blocks come from a few chunks, so this skips a property lookup.
  #last: BufferWords | null = null;

  readonly #census: CensusOwner;
  /** The heap's ledger: busy while the backing runs, so code it runs cannot call back into the heap. */
  readonly #ledger: Ledger;

  constructor(backing: Allocator, census: CensusOwner, ledger: Ledger) {
    this.backing = backing;
    this.#census = census;
    this.#ledger = ledger;
  }

  /**
   * The backing's block of `n` bytes, or null when it cannot serve it (it
   * returned null, or threw "out-of-memory", "limit-exceeded", RangeError or
   * TypeError: a size or alignment it never serves). Its other AllocationErrors
   * (its state: disposed, lost its memory) are thrown said about the backing
   * (see `refused`); anything else it throws goes on as it is.
   */
  ask(n: number, alignArg: number | undefined): unknown {
    let block: unknown;
    const outer = beginTake(this.#census);
    const calling = this.#ledger.busy();
    try {
      block = this.backing.tryAlloc(n, alignArg);
    } catch (error) {
      return this.refused(error, n);
    } finally {
      endTake(outer);
      if (calling) this.#ledger.idle();
    }
    if (block === null) this.refuse(`${backingPhrase("the", this.backing)} refused ${n} bytes`, undefined);
    return block;
  }

  /**
   * What the backing threw for `n` bytes, as a refusal (null): "out-of-memory" or "limit-exceeded", a RangeError
   * or a TypeError. Its state errors are thrown said about the backing, with its category, its error the cause:
   * its own message ("Cannot allocate: the Arena was disposed") would read as if the DebugAllocator's own call were
   * on a disposed Arena. Anything else (a plain Error, a Symbol, null, a Proxy) is no answer an Allocator gives:
   * AllocationError("corruption"), the value its cause. The value may be anything and this runs in the middle of
   * the DebugAllocator's operation, so it is read without running its code (see _thrown.ts): no getter, no trap.
   */
  refused(error: unknown, n: number): null {
    const own = plainAllocationError(error);
    if (own !== null) {
      if (own.category !== "out-of-memory" && own.category !== "limit-exceeded") {
        throw backingStateError("DebugAllocator", `take a ${n}-byte block`, this.backing, own);
      }
      this.refuse(`${backingPhrase("the", this.backing)} cannot serve ${n} bytes: ${own.message}`, own);
      return null;
    }
    if (isInstance(error, RangeError) || isInstance(error, TypeError)) {
      // A size or alignment it never serves. Its message as data, else its kind ("RangeError").
      this.refuse(
        `${backingPhrase("the", this.backing)} cannot serve ${n} bytes: ${
          thrownMessage(error) ?? describeForeign(error)
        }`,
        undefined,
      );
      return null;
    }
    throw new AllocationError(
      "corruption",
      `The DebugAllocator cannot take a ${n}-byte block: ${backingPhrase("its", this.backing)} threw ` +
        `${describeForeign(error)} (the cause), but an Allocator's tryAlloc returns a block or null, or throws an ` +
        "AllocationError, RangeError or TypeError to refuse",
      { cause: error },
    );
  }

  /** Records why a request failed. */
  refuse(reason: string, cause: AllocationError | undefined): void {
    this.refusal = reason;
    this.cause = cause;
  }

  /**
   * What is wrong with `outer`, returned for `need` bytes aligned to `align`,
   * or null (then `host` and `offset` say where it is).
   */
  check(outer: unknown, need: number, align: number): string | null {
    const length = blockLength(outer);
    if (length < 0) return `${describe(outer)} is not a Uint8Array view of memory`;
    const buffer = bufferOf(outer as Uint8Array);
    const offset = offsetOf(outer as Uint8Array);
    if (length < need) {
      return isDetached(buffer) ? "its buffer is detached (that memory was released)" : `it has ${length} bytes`;
    }
    const host = this.hostOf(buffer);
    if (host.shared) {
      return "its buffer is a SharedArrayBuffer (a DebugAllocator's blocks are ArrayBuffer memory, as its types say)";
    }
    if (offset + need > host.byteLength) return `it claims bytes past the end of its ${host.byteLength}-byte buffer`;
    if (!alignedAt(host, offset, align)) {
      return `its address 0x${(host.base + offset).toString(16)} is not a multiple of ${align}`;
    }
    this.host = host;
    this.offset = offset;
    return null;
  }

  /** The words of `buffer` (made on first use). */
  hostOf(buffer: ArrayBufferLike): BufferWords {
    let host = this.#last;
    if (host === null || host.buffer !== buffer) this.#last = host = wordsOf(buffer);
    return host;
  }

  /** The words of `buffer` if it ever held a debug block, else undefined. */
  knownHostOf(buffer: ArrayBufferLike): BufferWords | undefined {
    const host = this.#last;
    return host !== null && host.buffer === buffer ? host : cachedWordsOf(buffer);
  }

  /** Frees `outer` through the backing, ignoring a refusal (teardown, undo). */
  freeQuietly(outer: Uint8Array<ArrayBuffer>): void {
    const calling = this.#ledger.busy();
    try {
      this.backing.free(outer);
    } catch {
      // The backing keeps it (or already let go of it): nothing left to return.
    } finally {
      if (calling) this.#ledger.idle();
    }
  }
}

/**
 * The byte length of `outer` when it is a Uint8Array (or a subclass), from
 * its internal slot; -1 for anything else. No getter runs, and an object made
 * from Uint8Array.prototype or a Proxy of a view (which pass `instanceof`) is
 * -1: the engine's own length getter refuses them.
 */
export function blockLength(outer: unknown): number {
  if (!(outer instanceof Uint8Array)) return -1;
  try {
    return intrinsic.typedArrayLength(outer); // elements of a Uint8Array are bytes
  } catch {
    return -1;
  }
}
