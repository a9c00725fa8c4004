// Where a record codec writes: the protocol between the codec, which reads
// and checks a value (running user code), and the array, which hands out the
// slot (changing memkit's own state) only after that.
import type { Views } from "./_codec_layout.ts";

/**
 * Where a checked element goes. The writer takes slot `next` at once when
 * `next < limit` and `bytes` is not detached (the hot path of push: memkit
 * keeps `limit` at 0 whenever it must look first), else it calls `claim()`.
 * Either runs after every piece of user code the write involves and before
 * any byte is stored. `claim()` checks and changes memkit's own state (grows
 * the storage, counts the element, takes a lock) and returns the element's
 * index; `views` and `bytes` are then the current storage. Nothing after the
 * claim can fail.
 */
export interface Target {
  /** The next free slot (for push: the array's length). */
  next: number;
  /** Slots below this are free to take without claim(): 0 when claim() must decide. */
  limit: number;
  claim(): number;
  /** Typed arrays for the generated writer (non-null whenever the codec has one). */
  views: Views | null;
  /** The storage's bytes from element 0. */
  bytes: Uint8Array;
}

/** Takes the slot the way the generated writer does: `next` while under `limit`, else `claim()`. */
export function claimOf(target: Target): number {
  const index = target.next;
  if (index < target.limit && target.bytes.length !== 0) {
    target.next = index + 1;
    return index;
  }
  return target.claim();
}

/** A fresh buffer filled one element after the other (pushMany's staging). */
export class BufferTarget implements Target {
  next = 0;
  limit: number;
  views: Views | null;
  bytes: Uint8Array;
  constructor(bytes: Uint8Array, views: Views | null, count: number) {
    this.bytes = bytes;
    this.views = views;
    this.limit = count;
  }
  claim(): number {
    throw new RangeError("Cannot store past the end of a staging buffer"); // never: encodeMany stores `count` values
  }
}

/**
 * A staging buffer an array keeps for encodeMany() between calls (so that a
 * batch allocates nothing), in use from the start of one encode until the
 * array has copied it out; a getter that pushes many to the same array in the
 * middle of an encode finds it busy and gets a fresh one.
 */
export interface Staging {
  target: BufferTarget | null;
  /** The target's buffer, and its size (0 before the first use). */
  buffer: ArrayBuffer;
  size: number;
  busy: boolean;
}

/** Writes element of a value already read and checked: `read` holds the fields the generated code read (or null). */
export type Slow = (value: unknown, target: Target, read: ArrayLike<unknown> | null) => number;
/** Checks and writes one element, returning its index; generated per type. */
export type Writer = (value: unknown, target: Target) => number;
/** What hands out an appender's slot: claimOne() runs after every check, and nothing after it fails. */
export interface Claimer {
  claimOne(): number;
}
/**
 * A Writer for one claimer whose `views` stay valid across its claim
 * (length-tracking views of a growable SharedArrayBuffer). For a scalar or
 * vector type: the value checked, `claimer.claimOne()`, the stores through
 * `views` (which must then be non-null); for a record type, a Writer's route
 * through `target` (see generate()). `target` claims as `claimer` does, and
 * serves the checked path. Generated per type.
 */
export type Appender = (value: unknown, claimer: Claimer, views: Views | null, target: Target) => number;
/**
 * Checks and writes `count` elements of `values` (each read once) at slots 0
 * to count - 1 of a staging target with room for them, `target.next` the one
 * it is at (so an error names it); generated per type.
 */
export type Encoder = (values: readonly unknown[], count: number, target: Target) => void;
/** Reads element `index`; generated per type. */
export type Reader = (views: Views, index: number) => unknown;
