/**
 * A growable array of records in a growable SharedArrayBuffer, read by many
 * Workers while one at a time writes.
 *
 * @module
 */
import { codecFor, type FieldValue, type RecordCodec, type Views } from "./_record_codec.ts";
import { describe, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import type { FieldType, StructLayout } from "./struct.ts";

// The buffer starts with four Int32 words, then the elements:
// SEQ counts writes and is odd while one is in progress (a seqlock), LENGTH
// is the element count, LOCK is the writers' lock, STRIDE guards attach().
const SEQ = 0;
const LENGTH = 1;
const LOCK = 2;
const STRIDE = 3;
const HEADER = 16;
// Most elements, so byte offsets stay exact and Int32 LENGTH never overflows.
const MAX_ELEMENTS = 2 ** 31 - 1;

// Set by attach() around its constructor call: the buffer to adopt.
let attaching: SharedArrayBuffer | null = null;

// A growable SharedArrayBuffer; the runtime reserves `max` bytes of address space up front.
function reserve(bytes: number, max: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes, { maxByteLength: max });
  } catch (error) {
    throw new RangeError(
      `Cannot create SharedDynamicArray: the runtime refused a growable SharedArrayBuffer of up to ${max} bytes ` +
        `(${(error as Error).message}); ask for a smaller maxCapacity`,
    );
  }
}

/**
 * Options of {@linkcode SharedDynamicArray}.
 *
 * @example
 * ```ts
 * import { SharedDynamicArray, type SharedDynamicArrayOptions } from "@memkit/memkit";
 *
 * const options: SharedDynamicArrayOptions = { maxCapacity: 1 << 20, capacity: 1024 };
 * const samples = new SharedDynamicArray<number>("f32", options);
 * samples.push(0.5);
 * ```
 */
export interface SharedDynamicArrayOptions {
  /** Most elements the array can ever hold: the buffer's `maxByteLength` is set from it. */
  maxCapacity: number;
  /** Elements to make room for at first. @default {min(16, maxCapacity)} */
  capacity?: number;
  /**
   * How long a write waits for the lock, and a read for a write to finish,
   * before giving up with `AllocationError("timeout")`: a Worker terminated
   * in the middle of a write leaves the lock taken for good. @default {5000}
   */
  timeoutMs?: number;
}

const TimeoutSchema = z.number().min(0, "must be at least 0").optional();

const OptionsSchema = z.object({
  maxCapacity: z.number().int("must be an integer").min(1, "must be at least 1").max(
    MAX_ELEMENTS,
    "must be at most 2^31 - 1",
  ),
  capacity: z.number().int("must be an integer").min(0, "must be at least 0").optional(),
  timeoutMs: TimeoutSchema,
}).strict();

const AttachOptionsSchema = z.object({ timeoutMs: TimeoutSchema }).strict();

/**
 * A growable array of records (a {@linkcode StructLayout}) or scalars in a
 * growable `SharedArrayBuffer`. Post its `buffer` to Workers and call
 * {@linkcode SharedDynamicArray.attach} there: every thread sees the same
 * elements, and the buffer grows in place up to `maxCapacity` elements.
 *
 * Writers (in any thread) take turns through a lock in the buffer. Readers
 * take no lock: a sequence counter (a seqlock) tells them when a write
 * overlapped their read, and they read again, so they never see a torn
 * element or a length that disagrees with the elements. Writes encode the
 * element before taking the lock, so the lock is held only for a copy, and a
 * value that fails validation never reaches the shared buffer.
 *
 * @example
 * ```ts
 * import { SharedDynamicArray, struct } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Point = struct({ x: "f32", y: "f32" });
 * const points = new SharedDynamicArray<{ x: number; y: number }>(Point, { maxCapacity: 1000 });
 * points.push({ x: 1, y: 2 });
 * // In a Worker, after postMessage(points.buffer): SharedDynamicArray.attach(buffer, Point)
 * const same = SharedDynamicArray.attach<{ x: number; y: number }>(points.buffer, Point);
 * same.push({ x: 3, y: 4 });
 * assert.deepEqual(points.toArray(), [{ x: 1, y: 2 }, { x: 3, y: 4 }]);
 * ```
 */
