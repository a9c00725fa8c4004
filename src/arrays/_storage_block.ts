// One block of array storage (the safety model: an owner knows when its
// storage is gone): the allocator's view of it, memkit's own views, the
// ArrayBuffer the user's views are made over, its lease, and what happens
// when someone transferred that buffer away. Shared by an array and its
// snapshots; the array's side (growth, copy-on-write) is _array_storage.ts.
import { createStamp } from "../base/_stamp.ts";
import { detach } from "../base/_detach.ts";
import { native } from "../../ffi/native.ts";
import { intrinsic } from "../../ffi/boundary.ts";
import type { Lease, LeaseHolder } from "../alloc/_lease.ts";
import { AllocationError } from "../base/errors.ts";
import type { Views } from "./_codec_layout.ts";
import type { ArrayStore } from "./_array_storage.ts";
import { append, type List, newList } from "./_plain_values.ts";
import { Builtin, RecordView, typedLengthOf, typedRange, weakGet, weakSet } from "./_builtins.ts";

/** The block of storage that is gone. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/** Why a storage is gone when the engine says so but no lease told why. */
export const DETACHED: string =
  "the allocator detached its memory: a free through another view, an arena scope's end or reset, or the allocator's dispose";

// Each own buffer keeps the allocator's view of its block reachable (and so
// the allocator's buffer): memory a JavaScript backing gave stays alive as
// long as any view over the own buffer does.
const keepAlive = createStamp<Uint8Array>();

// What was found when the array's own buffer had been detached outside memkit.
const STOLEN = "its buffer was detached outside memkit (ArrayBuffer.prototype.transfer(), or a transfer to a " +
  "Worker, of the buffer behind its bytes or a view), and the buffer that took it may still reach the storage";

/**
 * The storage block of a live array, one holder for every snapshot that
 * shares it: the allocator's view (`given`, handed back to free and resize),
 * memkit's own views over the same bytes (internal: never handed out), the
 * buffer the user's views are made over (`own`), the share count and the lease.
 *
 * Invariants: `block.length === 0` exactly when the block is gone (revoked,
 * or detached by the allocator before any lease told: `released` is null
 * then until the next use notices); `refs` counts the arrays holding it and
 * `holders` holds their stores; `lease` is null while the array itself
 * frees or resizes the block, and once it is gone. `own` is null until a
 * view is first handed out over a leased block, and again once memkit
 * detached it (the block went, or is about to go, or to move); it is
 * detached before the block goes back to the allocator. `exposed` is true
 * once a view or the address was handed out: such a storage is never shared
 * (a snapshot copies it at once, as a view may write), so `refs === 1`
 * whenever `exposed`. `stolen` is set once `own` is found detached by
 * someone else: memkit then never gives the block back.
 */
export class Storage implements LeaseHolder {
  block: Uint8Array;
  given: Uint8Array;
  views: Views | null;
  view: RecordView | null;
  /** Bytes of the block that are the arrays' (what `own` covers). */
  readonly size: number;
  refs = 1;
  lease: Lease | null = null;
  /** Why the block is gone (null while it lives, or when only the engine's detach told). */
  released: string | null;
  /** The stores of the arrays that share this storage (so a revocation closes their fast path). */
  holders: List<ArrayStore> = newList();
  /** The ArrayBuffer of the array's own over the block, under every view handed out; made on first ask. */
  own: ArrayBuffer | null = null;
  /** The address `own` covers (kept: the block may be detached by the time `own` is). */
  ownAddress = 0;
  /** Whether a view or the address was handed out over this storage (it may be written from outside). */
  exposed = false;
  /** Whether `own` was detached outside memkit: its memory may still be reachable, so it is never freed. */
  stolen = false;

  constructor(given: Uint8Array, block: Uint8Array, views: Views | null, size: number, released: string | null = null) {
    this.given = given;
    this.block = block;
    this.views = views;
    this.size = size;
    // (The DataView path's view: RecordView, with DataView's methods as memkit loaded them; the block's range from
    // its internal slots.)
    const length = typedLengthOf(block);
    if (views === null && length !== 0) {
      const { buffer, offset } = typedRange(block);
      this.view = new RecordView(buffer, offset, length);
    } else this.view = null;
    this.released = released;
  }

