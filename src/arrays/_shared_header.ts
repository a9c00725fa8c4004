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
//
// Any code holding the buffer can write the header, so every read of it is
// checked before it is used (the length before any loop, copy or index sized
// by it): 0 <= LENGTH <= the elements the buffer holds, LOCK 0 or 1, STRIDE
// the element size, SEQ even whenever a writer takes the lock. Anything else
// is AllocationError("corruption"): the buffer was written outside memkit.
// The buffer's lengths are read through the engine's own getters (an own
// `byteLength` or `grow` property on the buffer changes nothing).
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

function getter<T>(key: string): (this: SharedArrayBuffer) => T {
  return Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, key)!.get as (this: SharedArrayBuffer) => T;
}
const sabByteLength = getter<number>("byteLength");
const sabMaxByteLength = getter<number>("maxByteLength");
const sabGrowable = getter<boolean>("growable");
const sabGrow = SharedArrayBuffer.prototype.grow as (this: SharedArrayBuffer, length: number) => void;

/**
 * The real byte length and maxByteLength of `value` when it is a growable
 * SharedArrayBuffer of at least a header (from the engine's getters: an
 * object that only claims to be one is not), else null.
 */
export function growableLengths(value: unknown): [number, number] | null {
  let length: number, max: number, growable: boolean;
  try {
    length = sabByteLength.call(value as SharedArrayBuffer);
    max = sabMaxByteLength.call(value as SharedArrayBuffer);
    growable = sabGrowable.call(value as SharedArrayBuffer);
  } catch {
    return null;
  }
  return growable && length >= HEADER ? [length, max] : null;
}

// The corruption error: what was read, and what that means.
function corrupt(op: string, found: string): AllocationError {
  return new AllocationError(
    "corruption",
    `Cannot ${op} the SharedDynamicArray: ${found}; its SharedArrayBuffer was written outside memkit ` +
      `(only a SharedDynamicArray may write the buffer's first ${HEADER} bytes)`,
  );
}

/**
 * Checks the header of a buffer being attached as elements of `stride`
 * bytes: a stride word that cannot be a SharedDynamicArray's (not a positive
 * size the buffer's lengths are whole multiples of), a lock word other than
 * 0 or 1, or a length outside what the buffer holds.
 * @returns The stride word (the caller compares it with the type's: another size is a TypeError).
 * @throws {AllocationError} "corruption".
 */