export class SharedDynamicArray<T = FieldValue | Record<string, FieldValue>> implements Iterable<T> {
  readonly #buffer: SharedArrayBuffer;
  readonly #header: Int32Array;
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #codec: RecordCodec;
  readonly #stride: number;
  readonly #maxCapacity: number;
  readonly #timeoutMs: number;
  // One element, encoded outside the lock.
  readonly #scratch: Uint8Array;
  readonly #scratchView: DataView;
  // The codec's typed arrays (null: the DataView path): over the elements,
  // tracking the buffer's growth, and over the scratch element.
  readonly #elements: Views | null;
  readonly #scratchViews: Views | null;

  /**
   * Creates an empty array in a new growable SharedArrayBuffer.
   *
   * @param type A StructLayout from `struct()`, or a field type.
   * @param options `maxCapacity` (required) and the initial `capacity`.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers, or a `capacity` above `maxCapacity`.
   */
  constructor(type: StructLayout | FieldType, options: SharedDynamicArrayOptions) {
    const codec = codecFor(type, "create SharedDynamicArray");
    const parsed = parseOptions(OptionsSchema, options, "create SharedDynamicArray");
    if (parsed.capacity !== undefined && parsed.capacity > parsed.maxCapacity) {
      throw new RangeError(
        `Cannot create SharedDynamicArray as 'capacity' must be at most maxCapacity (${parsed.maxCapacity}): current value is ${parsed.capacity}`,
      );
    }
    const capacity = parsed.capacity ?? Math.min(16, parsed.maxCapacity);
    const buffer = attaching ?? reserve(HEADER + capacity * codec.stride, HEADER + parsed.maxCapacity * codec.stride);
    this.#codec = codec;
    this.#stride = codec.stride;
    this.#maxCapacity = Math.floor((buffer.maxByteLength - HEADER) / codec.stride);
    this.#timeoutMs = parsed.timeoutMs ?? 5000;
    this.#buffer = buffer;
    this.#header = new Int32Array(buffer, 0, 4);
    // Length-tracking views: they follow the buffer as it grows, in every thread.
    this.#view = new DataView(buffer);
    this.#bytes = new Uint8Array(buffer);
    this.#scratch = new Uint8Array(codec.stride);
    this.#scratchView = new DataView(this.#scratch.buffer);
    this.#elements = codec.viewsOver(buffer, HEADER);
    this.#scratchViews = codec.viewsOf(this.#scratch);
    if (attaching === null) Atomics.store(this.#header, STRIDE, codec.stride);
  }

  /**
   * The array whose `buffer` another thread posted, seen from this thread.
   *
   * @param buffer The `buffer` of a SharedDynamicArray.
   * @param type The same element type it was created with.
   * @param options `timeoutMs` for this thread's reads and writes.
   * @throws {TypeError} When `buffer` is not a SharedDynamicArray's buffer, or `type` has another size.
   */
  static attach<U = FieldValue | Record<string, FieldValue>>(
    buffer: SharedArrayBuffer,
    type: StructLayout | FieldType,
    options: { timeoutMs?: number } = {},
  ): SharedDynamicArray<U> {
    if (!(buffer instanceof SharedArrayBuffer) || !buffer.growable || buffer.byteLength < HEADER) {
      throw new TypeError(
        `Cannot attach a SharedDynamicArray as 'buffer' must be the growable SharedArrayBuffer of one: current value is ${
          describe(buffer)
        }`,
      );
    }
    const codec = codecFor(type, "attach a SharedDynamicArray");
    const { timeoutMs } = parseOptions(AttachOptionsSchema, options, "attach a SharedDynamicArray");
    const stride = Atomics.load(new Int32Array(buffer, 0, 4), STRIDE);
    if (stride !== codec.stride) {
      throw new TypeError(
        `Cannot attach a SharedDynamicArray of ${codec.stride}-byte elements to a buffer of ${stride}-byte elements`,
      );
    }
    attaching = buffer;
    try {
      return new SharedDynamicArray<U>(type, {
        maxCapacity: Math.floor((buffer.maxByteLength - HEADER) / stride),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
    } finally {
      attaching = null;
    }
  }

  /** The shared storage: post it to Workers and `attach` it there. */
  get buffer(): SharedArrayBuffer {
    return this.#buffer;
  }

  /** Elements stored now. */
  get length(): number {
    return Atomics.load(this.#header, LENGTH);
  }

  /** Elements that fit before the buffer grows. */
  get capacity(): number {
    return Math.floor((this.#buffer.byteLength - HEADER) / this.#stride);
  }

  /** Most elements the array can hold. */
  get maxCapacity(): number {
    return this.#maxCapacity;
  }

  /** Bytes per element. */
  get stride(): number {
    return this.#stride;
  }

  /**
   * Appends one element, growing the buffer in place when needed.
   * @returns The new length.
   * @throws {RangeError} At `maxCapacity`. @throws {TypeError} For a value of the wrong shape.
   */
  push(value: T): number {
    this.#encode(value);
    return this.#locked(() => {
      const length = this.#header[LENGTH];
      this.#ensure(length + 1);
      this.#bytes.set(this.#scratch, HEADER + length * this.#stride);
      Atomics.store(this.#header, LENGTH, length + 1);
      return length + 1;
    });
  }

  /**
   * Appends many elements in one write (readers see none or all of them).
   * @returns The new length.
   * @throws {RangeError} Past `maxCapacity`. @throws {TypeError} For a value of the wrong shape.
   */
  pushMany(values: readonly T[]): number {
    if (!Array.isArray(values)) {
      throw new TypeError(`Cannot push many as 'values' must be an array: current value is ${describe(values)}`);
    }
    const encoded = new Uint8Array(values.length * this.#stride);
    const views = this.#codec.viewsOf(encoded);
    const view = new DataView(encoded.buffer);
    values.forEach((value, i) => {
      if (views !== null) this.#codec.writeViews(views, i, value);
      else this.#codec.write(view, encoded, i * this.#stride, value);
    });
    return this.#locked(() => {
      const length = this.#header[LENGTH];
      this.#ensure(length + values.length);
      this.#bytes.set(encoded, HEADER + length * this.#stride);
      Atomics.store(this.#header, LENGTH, length + values.length);
      return length + values.length;
    });
  }

  /**
   * Replaces the element at `index`; readers see the old or the new one, never a mix.
   * @throws {RangeError} For an index out of range. @throws {TypeError} For a value of the wrong shape.
   */
  set(index: number, value: T): void {
    this.#encode(value);
    this.#locked(() => {
      this.#checkIndex(index, this.#header[LENGTH]);
      this.#bytes.set(this.#scratch, HEADER + index * this.#stride);
    });
  }

  /** Removes and returns the last element, or undefined when empty. */
  pop(): T | undefined {
    return this.#locked(() => {
      const length = this.#header[LENGTH];
      if (length === 0) return undefined;
      Atomics.store(this.#header, LENGTH, length - 1);
      return this.#read(length - 1);
    });
  }

  /** Removes every element (the buffer keeps its size: a SharedArrayBuffer cannot shrink). */
  clear(): void {
    this.#locked(() => Atomics.store(this.#header, LENGTH, 0));
  }

  /**
   * The element at `index` (a fresh object for records), as one write left it.
   * @throws {RangeError} For an index out of range.
   */
  get(index: number): T {
    for (let spins = 0;; spins++) {
      const before = Atomics.load(this.#header, SEQ);
      if ((before & 1) === 0) {
        const length = Atomics.load(this.#header, LENGTH);
        const inRange = Number.isInteger(index) && index >= 0 && index < length;
        const value = inRange ? this.#read(index) : undefined;
        if (Atomics.load(this.#header, SEQ) === before) {
          if (!inRange) this.#checkIndex(index, length);
          return value as T;
        }
      }
      this.#waitForWriter(spins, "read");
    }
  }

  /** Every element, as of one moment between writes. */
  toArray(): T[] {
    let copy: Uint8Array;
    let length: number;
    for (let spins = 0;; spins++) {
      const before = Atomics.load(this.#header, SEQ);
      if ((before & 1) === 0) {
        length = Atomics.load(this.#header, LENGTH);
        copy = this.#bytes.slice(HEADER, HEADER + length * this.#stride);
        if (Atomics.load(this.#header, SEQ) === before) break;
      }
      this.#waitForWriter(spins, "read");
    }
    const views = this.#codec.viewsOf(copy);
    if (views !== null) return Array.from({ length }, (_, i) => this.#codec.readViews(views, i) as T);
    const view = new DataView(copy.buffer);
    return Array.from({ length }, (_, i) => this.#codec.read(view, i * this.#stride) as T);
  }

  /** The elements of {@linkcode SharedDynamicArray.toArray}. */
  [Symbol.iterator](): Iterator<T> {
    return this.toArray()[Symbol.iterator]();
  }

  #encode(value: T): void {
    if (this.#scratchViews !== null) this.#codec.writeViews(this.#scratchViews, 0, value);
    else this.#codec.write(this.#scratchView, this.#scratch, 0, value);
  }

  #read(index: number): T {
    if (this.#elements !== null) return this.#codec.readViews(this.#elements, index) as T;
    return this.#codec.read(this.#view, HEADER + index * this.#stride) as T;
  }

  #checkIndex(index: number, length: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= length) {
      throw new RangeError(`Index out of range: ${describe(index)} (length ${length})`);
    }
  }

  // Room for `count` elements: the buffer grows in place (doubling), up to maxCapacity.
  #ensure(count: number): void {
    if (count > this.#maxCapacity) {
      throw new RangeError(
        `Cannot grow the SharedDynamicArray to ${count} elements: its maxCapacity is ${this.#maxCapacity}`,
      );
    }
    const needed = HEADER + count * this.#stride;
    if (needed <= this.#buffer.byteLength) return;
    const doubled = HEADER + 2 * (this.#buffer.byteLength - HEADER);
    this.#buffer.grow(Math.min(this.#buffer.maxByteLength, Math.max(needed, doubled)));
  }

  // A reader overlapped a write: retry at once a few times, then check the
  // clock now and then, so a write that never ends becomes an error.
  #started = 0;
  #waitForWriter(spins: number, op: string): void {
    if (spins < 64) return;
    if (spins === 64) this.#started = Date.now();
    else if ((spins & 1023) === 0 && Date.now() - this.#started > this.#timeoutMs) throw this.#timeout(op);
  }

  #timeout(op: string): AllocationError {
    return new AllocationError(
      "timeout",
      `Cannot ${op} the SharedDynamicArray: a write has held it for over ${this.#timeoutMs} ms ` +
        `(a Worker terminated in the middle of a write leaves it locked)`,
    );
  }

  // Runs `body` holding the writers' lock, with SEQ odd while it runs.
  #locked<R>(body: () => R): R {
    const header = this.#header;
    if (Atomics.compareExchange(header, LOCK, 0, 1) !== 0) {
      const deadline = Date.now() + this.#timeoutMs;
      do {
        const left = deadline - Date.now();
        if (left <= 0) throw this.#timeout("write");
        Atomics.wait(header, LOCK, 1, Math.min(left, 10));
      } while (Atomics.compareExchange(header, LOCK, 0, 1) !== 0);
    }
    Atomics.add(header, SEQ, 1);
    try {
      return body();
    } finally {
      Atomics.add(header, SEQ, 1);
      Atomics.store(header, LOCK, 0);
      Atomics.notify(header, LOCK, 1);
    }
  }
}
