/**
 * A growable array of records in a growable SharedArrayBuffer, read by many
 * Workers while one at a time writes.
 *
 * @module
 */
import { describe, parseOptions, refuseArguments, z } from "../base/_validate.ts";
import { indexRangeError, indexTypeError } from "./_array_checks.ts";
import type { Views } from "./_codec_layout.ts";
import { codecFor, type FieldValue, type RecordCodec } from "./_record_codec.ts";
import { arrayOf } from "./_plain_values.ts";
import type { Appender, Staging } from "./_record_target.ts";
import { intrinsic } from "../../ffi/boundary.ts";
import { Builtin, copyInto, isArray, isInteger, min, RecordView } from "./_builtins.ts";
import { AllocationError } from "../base/errors.ts";
import { checkAttachable, growableLengths, HEADER, MAX_ELEMENTS, reserve } from "./_shared_buffer.ts";
import { SharedHeader } from "./_shared_header.ts";
import { PushTarget, SetTarget } from "./_shared_targets.ts";
import type { FieldType, FieldValueOf, StructLayout } from "./struct.ts";

// Set by attach() around its constructor call: the buffer to adopt.
let attaching: SharedArrayBuffer | null = null;

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
  /**
   * Most elements the array can ever hold, up to 2^29 - 1: the buffer's
   * `maxByteLength` is set from it (the runtime reserves that address space).
   * The runtime may refuse a large reservation (a RangeError naming it): Bun
   * takes a `maxByteLength` of at most 4 GiB (16 bytes of header included),
   * Deno more.
   */
  maxCapacity: number;
  /** Elements to make room for at first. @default {min(16, maxCapacity)} */
  capacity?: number;
  /**
   * How long a write waits for the lock, and a read for a write to finish,
   * before giving up with `AllocationError("timeout")`. Another thread's
   * `hold()` keeps writers waiting until it is released; a Worker terminated
   * in the middle of a write or a hold leaves the lock taken for good (unless
   * it died in a `set`, `pop` or `clear`, reads still work: copy the elements
   * out with `toArray()`). @default {5000}
   */
  timeoutMs?: number;
  /**
   * Store integers that do not fit their field as C converts them (wrapped
   * modulo 2^bits) instead of refusing them with a RangeError; see
   * DynamicArrayOptions.wrap. @default {false}
   */
  wrap?: boolean;
}

const TimeoutSchema = z.number().min(0, "must be at least 0").optional();

const OptionsSchema = z.object({
  maxCapacity: z.number().int("must be an integer").min(1, "must be at least 1").max(
    MAX_ELEMENTS,
    "must be at most 2^29 - 1",
  ),
  capacity: z.number().int("must be an integer").min(0, "must be at least 0").optional(),
  timeoutMs: TimeoutSchema,
  wrap: z.boolean().optional(),
}).strict();

const AttachOptionsSchema = z.object({ timeoutMs: TimeoutSchema, wrap: z.boolean().optional() }).strict();

/**
 * The writers' lock kept by one thread, from {@linkcode SharedDynamicArray.hold}.
 *
 * @example
 * ```ts
 * import { SharedDynamicArray, type SharedArrayHold } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const values = new SharedDynamicArray<number>("f64", { maxCapacity: 16 });
 * const held: SharedArrayHold = values.hold();
 * values.push(1);
 * held.release();
 * assert.equal(held.released, true);
 * ```
 */
export interface SharedArrayHold extends Disposable {
  /** Whether release() (or dispose) ran. */
  readonly released: boolean;
  /**
   * Gives the lock back (the last open hold of the array frees it); a second call does nothing, and so does
   * a call after a write under the hold found the header written outside memkit (that ended the hold).
   */
  release(): void;
}

