// The protocol of a SharedDynamicArray's buffer, the same in every thread
// that attached it: a header of four Int32 words, then the elements.
//
//   SEQ     counts writes; odd while one is in progress (a seqlock)
//   LENGTH  the element count
//   LOCK    the writers' lock: 0 free, 1 taken
//   STRIDE  the element size, which attach() checks
//
// Invariants: a writer takes LOCK, then makes SEQ odd, changes elements and
// LENGTH, makes SEQ even, and frees LOCK; nothing in between runs user code
// or throws (values are checked before lock(), and a claim that fails unlocks
// before it throws). A reader reads SEQ (even), then LENGTH and elements,
// then SEQ again: unchanged means no write overlapped, else it reads again.
// The buffer only grows (in place), inside the lock, up to maxByteLength.
import { AllocationError } from "../base/errors.ts";
import { indexRangeError } from "./_array_checks.ts";
import type { Views } from "./_codec_layout.ts";
import type { Target } from "./_record_target.ts";

const SEQ = 0;
const LENGTH = 1;
const LOCK = 2;
const STRIDE = 3;
/** Bytes before the first element. */
export const HEADER = 16;
/** Most elements, so byte offsets stay exact and Int32 LENGTH never overflows. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** A growable SharedArrayBuffer; the runtime reserves `max` bytes of address space up front. */
export function reserve(bytes: number, max: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes, { maxByteLength: max });
  } catch (error) {
    throw new RangeError(
      `Cannot create SharedDynamicArray: the runtime refused a growable SharedArrayBuffer of up to ${max} bytes ` +
        `(${(error as Error).message}); ask for a smaller maxCapacity`,
    );
  }
}

/** The element size recorded in a SharedDynamicArray's buffer (at least HEADER bytes long). */
export function strideOf(buffer: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(buffer, 0, 4), STRIDE);
}

/** One thread's handle on the header of a shared buffer: the lock, the seqlock, the length and growth. */
export class SharedHeader {
  readonly #buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #stride: number;
  readonly #timeoutMs: number;
  /** Most elements the buffer can hold. */
  readonly maxCapacity: number;
  /** Whether this thread holds the writers' lock (between a claim and the end of its write). */
  holding = false;
  // When a reader started waiting for a write to finish.
  #started = 0;

  /** Over `buffer`; `create` records the stride (a new buffer) instead of trusting the one there. */
  constructor(buffer: SharedArrayBuffer, stride: number, timeoutMs: number, create: boolean) {
    this.#buffer = buffer;
    this.#words = new Int32Array(buffer, 0, 4);
    this.#stride = stride;
    this.#timeoutMs = timeoutMs;
    this.maxCapacity = Math.floor((buffer.maxByteLength - HEADER) / stride);
    if (create) Atomics.store(this.#words, STRIDE, stride);
  }

  /** Elements stored now (any thread, any time). */
  get length(): number {
    return Atomics.load(this.#words, LENGTH);
  }

  /** Publishes a new length; only the lock's holder calls it. */
  setLength(count: number): void {
    Atomics.store(this.#words, LENGTH, count);
  }

  /** Elements stored, read by the lock's holder (no other thread changes it then). */
  get lockedLength(): number {
    return this.#words[LENGTH];
  }

  /** Elements that fit before the buffer grows. */
  get capacity(): number {
    return Math.floor((this.#buffer.byteLength - HEADER) / this.#stride);
  }

  // ------------------------------------------------------------ readers

  /** The write count a read starts from: odd while a write runs (then wait() and try again). */
  readBegin(): number {
    return Atomics.load(this.#words, SEQ);
  }

  /** Whether no write started since readBegin() returned `before`: what was read is consistent. */
  readValid(before: number): boolean {
    return Atomics.load(this.#words, SEQ) === before;
  }

  /**
   * A reader overlapped a write: retry at once a few times, then check the
   * clock now and then, so a write that never ends becomes an error.
   * @throws {AllocationError} "timeout" past `timeoutMs`.
   */
  waitForWriter(spins: number, op: string): void {
    if (spins < 64) return;
    if (spins === 64) this.#started = Date.now();
    else if ((spins & 1023) === 0 && Date.now() - this.#started > this.#timeoutMs) throw this.#timeout(op);
  }

  // ------------------------------------------------------------ writers

  /**
   * Takes the writers' lock and makes SEQ odd; no user code runs until unlock().
   * @throws {AllocationError} "timeout" when another writer holds it past `timeoutMs`.
   */
  lock(): void {
    const words = this.#words;
    if (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) {
      const deadline = Date.now() + this.#timeoutMs;
      do {
        const left = deadline - Date.now();
        if (left <= 0) throw this.#timeout("write");
        Atomics.wait(words, LOCK, 1, Math.min(left, 10));
      } while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0);
    }
    Atomics.add(words, SEQ, 1);
    this.holding = true;
  }

  /** Makes SEQ even again and releases the lock. */
  unlock(): void {
    const words = this.#words;
    this.holding = false;
    Atomics.add(words, SEQ, 1);
    Atomics.store(words, LOCK, 0);
    Atomics.notify(words, LOCK, 1);
  }

  /**
   * Room for `count` elements: the buffer grows in place (doubling), up to
   * maxCapacity. Only the lock's holder calls it.
   * @throws {RangeError} Past maxCapacity.
   */
  ensure(count: number): void {
    if (count > this.maxCapacity) {
      throw new RangeError(
        `Cannot grow the SharedDynamicArray to ${count} elements: its maxCapacity is ${this.maxCapacity}`,
      );
    }
    const buffer = this.#buffer;
    const needed = HEADER + count * this.#stride;
    if (needed <= buffer.byteLength) return;
    const doubled = HEADER + 2 * (buffer.byteLength - HEADER);
    buffer.grow(Math.min(buffer.maxByteLength, Math.max(needed, doubled)));
  }

  #timeout(op: string): AllocationError {
    return new AllocationError(
      "timeout",
      `Cannot ${op} the SharedDynamicArray: a write has held it for over ${this.#timeoutMs} ms ` +
        `(a Worker terminated in the middle of a write leaves it locked)`,
    );
  }
}

/** Where push() writes: claiming takes the writers' lock (released by push once the element is in). */
export class PushTarget implements Target {
  next = 0;
  limit = 0; // always claim(): it takes the lock
  views: Views | null;
  bytes: Uint8Array;
  readonly header: SharedHeader;
  constructor(header: SharedHeader, views: Views | null, bytes: Uint8Array) {
    this.header = header;
    this.views = views;
    this.bytes = bytes;
  }
  claim(): number {
    const header = this.header;
    header.lock();
    const length = header.lockedLength;
    try {
      header.ensure(length + 1);
    } catch (error) {
      header.unlock();
      throw error;
    }
    return length;
  }
}

/** Where set() writes: claiming takes the lock and checks the index against the length inside it. */
export class SetTarget implements Target {
  next = 0;
  limit = 0;
  views: Views | null;
  bytes: Uint8Array;
  readonly header: SharedHeader;
  readonly index: number;
  constructor(header: SharedHeader, views: Views | null, bytes: Uint8Array, index: number) {
    this.header = header;
    this.views = views;
    this.bytes = bytes;
    this.index = index;
  }
  claim(): number {
    const header = this.header, index = this.index;
    header.lock();
    const length = header.lockedLength;
    if (!Number.isInteger(index) || index < 0 || index >= length) {
      header.unlock();
      throw indexRangeError(index, length, "SharedDynamicArray", "set an element of");
    }
    return index;
  }
}
