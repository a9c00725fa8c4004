// The storage of a DynamicArray: one block of its allocator, leased so the
// array learns when the allocator releases it (the safety model: an owner knows when its storage is gone), shared
// copy-on-write between an array and its snapshots, and grown through the
// allocator's `resize`. The public class (dynamic_array.ts) keeps the element
// API and asks its ArrayStore for the bytes: live storage, storage of its own
// (copied from a snapshot's), room to grow, views.
//
// Views handed to the user (`bytes`, `view()`) are over an ArrayBuffer of the
// array's own over the block (the safety model: no view outlives its memory),
// never over the allocator's buffer: an allocator that releases memory
// without detaching its buffer (a stack's rewind, an arena without safety)
// revokes the lease, and the revocation detaches that buffer, so every view
// the user holds reads as length 0 before the memory is used again.
import { leaseBlock } from "../alloc/_lease.ts";
import { BUSY, claim, claimOf, DETACHED, EMPTY, FREED, Storage } from "./_storage_block.ts";
import { checkTypedArrayConstructor } from "../base/_validate.ts";
import type { Allocator, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { indexRangeError, indexTypeError } from "./_array_checks.ts";
import type { Views } from "./_codec_layout.ts";
import { blockParts } from "./_intrinsic_views.ts";
import { append, removeFrom } from "./_plain_values.ts";
import { Builtin, ceil, copyInto, copyOfBytes, matches, max, min, typedRange } from "./_builtins.ts";
import type { RecordCodec } from "./_record_codec.ts";
import type { Target } from "./_record_target.ts";
import { beginTake, type CensusOwner, censusSite, endTake } from "../base/_native_census.ts";
import { allocatorName } from "../base/_allocator_name.ts";

/**
 * What the array's allocator threw while it made, grew, shrank or copied the array's storage, said as the
 * array's operation (`op`, the call the program made: "push to", "compact"...) rather than the allocator's
 * ("Cannot resize Uint8Array(32 bytes)", a call the program never made): the allocator's category (a RangeError,
 * a size it never serves, is "out-of-memory") and errno are kept, and its error is the cause. `asked` is what the
 * allocator could not do ("grow its storage from 32 to 64 bytes"). Anything else it threw (a TypeError, an Error
 * of its own code) is not a refusal: it goes on as it is.
 */
function refusal(error: unknown, allocator: Allocator, name: string, op: string, asked: string): unknown {
  if (!(error instanceof AllocationError) && !(error instanceof RangeError)) return error;
  const by = allocatorName(allocator);
  const plain = matches(/^[A-Za-z_$][\w$]*$/, by); // a class name, not "an object", "a Proxy" or a quoted name
  const category = error instanceof AllocationError ? error.category : "out-of-memory";
  // A stack changes the size of its newest block only, in place.
  const stack = plain && by === "StackAllocator" && category === "unsupported";
  return new AllocationError(
    category,
    `Cannot ${op} a ${name}: its ${plain ? by : `allocator (${by})`} cannot ${asked}${stack ? " in place" : ""} ` +
      `(${reasonOf(error.message)})${adviceFor(error, category, stack)}`,
    error instanceof AllocationError ? { cause: error, call: error.call, errno: error.errno } : { cause: error },
  );
}

// The allocator's reason without its own "Cannot <its call>: " (the array's message names the operation), unless
// that first clause is part of the reason (a quoted option's name: "Cannot resize as 'newSize' must be at most 64").
function reasonOf(message: string): string {
  const reason = /^Cannot [^:'"]*: (.+)$/s.exec(message);
  return reason === null ? message : reason[1];
}

// What the program can do about a refusal, when memkit knows.
function adviceFor(error: Error, category: string, stack: boolean): string {
  if (stack) {
    return ": reserve() the room the array needs before allocating other blocks from the stack, or give the array " +
      "an allocator of its own";
  }
  if (error instanceof RangeError) return ": give the array an allocator that serves blocks of that size";
  if (category === "out-of-memory" || category === "limit-exceeded") {
    return ": free memory in that allocator, or give the array one with more room";
  }
  return "";
}

/**
 * How many copies on write have called an allocator (mutable() with a storage a snapshot shares). The
 * allocator may be the program's code, which may change any array but the one it works for: a caller that
 * checked other arrays before mutable() compares this before and after, and checks them again when it moved.
 * (A module variable: one load on the kernels' path, no call.)
 */
export let allocatorCopies = 0;

/** Most elements a DynamicArray holds. */
export const MAX_CAPACITY = 2 ** 40;

/** Where set() writes: a slot checked again once the value is checked. */
export class SetTarget implements Target {
  next = 0;
  limit = 0;
  views: Views | null = null;
  bytes: Uint8Array = EMPTY;
  readonly store: ArrayStore;
  readonly index: number;
  constructor(store: ArrayStore, index: number) {
    this.store = store;
    this.index = index;
  }
  claim(): number {
    this.store.at(this.index, "set an element of");
    const s = this.store.mutable("set an element of");
    this.views = s.views;
    this.bytes = s.block;
    return this.index;
  }
}

/**
 * One DynamicArray's hold on its storage, and the Target its push() writes
 * to: the array's length is `next`. The writer takes slot `next` at once
 * while it is below `limit` and `bytes` is not detached, and calls `claim()`
 * otherwise.
 *
 * Invariants: `storage` is FREED after free(), BUSY while the allocator runs
 * on this array's behalf or on a snapshot's that copies its bytes (so a call
 * back into the array from inside it finds no storage), else a Storage whose
 * `holders` include this store. While the storage lives, `capacity * stride`
 * of its bytes are the array's and `next <= capacity`. Push's fast path is
 * open (`limit` is the capacity, `views` and `bytes` the storage's) only
 * while the storage lives and `refs === 1`; else `limit` is 0, `views` null
 * and `bytes` empty (a shared storage is copied by mutable() before any change). get() relies on
 * this through viewsAt().
 */
export class ArrayStore implements Target {
  next = 0;
  limit = 0;
  views: Views | null = null;
  bytes: Uint8Array = EMPTY;
  storage: Storage;
  capacity: number;
  readonly allocator: Allocator;
  readonly align: number;
  readonly growth: number;
  readonly #codec: RecordCodec;
  readonly #stride: number;
  /** The name errors use: the array's class ("DynamicArray", "SIMDArray"). */
  readonly name: string;
  allocations = 1;
  reallocations = 0;
  /** Who the storage is for in the census of native memory (the leak check at exit). */
  readonly census: CensusOwner;

  /**
   * Allocates room for `capacity` elements, or, with `share`, holds the
   * storage of another live array (a snapshot: both copy on write). `name`
   * is the array's class, as its errors say it (the allocator's refusal here
   * included).
   * @throws {AllocationError} As the allocator's `alloc`; "corruption" when it returns something unusable.
   */
  constructor(
    name: string,
    codec: RecordCodec,
    allocator: Allocator,
    align: number,
    growth: number,
    capacity: number,
    share: ArrayStore | null,
  ) {
    this.#codec = codec;
    this.#stride = codec.stride;
    this.allocator = allocator;
    // Storage must start at a multiple of 8 (every element type's views fit there; #adopt checks it), so a
    // smaller alignment the user may ask for (1, 2, 4) is raised here rather than refused by that check.
    this.align = max(8, align);
    this.growth = growth;
    this.capacity = capacity;
    this.name = name;
    const nameOf = () => this.name;
    this.census = {
      get kind() {
        return nameOf();
      },
      site: censusSite(),
      holder: null,
      lifetime: false,
    };
    if (share !== null) {
      const s = share.use("take a snapshot of");
      this.next = share.next;
      this.capacity = share.capacity;
      if (s.exposed) {
        // Views (or the address) handed out over `s` may write to it at any
        // time, which would change the snapshot too: it takes a copy now.
        // The allocator may be user code, run between reading the source's
        // length and copying its bytes: the source is busy meanwhile (as an
        // array whose own allocator works for it), so a call into it is
        // refused and the copy is the array as it was when it was checked.
        share.storage = BUSY;
        share.close();
        try {
          this.storage = this.#copyOf(s, share, "take a snapshot of", "the snapshot");
        } finally {
          share.storage = s;
          share.bind();
        }
        this.#attach(this.storage);
        return;
      }
      s.refs++;
      this.storage = s;
      this.allocations = 0;
      this.#attach(s);
      share.bind(); // shared now: its fast path closes
      return;
    }
    const size = capacity * this.#stride;
    let given: unknown;
    const outer = beginTake(this.census);
    try {
      given = allocator.alloc(size, this.align);
    } catch (error) {
      throw refusal(error, allocator, this.name, "create", `give it ${size} bytes of storage`);
    } finally {
      endTake(outer);
    }
    this.storage = this.#adopt(given, size, "alloc");
    this.#attach(this.storage);
  }

  // New storage of this array's capacity holding the first `next` elements
  // of `from`, the live storage of `holder` (this array or another), for `op`
  // (the program's call) on behalf of `whom` (the array, or the snapshot being taken).
  #copyOf(from: Storage, holder: ArrayStore, op: string, whom: string): Storage {
    const size = this.capacity * this.#stride;
    let given: unknown;
    const outer = beginTake(this.census);
    try {
      given = this.allocator.alloc(size, this.align);
    } catch (error) {
      const asked = whom === "it"
        ? `give it ${size} bytes for a copy of the storage it shares with a snapshot`
        : `give ${whom} ${size} bytes for a copy of the storage (its bytes were handed out, so the two cannot share it)`;
      throw refusal(error, this.allocator, this.name, op, asked);
    } finally {
      endTake(outer);
    }
    const next = this.#adopt(given, size, "alloc");
    if (from.block.length === 0) {
      // The block went away while the allocator ran: give the new one back.
      next.lease?.end();
      this.allocator.free(next.given);
      throw holder.gone(from, op);
    }
    // (Built-ins captured at load: the allocator ran, and no code of the program's may run from here on.)
    const { buffer, offset } = typedRange(from.block);
    copyInto(next.block, new Builtin.Uint8Array(buffer, offset, this.next * this.#stride), 0);
    return next;
  }

  // push's slow path: the storage is gone, shared, full or detached (the writer checked `limit` and `bytes`).
  claim(): number {
    this.makeRoom(1, "push to");
    this.bind();
    return this.next++;
  }

  /** No more slots without claim(). */
  close(): void {
    this.limit = 0;
    this.views = null;
    this.bytes = EMPTY;
  }

  /** Whether the storage lives. */
  get alive(): boolean {
    return this.storage.block.length !== 0;
  }

  /** The live storage, or the error that says why there is none. */
  use(op: string): Storage {
    const s = this.storage;
    if (s.block.length === 0) throw this.gone(s, op);
    return s;
  }

  /** The live storage with `index` checked: TypeError for a non-number, RangeError out of range. */
  at(index: number, op: string): Storage {
    if (typeof index !== "number") throw indexTypeError(index, this.name, op);
    const s = this.use(op);
    const length = this.next;
    // (`% 1`, no call: a Number.isInteger the program replaced would run between this check and the operation.
    // A number from 0 to the length is finite, so it is an integer exactly when `index % 1` is 0.)
    if (!(index >= 0 && index < length && index % 1 === 0)) throw indexRangeError(index, length, this.name, op);
    return s;
  }

  /**
   * What at() checks, for get(): the live storage's views when `index` is
   * valid (null: read through `storage.view`). The first test is at()'s in
   * one expression, on push's fast path: `bytes` is not empty only while
   * the storage lives and is this array's alone, and `views` are then its
   * views. (Through `storage`, one more load per call costs get() ~4% in Deno.)
   */
  viewsAt(index: number, op: string): Views | null {
    if (
      typeof index === "number" && this.bytes.length !== 0 && index >= 0 && index < this.next && index % 1 === 0
    ) {
      return this.views;
    }
    return this.at(index, op).views;
  }

  /** The error for storage `s` being gone (remembering an engine's detach as a release). */
  gone(s: Storage, op: string): AllocationError {
    if (s === BUSY) {
      return new AllocationError(
        "unsupported",
        `Cannot ${op} a ${this.name} while its allocator is allocating or resizing its storage (a call from inside it)`,
      );
    }
    if (s === FREED) {
      return new AllocationError("use-after-free", `Cannot ${op} a ${this.name} after its free()`);
    }
    if (s.released === null) {
      // Only the engine told: the buffer is detached. Remember it (and stop leasing a block that is gone).
      s.lease?.end();
      s.revoke(DETACHED);
    }
    return new AllocationError(
      "use-after-free",
      `Cannot ${op} a ${this.name}: its storage was released (${s.released})`,
    );
  }

  /** Opens push's fast path over the current storage while it is alive and not shared, else closes it. */
  bind(): void {
    const s = this.storage;
    const open = s.refs === 1 && s.block.length !== 0;
    this.views = open ? s.views : null;
    this.bytes = open ? s.block : EMPTY;
    this.limit = open ? this.capacity : 0;
  }

  /**
   * Storage of this array alone (a snapshot's share is copied first, for `op`, the program's call its
   * allocator's refusal names); the caller checked it is live.
   */
  mutable(op: string): Storage {
    const old = this.storage;
    if (old.refs === 1) return old;
    allocatorCopies++;
    this.storage = BUSY;
    this.close();
    let next: Storage;
    try {
      next = this.#copyOf(old, this, op, "it");
    } catch (error) {
      this.storage = old;
      this.bind();
      throw error;
    }
    if (old.refs === 1) {
      // The allocator's code freed the snapshots that shared the storage: this array holds it alone now, and
      // the copy is not needed (dropping `old` here, as below, would leave its block with no one to give it back).
      this.storage = old;
      this.bind();
      next.lease?.end();
      this.allocator.free(next.given); // never seen by anyone: its views were not handed out
      return old;
    }
    old.refs--;
    this.#detach(old);
    this.storage = next;
    this.#attach(next);
    this.allocations++;
    return next;
  }

  /** Live storage of this array alone with room for `count` more elements. */
  makeRoom(count: number, op: string): Storage {
    this.use(op);
    this.mutable(op);
    const needed = this.next + count;
    if (needed > this.capacity) {
      if (needed > MAX_CAPACITY) {
        throw new RangeError(`Cannot ${op} a ${this.name}: ${needed} elements is more than 2^40`);
      }
      this.resize(min(MAX_CAPACITY, max(needed, ceil(this.capacity * this.growth))), op);
    }
    return this.storage;
  }

  /**
   * Resizes this array's own live storage (refs 1) to `capacity` elements
   * through the allocator. Views handed out over the old storage are
   * detached first (the allocator may free or move it), also when the
   * allocator then fails and the storage stays. `op` is the program's call (its allocator's refusal names it).
   * @throws {AllocationError} "corruption" when the storage's own buffer was detached outside memkit (nothing
   *   changed); the allocator's refusal, said as `op` on the array (its category kept, its error the cause).
   */
  resize(capacity: number, op: string): void {
    const old = this.storage;
    const size = capacity * this.#stride;
    old.checkKept(this.name, "grow or shrink");
    // Busy before anything else runs: ending the lease and detaching run an allocator's bookkeeping, and the
    // allocator may be the program's code (so may a built-in that code calls), which must find no storage here.
    this.storage = BUSY;
    this.close();
    old.detachOwn();
    // The array's own resize must not revoke its own lease.
    old.lease?.end();
    old.lease = null;
    let given: unknown;
    const outer = beginTake(this.census);
    try {
      given = this.allocator.resize(old.given, size);
    } catch (error) {
      this.storage = old; // the allocator failed and kept the block as it was
      old.lease = leaseBlock(this.allocator, old.block, old);
      this.bind();
      const from = old.size;
      throw refusal(
        error,
        this.allocator,
        this.name,
        op,
        `${size > from ? "grow" : "shrink"} its storage from ${from} to ${size} bytes`,
      );
    } finally {
      endTake(outer);
    }
    let next: Storage;
    try {
      next = this.#adopt(given, size, "resize", old);
    } catch (error) {
      this.storage = old;
      old.revoke("its allocator's resize() returned an unusable block");
      throw error;
    }
    this.#detach(old);
    this.storage = next;
    this.capacity = capacity;
    this.#attach(next);
    this.reallocations++;
  }

  /**
   * Appends whole elements copied from `source` (also from this array's own
   * bytes, which growing would move), all or nothing.
   * @throws {RangeError} When `source` is not a whole number of elements.
   * @throws {AllocationError} "use-after-free" when the storage is gone, or the source went while growing.
   */
  appendBytes(source: Uint8Array, op: string): number {
    const byteLength = source.length, stride = this.#stride;
    if (byteLength % stride !== 0) {
      throw new RangeError(
        `Cannot push ${byteLength} bytes to a ${this.name}: not a whole number of ${stride}-byte elements`,
      );
    }
    const s = this.use(op);
    const count = byteLength / stride;
    if (count === 0) return this.next;
    // Bytes in this array's own buffers would move (or be detached) as it grows: copy them first.
    const buffer = source.buffer;
    const data = buffer === s.block.buffer || buffer === s.own ? copyOfBytes(source, 0, byteLength) : source;
    const target = this.makeRoom(count, op);
    if (data.length !== byteLength) {
      throw new AllocationError("use-after-free", `Cannot ${op} a ${this.name}: the source was released meanwhile`);
    }
    copyInto(target.block, data, this.next * stride);
    return this.next += count;
  }

  /** Appends `count` elements already encoded in `bytes` (a fresh buffer). */
  append(bytes: Uint8Array, count: number, op: string): number {
    const s = this.use(op);
    if (count === 0) return this.next;
    const target = s.refs === 1 && this.next + count <= this.capacity ? s : this.makeRoom(count, op);
    copyInto(target.block, bytes, this.next * this.#stride);
    return this.next += count;
  }

  /**
   * A `ctor` (typed array constructor or DataView) over the live elements' bytes.
   * @throws {TypeError} For another `ctor`. @throws {RangeError} For bytes that are not whole `ctor` elements.
   */
  view(ctor: unknown): unknown {
    const size = ctor === DataView ? 1 : checkTypedArrayConstructor(ctor, `view a ${this.name}`);
    this.use("view");
    const bytes = this.next * this.#stride;
    if (bytes % size !== 0) {
      throw new RangeError(
        `Cannot view ${bytes} bytes as ${(ctor as { name: string }).name}: not a whole number of ${size}-byte elements`,
      );
    }
    const { buffer, offset } = this.handOut("view");
    // Storage starts at a multiple of 8 in its buffer (checked when it was allocated), so any element size fits.
    if (ctor === DataView) return new Builtin.DataView(buffer, offset, bytes);
    return new (ctor as TypedArrayConstructor<TypedArray>)(buffer, offset, bytes / size);
  }

  /** A Uint8Array over the live elements' bytes (as `view(Uint8Array)`). */
  userBytes(op: string): Uint8Array<ArrayBuffer> {
    this.use(op);
    const { buffer, offset } = this.handOut(op);
    return new Builtin.Uint8Array(buffer, offset, this.next * this.#stride);
  }

  /**
   * The live storage, made this array's alone first (a view handed out may
   * write, and must not change a snapshot), marked exposed: the buffer and
   * offset to make the user's views over.
   */
  handOut(op: string): { buffer: ArrayBuffer; offset: number } {
    this.use(op);
    return this.mutable(op).handOut();
  }

  /**
   * Lets go of the storage, returning it to the allocator when no snapshot
   * still holds it. Nothing after a first call, or once the allocator released it.
   * @throws {AllocationError} What the allocator's `free` throws; "unsupported" from inside the allocator.
   */
  free(): void {
    const s = this.storage;
    if (s === FREED) return;
    if (s === BUSY) throw this.gone(s, "free");
    if (s.refs === 1 && s.block.length !== 0) s.checkKept(this.name, "free");
    this.storage = FREED;
    this.#detach(s);
    if (--s.refs !== 0) return;
    const lease = s.lease;
    s.lease = null;
    lease?.end();
    if (s.block.length === 0) {
      s.revoke(DETACHED); // the allocator released it already: nothing to give back (and no view stays)
      return;
    }
    const given = s.given;
    s.revoke("free"); // detaches the array's own buffer before the memory goes
    try {
      this.allocator.free(given);
    } catch (error) {
      // The allocator refused and kept the block: the array keeps it too (a throw changes nothing but the
      // views taken before, which were detached and must be taken again), so a later free() gives it back.
      this.#keep(given, s.size);
      throw error;
    }
  }

  // free()'s allocator threw: storage again over the block, as before the call, but only when the allocator
  // says it still owns it. A throw does not always mean the block was kept (a DebugAllocator frees a block
  // whose canaries were overwritten and then reports it): taking back a freed block would hand it out twice.
  // In doubt (no answer, or owns() throws), the array stays freed: a block lost beats a block shared.
  #keep(given: Uint8Array, size: number): void {
    let again: Storage;
    try {
      if ((this.allocator as { owns?: unknown }).owns === undefined || this.allocator.owns(given) !== true) return;
      again = this.#adopt(given, size, "free");
    } catch {
      return; // the allocator's block is no longer usable: the array stays freed
    }
    this.storage = again;
    this.#attach(again);
  }

  // This array now holds `s` (push's fast path follows it).
  #attach(s: Storage): void {
    append(s.holders, this);
    this.bind();
  }

  // This array no longer holds `s`.
  #detach(s: Storage): void {
    removeFrom(s.holders, this);
    this.close();
  }

  // What the allocator returned, checked (the safety model: chains cannot dangle), as storage with memkit's own views, leased.
  // `replacing`: the storage a resize replaces (its bytes may be the same).
  #adopt(given: unknown, size: number, call: string, replacing: Storage | null = null): Storage {
    let parts = blockParts(given, size);
    if (typeof parts !== "string") {
      const other = claimOf(parts[0], parts[1], size, replacing);
      if (other !== null) parts = `its bytes overlap the ${other.size}-byte storage of another live array`;
    }
    if (typeof parts === "string") {
      const kind = (this.allocator as { kind?: unknown }).kind;
      const allocator = typeof kind === "string" ? `the ${kind} allocator` : "its allocator";
      throw new AllocationError(
        "corruption",
        `Cannot use what ${allocator}.${call}() returned for a ${this.name}'s ${size}-byte storage: ${parts}`,
      );
    }
    const block = new Builtin.Uint8Array(parts[0] as ArrayBuffer, parts[1], parts[2]);
    const storage = new Storage(given as Uint8Array, block, this.#codec.viewsIn(parts[0], parts[1], parts[2]), size);
    storage.lease = leaseBlock(this.allocator, block, storage);
    claim(parts[0], parts[1], storage);
    return storage;
  }
}