// A hold dropped without release() gives the lock back when it is collected:
// other threads' writers wait at most until then, not for good.
const droppedHolds = new FinalizationRegistry<readonly [SharedHeader, number]>(([header, epoch]) =>
  header.release(epoch)
);
// Its methods, taken once: a program that replaces FinalizationRegistry.prototype.register or unregister runs
// no code between hold() taking the lock and returning the hold, or in release() before it frees the lock (an
// error there would leave the lock taken for good, in every thread).
const registerHold = FinalizationRegistry.prototype.register.bind(droppedHolds) as (
  target: Hold,
  held: readonly [SharedHeader, number],
  token: Hold,
) => void;
const unregisterHold = FinalizationRegistry.prototype.unregister.bind(droppedHolds) as (token: Hold) => boolean;

class Hold implements SharedArrayHold {
  #header: SharedHeader | null;
  // The header's epoch when it was taken: a hold the header lost (corruption) releases nothing.
  readonly #epoch: number;
  constructor(header: SharedHeader, epoch: number) {
    this.#header = header;
    this.#epoch = epoch;
    registerHold(this, [header, epoch], this);
  }
  get released(): boolean {
    return this.#header === null;
  }
  release(): void {
    const header = this.#header;
    if (header === null) return;
    this.#header = null;
    header.release(this.#epoch);
    unregisterHold(this);
  }
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A growable array of records (a {@linkcode StructLayout}) or scalars in a
 * growable `SharedArrayBuffer`. Post its `buffer` to Workers and call
 * {@linkcode SharedDynamicArray.attach} there: every thread sees the same
 * elements, and the buffer grows in place up to `maxCapacity` elements.
 *
 * Writers (in any thread) take turns through a lock in the buffer. Readers
 * take no lock: they never see a torn element or a length that counts one
 * not yet written (appends publish the length after the elements; `set`,
 * `pop` and `clear` bump a sequence counter, a seqlock, that makes a reader
 * overlapping them read again). A `push` by the only writer costs two atomic
 * operations (the lock shares a word with the length: one to take it, one to
 * free it and publish the new length), one inside a {@linkcode
 * SharedDynamicArray.hold} (publishing the length); `pushMany` appends its
 * whole batch with those two, so readers see none or all of it. Writes read and
 * check the value in full before taking the lock (getters, Proxies and
 * `values.length` run once, and never inside it), so the lock is held only
 * while the element is stored, and a value that fails its check never
 * reaches the shared buffer. Values are checked as in a DynamicArray (exact
 * fields, integers that fit unless `wrap`); indexes must be numbers.
 * Its storage is a SharedArrayBuffer, which cannot be detached or freed, so
 * it never loses it. Any code holding `buffer` can write its header, so the
 * array checks every word it reads there (a length within the buffer, lock
 * bits of 0, 1 or 2, the element size) before using it, and anything else is
 * `AllocationError("corruption")`.
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
export class SharedDynamicArray<T = FieldValue | Record<string, FieldValue>> implements Iterable<FieldValueOf<T>> {
  readonly #buffer: SharedArrayBuffer;
  // The lock, the seqlock, the length and growth, over the buffer's first 16 bytes.
  readonly #header: SharedHeader;
  readonly #view: RecordView;
  readonly #codec: RecordCodec;
  readonly #stride: number;
  // The codec's typed arrays over the elements (null: the DataView path) and
  // the elements' bytes, all tracking the buffer's growth.
  readonly #elements: Views | null;
  readonly #elementBytes: Uint8Array;
  readonly #pushTarget: PushTarget;
  /** What push() calls: the type's generated Appender, or store() where no code is generated. */
  readonly #append: Appender;
  readonly #staging: Staging = { target: null, buffer: new ArrayBuffer(0), size: 0, busy: false };

  /**
   * Creates an empty array of a field type in a new growable
   * SharedArrayBuffer; without a type argument, the element type is inferred
   * from `type` as for a {@linkcode DynamicArray} (bigints for `i64`/`u64`,
   * which take integer numbers too; tuples for vector types).
   *
   * @param type A field type.
   * @param options `maxCapacity` (required), the initial `capacity`, `timeoutMs`, `wrap`.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers, a `capacity` above `maxCapacity`, or when the runtime cannot
   *   reserve `maxCapacity` × the element size up front (Bun: a `maxByteLength` over 4 GiB).
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const ticks = new SharedDynamicArray("u64", { maxCapacity: 16 });
   * ticks.push(1);
   * const first: bigint = ticks.get(0);
   * assert.equal(first, 1n);
   * ```
   */
  constructor(type: T & FieldType, options: SharedDynamicArrayOptions);
  /**
   * Creates an empty array of a layout's records (their type inferred from
   * the layout), or of a field type with the element type given as the type
   * argument, in a new growable SharedArrayBuffer.
   *
   * @param type A StructLayout from `struct()`, or a field type.
   * @param options `maxCapacity` (required), the initial `capacity`, `timeoutMs`, `wrap`.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers, a `capacity` above `maxCapacity`, or when the runtime cannot
   *   reserve `maxCapacity` × the element size up front (Bun: a `maxByteLength` over 4 GiB).
   *
   * @example
   * ```ts
   * import { SharedDynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const points = new SharedDynamicArray(struct({ x: "f32", y: "f32" }), { maxCapacity: 16 });
   * points.push({ x: 1, y: 2 });
   * assert.equal(points.get(0).y, 2);
   * ```
   */
  constructor(type: StructLayout<T> | FieldType, options: SharedDynamicArrayOptions);
  constructor(type: StructLayout<T> | FieldType, options: SharedDynamicArrayOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create SharedDynamicArray");
    const codec = codecFor(type, "create SharedDynamicArray", parsed.wrap ?? false);
    if (parsed.capacity !== undefined && parsed.capacity > parsed.maxCapacity) {
      throw new RangeError(
        `Cannot create SharedDynamicArray as 'capacity' must be at most maxCapacity (${parsed.maxCapacity}): current value is ${parsed.capacity}`,
      );
    }
    const capacity = parsed.capacity ?? min(16, parsed.maxCapacity);
    const buffer = attaching ?? reserve(HEADER + capacity * codec.stride, HEADER + parsed.maxCapacity * codec.stride);
    this.#codec = codec;
    this.#stride = codec.stride;
    this.#buffer = buffer;
    this.#header = new SharedHeader(buffer, codec.stride, parsed.timeoutMs ?? 5000, attaching === null);
    // Length-tracking views: they follow the buffer as it grows, in every thread.
    this.#view = new RecordView(buffer);
    this.#elements = codec.viewsOver(buffer, HEADER);
    this.#elementBytes = new Builtin.Uint8Array(buffer, HEADER);
    this.#pushTarget = new PushTarget(this.#header, this.#elements, this.#elementBytes);
    this.#append = (this.#elements === null ? null : codec.appender) ??
      ((value, _header, _views, target) => codec.store(value, target));
  }

  /**
   * The array whose `buffer` another thread posted, seen from this thread,
   * of a field type: without a type argument, the element type is inferred
   * from `type` as for the constructor.
   *
   * @param buffer The `buffer` of a SharedDynamicArray.
   * @param type The same field type it was created with. Only its size is checked.
   * @param options `timeoutMs` for this thread's reads and writes; `wrap` for this thread's writes (default false).
   * @throws {TypeError} When `buffer` is not a growable SharedArrayBuffer, or `type` has another size.
   * @throws {AllocationError} "corruption" when its header is not one a SharedDynamicArray wrote (an element
   *   size word its lengths are not made of, lock bits other than 0, 1 or 2, a length the buffer does not hold);
   *   "use-after-free" for a detached ArrayBuffer or a view over one.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const ids = new SharedDynamicArray("u64", { maxCapacity: 64 });
   * // In a Worker, after postMessage(ids.buffer):
   * const seen = SharedDynamicArray.attach(ids.buffer, "u64");
   * seen.push(7);
   * const first: bigint = ids.get(0);
   * assert.equal(first, 7n);
   * ```
   */
  static attach<U>(
    buffer: SharedArrayBuffer,
    type: U & FieldType,
    options?: { timeoutMs?: number; wrap?: boolean },
  ): SharedDynamicArray<U>;
  /**
   * The array whose `buffer` another thread posted, seen from this thread:
   * of a layout's records (their type inferred from the layout), or of a
   * field type with the element type given as the type argument.
   *
   * @param buffer The `buffer` of a SharedDynamicArray.
   * @param type The same element type it was created with. Only its size is checked: another layout of the same
   *   size reads the bytes as its own fields.
   * @param options `timeoutMs` for this thread's reads and writes; `wrap` for this thread's writes (default false).
   * @throws {TypeError} When `buffer` is not a growable SharedArrayBuffer, or `type` has another size.
   * @throws {AllocationError} "corruption" when its header is not one a SharedDynamicArray wrote (an element
   *   size word its lengths are not made of, lock bits other than 0, 1 or 2, a length the buffer does not hold);
   *   "use-after-free" for a detached ArrayBuffer or a view over one.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const levels = new SharedDynamicArray<number>("u8", { maxCapacity: 64 });
   * // In a Worker, after postMessage(levels.buffer):
   * const seen = SharedDynamicArray.attach<number>(levels.buffer, "u8", { timeoutMs: 100, wrap: true });
   * seen.push(256 + 7); // wrapped, as C converts it
   * assert.deepEqual(levels.toArray(), [7]);
   * ```
   */
  static attach<U = FieldValue | Record<string, FieldValue>>(
    buffer: SharedArrayBuffer,
    type: StructLayout<U> | FieldType,
    options?: { timeoutMs?: number; wrap?: boolean },
  ): SharedDynamicArray<U>;
  static attach<U>(
    buffer: SharedArrayBuffer,
    type: StructLayout<U> | FieldType,
    options?: { timeoutMs?: number; wrap?: boolean },
  ): SharedDynamicArray<U> {
    if (options === undefined) options = {};
    const lengths = growableLengths(buffer);
    if (lengths === null) {
      const freed = ArrayBuffer.isView(buffer) ? intrinsic.bufferOf(buffer) : buffer;
      if (intrinsic.isDetached(freed)) {
        throw new AllocationError(
          "use-after-free",
          `Cannot attach a SharedDynamicArray to ${describe(buffer)}: it is a detached ArrayBuffer${
            freed === buffer ? "" : "'s view"
          } (its memory was released), and never a SharedDynamicArray's buffer`,
        );
      }
      throw new TypeError(
        `Cannot attach a SharedDynamicArray as 'buffer' must be the growable SharedArrayBuffer of one: current value is ${
          describe(buffer)
        }`,
      );
    }
    const { timeoutMs, wrap } = parseOptions(AttachOptionsSchema, options, "attach a SharedDynamicArray");
    const codec = codecFor(type, "attach a SharedDynamicArray", wrap ?? false);
    const byteLength = lengths[0], maxByteLength = lengths[1]; // (by index: not through the array iterator)
    const stride = checkAttachable(buffer, byteLength, maxByteLength);
    if (stride !== codec.stride) {
      throw new TypeError(
        `Cannot attach a SharedDynamicArray of ${codec.stride}-byte elements to a buffer of ${stride}-byte elements`,
      );
    }
    attaching = buffer;
    try {
      return new SharedDynamicArray<U>(type, {
        maxCapacity: (maxByteLength - HEADER) / stride,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(wrap === undefined ? {} : { wrap }),
      });
    } finally {
      attaching = null;
    }
  }

  /** The shared storage: post it to Workers and `attach` it there. */
  get buffer(): SharedArrayBuffer {
    return this.#buffer;
  }

  /**
   * Elements stored now.
   * @throws {AllocationError} "corruption" when the buffer's length word was written outside memkit.
   */
  get length(): number {
    return this.#header.length;
  }

  /** Elements that fit before the buffer grows. */
  get capacity(): number {
    return this.#header.capacity;
  }

  /** Most elements the array can hold. */
  get maxCapacity(): number {
    return this.#header.maxCapacity;
  }

  /** Bytes per element. */
  get stride(): number {
    return this.#stride;
  }

  /**
   * Appends one element, growing the buffer in place when needed. The value
   * is read and checked in full before the writers' lock is taken, so user
   * code (getters, Proxies) never runs inside it, and a bad value changes
   * nothing.
   * @returns The new length.
   * @throws {TypeError} For a value of the wrong shape or type, a missing or unknown field.
   * @throws {RangeError} At `maxCapacity`; for a vector of the wrong length or an integer that does not fit.
   * @throws {AllocationError} "timeout" when the lock is held past `timeoutMs`.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const levels = new SharedDynamicArray<number>("u8", { maxCapacity: 16 });
   * assert.equal(levels.push(200), 1);
   * assert.throws(() => levels.push(300), RangeError); // does not fit a u8
   * assert.equal(levels.length, 1);
   * ```
   */
  push(value: FieldValueOf<T, "write">): number {
    const header = this.#header;
    // Read before the claim, so that a getter the program put on Atomics.add runs before the lock is taken.
    const add = Atomics.add;
    let index: number;
    try {
      index = this.#append(value, header, this.#elements, this.#pushTarget);
    } catch (error) {
      // Only claim() takes the lock, and nothing after it throws but the engine's own errors (a stack
      // overflow): this is for those.
      if (header.holding) header.unlock();
      throw error;
    }
    header.unlockAppend(index + 1, add);
    return index + 1;
  }

  /**
   * Keeps the writers' lock for this thread until the hold is released (or
   * disposed: `using`), so that this array's writes in between skip taking
   * and freeing it: a `push` then costs one atomic operation (publishing the
   * new length) instead of two, like a hand-written single-writer append.
   * Readers are not affected: each element is visible once its push returns.
   * Writers in other Workers wait meanwhile, up to their `timeoutMs`; so
   * hold it for a burst of writes, not for good. Another SharedDynamicArray
   * over the same memory in this thread (attached to the same buffer, or to a
   * structured clone of it) could never get the lock while this thread waits,
   * so its writes and holds fail at once with `AllocationError("timeout")`.
   * Holds nest (the last release frees the lock); a hold that is dropped
   * without release frees it when collected. Writes under a hold still check
   * that the length word is as the last one left it (writes that change
   * elements check the whole header): one written outside memkit meanwhile
   * (another writer may have got in) makes the write
   * `AllocationError("corruption")` and ends the hold (its release() then
   * does nothing; the lock is freed only where the length word is still the
   * hold's). A hold is not a transaction: elements pushed under it before an
   * exception stay (`pushMany` appends all or nothing).
   * @returns The hold: call `release()`, or declare it with `using`.
   * @throws {AllocationError} "timeout" when another writer holds the lock past `timeoutMs` (at once when this
   *   thread holds it through another array over the same memory); "corruption".
   *
   * @example
   * ```ts
   * import { SharedDynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const Particle = struct({ id: "u32", x: "f32", y: "f32" });
   * const particles = new SharedDynamicArray<{ id: number; x: number; y: number }>(Particle, { maxCapacity: 1 << 16 });
   * {
   *   using _writing = particles.hold();
   *   for (let i = 0; i < 1000; i++) particles.push({ id: i, x: i * 0.5, y: -i });
   * } // the lock goes back here
   * assert.equal(particles.length, 1000);
   * ```
   */
  hold(): SharedArrayHold {
    refuseArguments(arguments.length, "hold the lock", "`using _writing = array.hold();` gives it back with its block");
    const header = this.#header;
    const epoch = header.hold();
    try {
      return new Hold(header, epoch);
    } catch (error) {
      header.release(epoch); // a hold() that throws keeps nothing (the lock included)
      throw error;
    }
  }

  /**
   * Appends many elements in one write, all or none (readers see none or all
   * of them): `values.length` and each element are read once, and every
   * value is checked, before the lock is taken.
   * @returns The new length.
   * @throws {TypeError} When `values` is not an array, or for a bad value (the message names its index).
   * @throws {RangeError} Past `maxCapacity`, or for a bad value.
   * @throws {AllocationError} "timeout" when the lock is held past `timeoutMs`.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const values = new SharedDynamicArray<number>("i16", { maxCapacity: 16 });
   * values.pushMany([1, 2, 3]);
   * assert.throws(() => values.pushMany([4, "5" as never]), TypeError);
   * assert.deepEqual(values.toArray(), [1, 2, 3]);
   * ```
   */
  pushMany(values: readonly FieldValueOf<T, "write">[]): number {
    if (!isArray(values)) {
      throw new TypeError(`Cannot push many as 'values' must be an array: current value is ${describe(values)}`);
    }
    // Staged in the buffer this array keeps: nothing below runs user code before the copy.
    const { bytes, count } = this.#codec.encodeMany(values, "push many to a SharedDynamicArray", this.#staging);
    const header = this.#header;
    const length = header.claimAppend(count);
    try {
      // The engine's own set, as memkit loaded it: a patched prototype method would run inside the lock.
      copyInto(this.#elementBytes, bytes, length * this.#stride);
      header.setLength(length + count);
      return length + count;
    } finally {
      header.unlock();
    }
  }

  /**
   * Replaces the element at `index`; readers see the old or the new one,
   * never a mix. `index` must be a number (no `valueOf` runs); the value is
   * checked before the lock is taken, the index against the length inside it.
   * @throws {TypeError} When `index` is not a number, or for a value of the wrong shape.
   * @throws {RangeError} For an index out of range, or a bad value.
   * @throws {AllocationError} "timeout" when the lock is held past `timeoutMs`.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const values = new SharedDynamicArray<number>("f32", { maxCapacity: 4 });
   * values.push(1);
   * values.set(0, 2);
   * assert.equal(values.get(0), 2);
   * assert.throws(() => values.set("0" as never, 3), TypeError);
   * assert.throws(() => values.set(1, 3), RangeError);
   * ```
   */
  set(index: number, value: FieldValueOf<T, "write">): void {
    const op = "set an element of";
    if (typeof index !== "number") throw indexTypeError(index, "SharedDynamicArray", op);
    if (!isInteger(index) || index < 0) throw indexRangeError(index, this.length, "SharedDynamicArray", op);
    const header = this.#header;
    try {
      this.#codec.store(value, new SetTarget(header, this.#elements, this.#elementBytes, index));
    } finally {
      if (header.holding) header.unlock();
    }
  }

  /**
   * Removes and returns the last element, or undefined when empty.
   * @throws {AllocationError} "timeout" when the lock is held past `timeoutMs`.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const values = new SharedDynamicArray<number>("f64", { maxCapacity: 4 });
   * values.push(1.5);
   * assert.equal(values.pop(), 1.5);
   * assert.equal(values.pop(), undefined);
   * ```
   */
  pop(): FieldValueOf<T> | undefined {
    const header = this.#header;
    let copy: ArrayBuffer | null = null;
    header.lockToChange();
    try {
      const length = header.lockedLength;
      if (length === 0) return undefined;
      header.setLength(length - 1);
      // No user code may run inside the lock: it could release a hold or write through another array, and
      // this unlock() would then free a lock it lost. Neither reader runs any (no inherited setter, no DataView
      // method looked up at call time); the DataView path, the slower one, decodes a copy once the lock is free.
      if (this.#elements !== null) return this.#codec.readViews(this.#elements, length - 1) as FieldValueOf<T>;
      copy = this.#copy(HEADER + (length - 1) * this.#stride, this.#stride);
    } finally {
      header.unlock();
    }
    return this.#codec.read(new RecordView(copy), 0) as FieldValueOf<T>;
  }

  /**
   * Removes every element (the buffer keeps its size: a SharedArrayBuffer cannot shrink).
   * @throws {AllocationError} "timeout" when the lock is held past `timeoutMs`.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const values = new SharedDynamicArray<number>("f64", { maxCapacity: 4 });
   * values.pushMany([1, 2]);
   * values.clear();
   * assert.equal(values.length, 0);
   * ```
   */
  clear(): void {
    const header = this.#header;
    header.lockToChange();
    try {
      header.setLength(0);
    } finally {
      header.unlock();
    }
  }

  /**
   * The element at `index` (a fresh object for records), as one write left it.
   * @throws {TypeError} When `index` is not a number.
   * @throws {RangeError} For an index out of range.
   * @throws {AllocationError} "timeout" when a write holds the array past `timeoutMs`.
   *
   * @example
   * ```ts
   * import { SharedDynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const Point = struct({ x: "f32", y: "f32" });
   * const points = new SharedDynamicArray<{ x: number; y: number }>(Point, { maxCapacity: 4 });
   * points.push({ x: 1, y: 2 });
   * assert.deepEqual(points.get(0), { x: 1, y: 2 });
   * assert.throws(() => points.get(0n as never), TypeError);
   * ```
   */
  get(index: number): FieldValueOf<T> {
    const op = "get an element of";
    if (typeof index !== "number") throw indexTypeError(index, "SharedDynamicArray", op);
    const header = this.#header;
    for (let spins = 0;; spins++) {
      const before = header.readBegin();
      if ((before & 1) === 0) {
        const length = header.length;
        const inRange = isInteger(index) && index >= 0 && index < length;
        const value = inRange ? this.#read(index) : undefined;
        if (header.readValid(before)) {
          if (!inRange) throw indexRangeError(index, length, "SharedDynamicArray", op);
          return value as FieldValueOf<T>;
        }
      }
      header.waitForWriter(spins, "read");
    }
  }

  /** Every element, as of one moment between writes. */
  toArray(): FieldValueOf<T>[] {
    let copy: ArrayBuffer;
    let length: number;
    const header = this.#header;
    for (let spins = 0;; spins++) {
      const before = header.readBegin();
      if ((before & 1) === 0) {
        length = header.length;
        // (Not slice(): a prototype method the program may have replaced, run between the two SEQ reads.)
        copy = this.#copy(HEADER, length * this.#stride);
        if (header.readValid(before)) break;
      }
      header.waitForWriter(spins, "read");
    }
    const views = this.#codec.viewsIn(copy, 0, length * this.#stride);
    // (arrayOf, not Array.from over `{ length }`: that asks Object.prototype for an iterator and for each index.)
    if (views !== null) return arrayOf(length, (i) => this.#codec.readViews(views, i) as FieldValueOf<T>);
    const view = new RecordView(copy);
    return arrayOf(length, (i) => this.#codec.read(view, i * this.#stride) as FieldValueOf<T>);
  }

  /** The elements of {@linkcode SharedDynamicArray.toArray}. */
  *[Symbol.iterator](): Iterator<FieldValueOf<T>> {
    // The copy's elements by index (its own iterator would be Array.prototype's, which a program may replace).
    const all = this.toArray();
    for (let i = 0; i < all.length; i++) yield all[i];
  }

  // A copy of `length` bytes of the buffer from byte `start`, in a fresh ArrayBuffer (with built-ins memkit
  // loaded with: this runs inside the lock, or between a reader's two SEQ reads).
  #copy(start: number, length: number): ArrayBuffer {
    const copy = new Builtin.ArrayBuffer(length);
    if (length !== 0) copyInto(new Builtin.Uint8Array(copy), new Builtin.Uint8Array(this.#buffer, start, length), 0);
    return copy;
  }

  #read(index: number): FieldValueOf<T> {
    if (this.#elements !== null) return this.#codec.readViews(this.#elements, index) as FieldValueOf<T>;
    return this.#codec.read(this.#view, HEADER + index * this.#stride) as FieldValueOf<T>;
  }
}