export function checkAttachable(buffer: SharedArrayBuffer, byteLength: number, maxByteLength: number): number {
  const words = new Int32Array(buffer, 0, 4);
  const stride = Atomics.load(words, STRIDE);
  const op = "attach";
  if (
    !(stride > 0) || (byteLength - HEADER) % stride !== 0 || (maxByteLength - HEADER) % stride !== 0 ||
    (maxByteLength - HEADER) / stride > MAX_ELEMENTS
  ) {
    throw corrupt(
      op,
      `its element size word reads ${stride}, which no SharedDynamicArray of a ${byteLength}-byte buffer ` +
        `growing to ${maxByteLength} bytes has`,
    );
  }
  const lock = Atomics.load(words, LOCK);
  if (lock !== 0 && lock !== 1) throw corrupt(op, `its lock word reads ${lock} (0 or 1 expected)`);
  const length = Atomics.load(words, LENGTH);
  // Another thread may grow the buffer and publish a longer length between the
  // caller's read of byteLength and this one: a writer grows before it publishes,
  // so the byte length read after the length covers it.
  const capacity = Math.floor((sabByteLength.call(buffer) - HEADER) / stride);
  if (!(length >= 0 && length <= capacity)) {
    throw corrupt(op, `its length word reads ${length}, but the buffer holds ${capacity} elements`);
  }
  return stride;
}

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

  /**
   * Over `buffer`; `create` records the stride (a new buffer) instead of
   * trusting the one there (attach() checked it with checkAttachable()).
   */
  constructor(buffer: SharedArrayBuffer, stride: number, timeoutMs: number, create: boolean) {
    this.#buffer = buffer;
    this.#words = new Int32Array(buffer, 0, 4);
    this.#stride = stride;
    this.#timeoutMs = timeoutMs;
    this.maxCapacity = Math.floor((sabMaxByteLength.call(buffer) - HEADER) / stride);
    if (create) Atomics.store(this.#words, STRIDE, stride);
  }

  /**
   * Elements stored now (any thread, any time), checked against what the
   * buffer holds. (A writer grows the buffer before it publishes a length,
   * so a length read first is never more than the byte length read after.)
   * @throws {AllocationError} "corruption" for a length word no writer stored.
   */
  get length(): number {
    const length = Atomics.load(this.#words, LENGTH);
    if (length >= 0 && HEADER + length * this.#stride <= sabByteLength.call(this.#buffer)) return length;
    throw this.#badLength(length, "read");
  }

  /** Publishes a new length; only the lock's holder calls it. */
  setLength(count: number): void {
    Atomics.store(this.#words, LENGTH, count);
  }

  /**
   * Elements stored, read by the lock's holder (no other thread changes it
   * then), checked as `length` is. The caller unlocks when it throws.
   * @throws {AllocationError} "corruption".
   */
  get lockedLength(): number {
    const length = this.#words[LENGTH];
    if (length >= 0 && HEADER + length * this.#stride <= sabByteLength.call(this.#buffer)) return length;
    throw this.#badLength(length, "write");
  }

  /** Elements that fit before the buffer grows. */
  get capacity(): number {
    return Math.floor((sabByteLength.call(this.#buffer) - HEADER) / this.#stride);
  }

  #badLength(length: number, op: string): AllocationError {
    return corrupt(op, `its length word reads ${length}, but the buffer holds ${this.capacity} elements`);
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
    if (spins === 64) {
      this.#started = Date.now();
      this.#checkWriting(op);
    } else if ((spins & 1023) === 0) {
      this.#checkWriting(op);
      if (Date.now() - this.#started > this.#timeoutMs) throw this.#timeout(op);
    }
  }

  /**
   * SEQ is odd only while a writer holds LOCK: an odd SEQ unchanged across a
   * read of LOCK that finds it free (or not 0 or 1) was written outside memkit.
   * (A write that ended and another that began in between would change SEQ.)
   * @throws {AllocationError} "corruption".
   */
  #checkWriting(op: string): void {
    const words = this.#words;
    const before = Atomics.load(words, SEQ);
    const lock = Atomics.load(words, LOCK);
    const after = Atomics.load(words, SEQ);
    if (lock !== 0 && lock !== 1) throw corrupt(op, `its lock word reads ${lock} (0 or 1 expected)`);
    if (lock === 0 && before === after && (before & 1) !== 0) {
      throw corrupt(op, `its sequence word reads ${before} (odd: a write in progress) while no writer holds the lock`);
    }
  }

  // ------------------------------------------------------------ writers

  /**
   * Takes the writers' lock and makes SEQ odd; no user code runs until unlock().
   * @throws {AllocationError} "timeout" when another writer holds it past `timeoutMs`.
   */
  lock(): void {
    const words = this.#words;
    let was = Atomics.compareExchange(words, LOCK, 0, 1);
    if (was !== 0) {
      const deadline = Date.now() + this.#timeoutMs;
      do {
        if (was !== 1) throw corrupt("write", `its lock word reads ${was} (0 or 1 expected)`);
        const left = deadline - Date.now();
        if (left <= 0) throw this.#timeout("write");
        Atomics.wait(words, LOCK, 1, Math.min(left, 10));
        was = Atomics.compareExchange(words, LOCK, 0, 1);
      } while (was !== 0);
    }
    // Holding the lock, no other writer changes SEQ or STRIDE: both must be as the last writer left them.
    const seq = Atomics.load(words, SEQ);
    const stride = Atomics.load(words, STRIDE);
    if ((seq & 1) !== 0 || stride !== this.#stride) {
      Atomics.store(words, LOCK, 0);
      Atomics.notify(words, LOCK, 1);
      throw corrupt(
        "write",
        (seq & 1) !== 0
          ? `its sequence word reads ${seq} (odd: a write in progress) when the lock was free`
          : `its element size word reads ${stride}, not ${this.#stride}`,
      );
    }
    Atomics.store(words, SEQ, seq + 1);
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
    const byteLength = sabByteLength.call(buffer);
    if (needed <= byteLength) return;
    const doubled = HEADER + 2 * (byteLength - HEADER);
    sabGrow.call(buffer, Math.min(sabMaxByteLength.call(buffer), Math.max(needed, doubled)));
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
    try {
      const length = header.lockedLength;
      header.ensure(length + 1);
      return length;
    } catch (error) {
      header.unlock();
      throw error;
    }
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
    let length: number;
    try {
      length = header.lockedLength;
    } catch (error) {
      header.unlock();
      throw error;
    }
    if (!Number.isInteger(index) || index < 0 || index >= length) {
      header.unlock();
      throw indexRangeError(index, length, "SharedDynamicArray", "set an element of");
    }
    return index;
  }
}