  /** The allocator released the block (the safety model: an owner knows when its storage is gone): forget it, so every use finds it gone. */
  revoke(reason: string): void {
    this.released ??= reason;
    this.lease = null;
    this.detachOwn();
    this.block = EMPTY;
    this.given = EMPTY;
    this.views = null;
    this.view = null;
    const holders = this.holders;
    for (let i = 0; i < holders.length; i++) holders[i].close();
  }

  /**
   * The buffer and offset the user's views are made over: the array's own
   * buffer over a leased block (made now the first time: a push-only array
   * never pays for it), or, for an allocator that is not memkit's (no lease:
   * only its own detach can tell anyone of a release), its own buffer.
   * Marks the storage exposed. The caller checked it is live and not shared.
   * @throws {AllocationError} When the runtime cannot make the buffer (as `native.wrap`).
   */
  handOut(): { buffer: ArrayBuffer; offset: number } {
    if (this.lease === null) {
      this.exposed = true;
      const { buffer, offset } = typedRange(this.block);
      return { buffer: buffer as ArrayBuffer, offset };
    }
    if (this.own !== null && intrinsic.isDetached(this.own)) {
      this.detachOwn(); // someone else detached it: recorded, a new one, and this block is never given back
    }
    let own = this.own;
    if (own === null) {
      // SAFETY: `block` is a live block of a memkit allocator, leased by this
      // storage, and `size` of its bytes are the array's. The buffer is
      // detached before memkit gives the block back or moves it (free(),
      // resize()), and when the lease is revoked (anyone else releasing it),
      // so no view over it outlives the memory; one detached by anyone else
      // (`stolen`) keeps the block from ever being given back.
      const address = native.addressOf(this.block);
      own = native.wrap(address, this.size);
      keepAlive.set(own, this.given);
      this.own = own;
      this.ownAddress = address;
    }
    this.exposed = true;
    return { buffer: own, offset: 0 };
  }

  /** Detaches `own` (memkit's own doing); one detached by someone else marks the storage stolen. Never throws. */
  detachOwn(): void {
    const own = this.own;
    if (own === null) return;
    this.own = null;
    // detach() records memory another buffer may reach, so no allocator below ever frees it.
    if (!detach(own, this.ownAddress, this.size)) this.stolen = true;
  }

  /**
   * Before memkit gives the block back or moves it: a block whose own buffer
   * was detached by someone else is never given back.
   * @throws {AllocationError} "corruption" naming what happened; nothing changed.
   */
  checkKept(name: string, op: string): void {
    if (this.own !== null && intrinsic.isDetached(this.own)) this.detachOwn(); // records the memory as kept
    if (this.stolen) {
      throw new AllocationError(
        "corruption",
        `Cannot ${op} a ${name}: ${STOLEN}; its ${this.size}-byte block stays allocated (memkit never frees or ` +
          `moves memory a buffer it did not make may reach)`,
      );
    }
  }
}

// The live storages over each buffer and where they start, so an allocator
// that hands the same bytes to two arrays (which would alias them silently)
// is caught. Entries of storages that are gone (released, or held by no array
// since a resize replaced them) are dropped as they are found.
const claims = new Builtin.WeakMap<ArrayBufferLike, List<{ storage: Storage; start: number }>>();

/** A live storage other than `except` whose bytes overlap `size` bytes at `start` of `buffer`, or null. */
export function claimOf(buffer: ArrayBufferLike, start: number, size: number, except: Storage | null): Storage | null {
  const list = weakGet(claims, buffer);
  if (list === undefined) return null;
  let kept = 0;
  let found: Storage | null = null;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    const held = entry.storage;
    if (held.block.length === 0 || held.released !== null || held.holders.length === 0) continue; // gone
    list[kept++] = entry;
    const other = entry.storage;
    if (other !== except && start < entry.start + other.size && entry.start < start + size) found ??= other;
  }
  list.length = kept;
  return found;
}

/** Records that `storage` holds its bytes from `start` of `buffer`. */
export function claim(buffer: ArrayBufferLike, start: number, storage: Storage): void {
  const list = weakGet(claims, buffer);
  if (list === undefined) weakSet(claims, buffer, newList({ storage, start }));
  else append(list, { storage, start });
}

/** Every array's storage after free(). */
export const FREED: Storage = new Storage(EMPTY, EMPTY, null, 0, "free");
FREED.refs = 0;
/** An array's storage while its allocator works on it. */
export const BUSY: Storage = new Storage(EMPTY, EMPTY, null, 0, "busy");
BUSY.refs = 0;
