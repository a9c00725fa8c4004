/**
 * Growable arrays of C-layout records (or scalars) in native memory.
 *
 * @module
 */
import { defaultBacking } from "../alloc/_default_backing.ts";
import { type Lease, leaseBlock, type LeaseHolder } from "../alloc/_lease.ts";
import {
  checkAlignment,
  checkSize,
  checkTypedArrayConstructor,
  describe,
  parseOptions,
  typeCheck,
  z,
} from "../base/_validate.ts";
import type { Allocator, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { addressOf } from "../base/native_info.ts";
import {
  blockParts,
  bytesOfView,
  codecFor,
  type FieldValue,
  type RecordCodec,
  type Target,
  type Views,
} from "./_record_codec.ts";
import type { FieldType, StructLayout } from "./struct.ts";

/**
 * The scalar element types of a {@linkcode DynamicArray}.
 *
 * @example
 * ```ts
 * import { DynamicArray, type ScalarType } from "@memkit/memkit";
 *
 * const type: ScalarType = "f64";
 * using samples = new DynamicArray(type);
 * ```
 */
export type ScalarType = "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "f32" | "f64";

export type { FieldValue };

/**
 * Options of {@linkcode DynamicArray}.
 *
 * @example
 * ```ts
 * import { DynamicArray, type DynamicArrayOptions } from "@memkit/memkit";
 *
 * const options: DynamicArrayOptions = { capacity: 1024, growth: 1.5 };
 * using values = new DynamicArray("f32", options);
 * ```
 */
export interface DynamicArrayOptions {
  /** Where the storage comes from; growth uses its `resize`. @default {a shared SystemAllocator} */
  allocator?: Allocator;
  /** Elements to make room for at first. @default {16} */
  capacity?: number;
  /** Alignment of the storage. @default {the element's alignment, at least 16} */
  alignment?: number;
  /** Growth factor when full, above 1. @default {2} */
  growth?: number;
  /**
   * Store integers that do not fit their field as C converts them (truncated
   * toward zero, then wrapped modulo 2^bits: 300 in a `u8` is 44, NaN is 0)
   * instead of refusing them with a RangeError. Floats are never refused.
   * @default {false}
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using strict = new DynamicArray<number>("u8");
   * assert.throws(() => strict.push(300), RangeError);
   * using wrapping = new DynamicArray<number>("u8", { wrap: true });
   * wrapping.push(300);
   * assert.equal(wrapping.get(0), 44);
   * ```
   */
  wrap?: boolean;
}

/**
 * Counters of a {@linkcode DynamicArray}.
 *
 * @example
 * ```ts
 * import { DynamicArray, type DynamicArrayMetrics } from "@memkit/memkit";
 *
 * using values = new DynamicArray("u32");
 * values.push(1);
 * const m: DynamicArrayMetrics = values.metrics();
 * console.log(m.utilization);
 * ```
 */
export interface DynamicArrayMetrics {
  /** Elements stored (0 once the storage is gone). */
  count: number;
  /** Elements that fit without growing (0 once the storage is gone). */
  capacity: number;
  /** Bytes of storage held. */
  memoryUsage: number;
  /** count / capacity. */
  utilization: number;
  /** Storage allocations made. */
  allocations: number;
  /** Times the storage was resized. */
  reallocations: number;
}

const OptionsSchema = z.object({
  allocator: typeCheck<Allocator>(
    (v) =>
      typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function" &&
      typeof (v as Allocator).resize === "function" && typeof (v as Allocator).free === "function",
    "must be an Allocator (with alloc, resize and free)",
  ).optional(),
  capacity: z.number().int("must be an integer").min(0, "must be at least 0").max(2 ** 40, "must be at most 2^40")
    .optional(),
  alignment: z.number().optional(),
  growth: z.number().min(1.01, "must be above 1").max(16, "must be at most 16").optional(),
  wrap: z.boolean().optional(),
}).strict();

/** Most elements a DynamicArray holds. */
const MAX_CAPACITY = 2 ** 40;

const EMPTY = new Uint8Array(0);

// Why a storage is gone when the engine says so but no lease told us why.
const DETACHED =
  "the allocator detached its memory: a free through another view, an arena scope's end or reset, or the allocator's dispose";

/**
 * The storage block of a live array, one holder for every snapshot that
 * shares it: the allocator's view (`given`, handed back to free and resize),
 * memkit's own views over the same bytes, the share count and the lease.
 * `block` is EMPTY once the block is gone, so one length test tells.
 */
class Storage implements LeaseHolder {
  block: Uint8Array;
  given: Uint8Array;
  views: Views | null;
  view: DataView | null;
  refs = 1;
  lease: Lease | null = null;
  /** Why the block is gone (null while it lives, or when only the engine's detach told). */
  released: string | null;
  /** The cursors of the arrays that share this storage (so a revocation closes their fast path). */
  cursors: Cursor[] = [];

  constructor(given: Uint8Array, block: Uint8Array, views: Views | null, released: string | null = null) {
    this.given = given;
    this.block = block;
    this.views = views;
    this.view = views === null && block.length !== 0
      ? new DataView(block.buffer, block.byteOffset, block.length)
      : null;
    this.released = released;
  }

  /** The allocator released the block (DESIGN §2 rule 6): forget it, so every use finds it gone. */
  revoke(reason: string): void {
    this.released ??= reason;
    this.lease = null;
    this.block = EMPTY;
    this.given = EMPTY;
    this.views = null;
    this.view = null;
    for (const cursor of this.cursors) cursor.close();
  }
}

// Every array's storage after free(), and while its allocator works on it.
const FREED = new Storage(EMPTY, EMPTY, null, "free");
FREED.refs = 0;
const BUSY = new Storage(EMPTY, EMPTY, null, "busy");
BUSY.refs = 0;

/**
 * An array's length and the hot state of push(): the writer takes slot
 * `next` at once while it is below `limit` (the capacity, when the storage
 * is alive and this array's alone; else 0) and `bytes` is not detached, and
 * calls `claim()` otherwise. The array's length is `next`.
 */
class Cursor implements Target {
  next = 0;
  limit = 0;
  views: Views | null = null;
  bytes: Uint8Array = EMPTY;
  readonly array: DynamicArray<unknown>;
  constructor(array: DynamicArray<unknown>) {
    this.array = array;
  }
  claim(): number {
    return claimPush(this.array, this);
  }
  /** No more slots without claim(). */
  close(): void {
    this.limit = 0;
    this.views = null;
    this.bytes = EMPTY;
  }
}

/** Where set() writes: a slot checked again once the value is checked. */
class SetTarget implements Target {
  next = 0;
  limit = 0;
  views: Views | null = null;
  bytes: Uint8Array = EMPTY;
  readonly array: DynamicArray<unknown>;
  readonly index: number;
  constructor(array: DynamicArray<unknown>, index: number) {
    this.array = array;
    this.index = index;
  }
  claim(): number {
    return claimSet(this.array, this);
  }
}

let claimPush: (array: DynamicArray<unknown>, cursor: Cursor) => number;
let claimSet: (array: DynamicArray<unknown>, target: SetTarget) => number;

/**
 * Access to a DynamicArray's private state for SIMDArray (not public): the
 * live storage block (checked, and copied first when `forWrite` and a
 * snapshot shares it), the element count, and the name errors use.
 */
export const arrayInternals: {
  storageOf(array: DynamicArray<unknown>, forWrite: boolean, op: string): Uint8Array;
  lengthOf(array: DynamicArray<unknown>): number;
  rename(array: DynamicArray<unknown>, name: string): void;
} = {} as never;

// Set by snapshot() around its constructor call, so the new array shares storage.
let pendingShare: DynamicArray<unknown> | null = null;

/**
 * A growable array of records (a {@linkcode StructLayout}) or scalars in
 * native memory: amortized O(1) `push`, the bytes ready for FFI (`bytes`,
 * `address`) and for typed views. Growth goes through the allocator's
 * `resize` (so a FreeListAllocator can grow it in place); views taken
 * earlier are then detached or, after an in-place growth, still valid, but
 * never point at freed memory. `snapshot()` shares the storage until either
 * side changes it.
 *
 * Values are checked in full before anything is stored (each field read
 * once, so getters and Proxies run before memkit changes anything), and a
 * write that throws leaves the contents, length and counters as they were:
 * a record must have exactly the layout's fields (TypeError for a missing
 * or unknown one), vectors exactly their count of numbers (RangeError), and
 * integers must fit their type (RangeError, unless the `wrap` option asks for
 * C's conversion).
 *
 * The array knows when its storage is gone: after `free()`, and when its
 * allocator released the block (a scope's end, `reset()`, `dispose()`, a
 * `free` through another view); every method then throws
 * `AllocationError("use-after-free")` naming the array and why, and `length`
 * reads 0.
 *
 * @example
 * ```ts
 * import { DynamicArray, struct } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Vertex = struct({ position: "f32x3", color: "f32x4" });
 * using vertices = new DynamicArray<{ position: number[]; color: number[] }>(Vertex);
 * vertices.push({ position: [0, 1, 0], color: [1, 0, 0, 1] });
 * vertices.push({ position: [1, 0, 0], color: [0, 1, 0, 1] });
 * assert.deepEqual(vertices.get(1).position, [1, 0, 0]);
 * assert.equal(vertices.bytes.length, 64); // ready for a GPU buffer or an FFI call
 * ```
 *
 * @example Storage released by its arena
 * ```ts
 * import { AllocationError, Arena, DynamicArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const arena = new Arena();
 * let values: DynamicArray<number>;
 * {
 *   using _ = arena.scope();
 *   values = new DynamicArray<number>("f32", { allocator: arena });
 *   values.push(1);
 * } // the scope's end releases the storage
 * assert.equal(values.length, 0);
 * assert.throws(() => values.get(0), (e) => e instanceof AllocationError && e.category === "use-after-free");
 * ```
 */
export class DynamicArray<T = FieldValue | Record<string, FieldValue>> implements Disposable, Iterable<T> {
  readonly #type: StructLayout | FieldType;
  readonly #codec: RecordCodec;
  readonly #stride: number;
  readonly #allocator: Allocator;
  readonly #align: number;
  readonly #growth: number;
  readonly #wrap: boolean;
  // The length (`next`) and push's fast path; see Cursor.
  readonly #cursor: Cursor;
  #name = "DynamicArray";
  #storage: Storage;
  #capacity: number;
  #allocations = 1;
  #reallocations = 0;

  /**
   * Creates an array and allocates room for `capacity` elements.
   *
   * @param type A StructLayout from `struct()`, or a field type (scalars give numbers, vector types arrays).
   * @param options Allocator, initial capacity, alignment, growth factor, `wrap`.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers.
   * @throws {AllocationError} As the allocator's `alloc` does; "corruption" when it returns something unusable.
   *
   * @example
   * ```ts
   * import { DynamicArray, FreeListAllocator } from "@memkit/memkit";
   *
   * const heap = new FreeListAllocator({ capacity: 1 << 20 });
   * using ids = new DynamicArray<number>("u32", { allocator: heap, capacity: 1024, growth: 1.5 });
   * ids.push(7);
   * ```
   */
  constructor(type: StructLayout | FieldType, options: DynamicArrayOptions = {}) {
    // Taken at once: checking the options may run an allocator's getters, which may create arrays.
    const share = pendingShare;
    pendingShare = null;
    const parsed = parseOptions(OptionsSchema, options, "create DynamicArray");
    this.#type = type;
    this.#wrap = parsed.wrap ?? false;
    this.#codec = codecFor(type, "create DynamicArray", this.#wrap);
    this.#stride = this.#codec.stride;
    this.#align = Math.max(16, this.#codec.align);
    if (parsed.alignment !== undefined) this.#align = checkAlignment(parsed.alignment, "create DynamicArray", 4096);
    this.#allocator = parsed.allocator ?? defaultBacking();
    this.#growth = parsed.growth ?? 2;
    this.#capacity = Math.max(1, parsed.capacity ?? 16);
    this.#cursor = new Cursor(this as DynamicArray<unknown>);
    if (share !== null) {
      const from = share;
      const s = from.#use("take a snapshot of");
      s.refs++;
      this.#storage = s;
      this.#cursor.next = from.#cursor.next;
      this.#capacity = from.#capacity;
      this.#allocations = 0;
      this.#name = from.#name;
      this.#attach(s);
      from.#bind(); // shared now: its fast path closes
      return;
    }
    const size = this.#capacity * this.#stride;
    this.#storage = this.#adopt(this.#allocator.alloc(size, this.#align), size, "alloc");
    this.#attach(this.#storage);
  }

  /**
   * Elements stored; 0 once the storage is gone (after `free()`, or released by its allocator).
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const values = new DynamicArray<number>("f64");
   * values.push(1.5);
   * assert.equal(values.length, 1);
   * values.free();
   * assert.equal(values.length, 0);
   * ```
   */
  get length(): number {
    return this.#storage.block.length !== 0 ? this.#cursor.next : 0;
  }

  /**
   * Elements that fit before the storage grows; 0 once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32", { capacity: 100 });
   * assert.equal(values.capacity, 100);
   * ```
   */
  get capacity(): number {
    return this.#storage.block.length !== 0 ? this.#capacity : 0;
  }

  /**
   * Bytes per element.
   *
   * @example
   * ```ts
   * import { DynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using points = new DynamicArray(struct({ position: "f32x3", id: "u32" }));
   * assert.equal(points.stride, 32);
   * ```
   */
  get stride(): number {
    return this.#stride;
  }

  /**
   * The live elements' bytes: a view over the storage (it reads as length 0
   * once the storage moves or is released).
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("u16");
   * values.pushMany([1, 2]);
   * assert.deepEqual([...values.bytes], [1, 0, 2, 0]);
   * ```
   */
  get bytes(): Uint8Array {
    const s = this.#use("read the bytes of");
    return new Uint8Array(s.block.buffer, s.block.byteOffset, this.#cursor.next * this.#stride);
  }

  /**
   * Address of the first element, for FFI (valid until the storage grows).
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32");
   * assert.equal(values.address % 16, 0);
   * ```
   */
  get address(): number {
    const s = this.#use("take the address of");
    return addressOf(s.block);
  }

  /**
   * A view over the live elements' bytes: any typed array (e.g. a
   * Float32Array over a SIMD array), or a DataView.
   * @param ctor A typed array constructor, or `DataView`.
   * @throws {TypeError} For anything else (subclasses included).
   * @throws {RangeError} When the bytes are not a whole number of `ctor` elements.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using points = new DynamicArray(struct({ x: "f32", id: "u32" }));
   * points.push({ x: 1.5, id: 7 });
   * assert.deepEqual([...points.view(Float32Array)].slice(0, 1), [1.5]);
   * assert.equal(points.view(DataView).getUint32(4, true), 7);
   * ```
   */
  view<V extends TypedArray>(ctor: TypedArrayConstructor<V>): V;
  /**
   * A DataView over the live elements' bytes.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("u16");
   * values.push(513);
   * assert.equal(values.view(DataView).getUint8(1), 2);
   * ```
   */
  view(ctor: DataViewConstructor): DataView;
  view(ctor: unknown): unknown {
    const size = ctor === DataView ? 1 : checkTypedArrayConstructor(ctor, `view a ${this.#name}`);
    const s = this.#use("view");
    const bytes = this.#cursor.next * this.#stride;
    if (bytes % size !== 0) {
      throw new RangeError(
        `Cannot view ${bytes} bytes as ${(ctor as { name: string }).name}: not a whole number of ${size}-byte elements`,
      );
    }
    // Storage starts at a multiple of 8 in its buffer (checked when it was allocated), so any element size fits.
    if (ctor === DataView) return new DataView(s.block.buffer, s.block.byteOffset, bytes);
    return new (ctor as TypedArrayConstructor<TypedArray>)(
      s.block.buffer as ArrayBuffer,
      s.block.byteOffset,
      bytes / size,
    );
  }

  /**
   * Appends one element (amortized O(1)). The value is read and checked in
   * full first; if that throws, nothing changed.
   * @param value A record object with exactly the layout's fields, a number (a bigint for i64/u64), or an array of numbers for vector types.
   * @returns The new length.
   * @throws {TypeError} For a value of the wrong type, a missing or unknown field.
   * @throws {RangeError} For a vector of the wrong length, an integer that does not fit (without `wrap`).
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's errors when it must grow.
   *
   * @example
   * ```ts
   * import { DynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using items = new DynamicArray<{ id: number; pos: number[] }>(struct({ id: "u32", pos: "f32x3" }));
   * assert.equal(items.push({ id: 42, pos: [1, 2, 3] }), 1);
   * assert.throws(() => items.push({ id: 7, pos: [9, 9] }), RangeError); // 2 of 3 floats
   * assert.throws(() => items.push({ id: 7, pos: [9, 9, 9], extra: 1 } as never), TypeError); // not a field
   * assert.equal(items.length, 1);
   * ```
   */
  push(value: T): number {
    return this.#codec.store(value, this.#cursor) + 1;
  }

  /**
   * Appends many elements, all or none: an array of values (its length and
   * each element read once, every value checked before any is stored), or a
   * typed array or DataView whose bytes are whole elements (copied as they
   * are, also when they are this array's own bytes).
   * @returns The new length.
   * @throws {TypeError} When `values` is neither, or for a bad value (the message names its index).
   * @throws {RangeError} For bytes that are not whole elements, or a bad value.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's errors when it must grow.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("u8");
   * values.pushMany([1, 2, 3]);
   * assert.throws(() => values.pushMany([4, 300, 5]), RangeError); // 300 does not fit a u8
   * assert.equal(values.length, 3); // and 4 was not pushed either
   * values.pushMany(values.bytes); // its own bytes, copied first
   * assert.deepEqual([...values], [1, 2, 3, 1, 2, 3]);
   * ```
   */
  pushMany(values: readonly T[] | ArrayBufferView): number {
    const op = "push many to";
    const source = bytesOfView(values);
    if (source !== null) {
      const byteLength = source.length;
      if (byteLength % this.#stride !== 0) {
        throw new RangeError(
          `Cannot push ${byteLength} bytes to a ${this.#name}: not a whole number of ${this.#stride}-byte elements`,
        );
      }
      const s = this.#use(op);
      const count = byteLength / this.#stride;
      if (count === 0) return this.#cursor.next;
      // Bytes in this array's own buffer would move (or be detached) as it grows: copy them first.
      const data = source.buffer === s.block.buffer ? source.slice() : source;
      const target = this.#makeRoom(count, op);
      if (data.length !== byteLength) {
        throw new AllocationError("use-after-free", `Cannot ${op} a ${this.#name}: the source was released meanwhile`);
      }
      target.block.set(data, this.#cursor.next * this.#stride);
      return this.#cursor.next += count;
    }
    if (!Array.isArray(values)) {
      throw new TypeError(
        `Cannot push many to a ${this.#name} as 'values' must be an array, a typed array or a DataView: current value is ${
          describe(values)
        }`,
      );
    }
    const { bytes, count } = this.#codec.encodeMany(values, `push many to a ${this.#name}`);
    const s = this.#use(op);
    if (count === 0) return this.#cursor.next;
    const target = s.refs === 1 && this.#cursor.next + count <= this.#capacity ? s : this.#makeRoom(count, op);
    target.block.set(bytes, this.#cursor.next * this.#stride);
    return this.#cursor.next += count;
  }

  /**
   * The element at `index` (a fresh object for records, a fresh array for vectors).
   * @throws {TypeError} When `index` is not a number.
   * @throws {RangeError} When it is not an integer from 0 to length − 1.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("i32");
   * values.push(-5);
   * assert.equal(values.get(0), -5);
   * assert.throws(() => values.get(1), RangeError);
   * assert.throws(() => values.get("0" as never), TypeError);
   * ```
   */
  get(index: number): T {
    const s = this.#index(index, "get an element of");
    const views = s.views;
    return (views !== null
      ? this.#codec.readViews(views, index)
      : this.#codec.read(s.view!, index * this.#stride)) as T;
  }

  /**
   * Replaces the element at `index`, all or nothing: the value is read and
   * checked in full, then the index checked again (the value's getters may
   * have changed the array), then the element written.
   * @throws {TypeError} When `index` is not a number, or for a bad value.
   * @throws {RangeError} For an index out of range, or a bad value.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using items = new DynamicArray<{ id: number; pos: number[] }>(struct({ id: "u32", pos: "f32x3" }));
   * items.push({ id: 42, pos: [1, 2, 3] });
   * assert.throws(() => items.set(0, { id: 7, pos: [9, 9] }), RangeError);
   * assert.deepEqual(items.get(0), { id: 42, pos: [1, 2, 3] }); // untouched
   * items.set(0, { id: 7, pos: [9, 9, 9] });
   * ```
   */
  set(index: number, value: T): void {
    this.#index(index, "set an element of");
    this.#codec.store(value, new SetTarget(this as DynamicArray<unknown>, index));
  }

  /**
   * Removes and returns the element at `index`, keeping the order (O(n)).
   * @throws {TypeError} When `index` is not a number.
   * @throws {RangeError} For an index out of range.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("u32");
   * values.pushMany([1, 2, 3]);
   * assert.equal(values.remove(0), 1);
   * assert.deepEqual([...values], [2, 3]);
   * ```
   */
  remove(index: number): T {
    this.#index(index, "remove an element of");
    const s = this.#mutable();
    const value = this.#read(s, index);
    s.block.copyWithin(index * this.#stride, (index + 1) * this.#stride, this.#cursor.next * this.#stride);
    this.#cursor.next--;
    return value;
  }

  /**
   * Removes and returns the element at `index`, moving the last one into its place (O(1)).
   * @throws {TypeError} When `index` is not a number.
   * @throws {RangeError} For an index out of range.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("u32");
   * values.pushMany([1, 2, 3]);
   * assert.equal(values.swapRemove(0), 1);
   * assert.deepEqual([...values], [3, 2]);
   * ```
   */
  swapRemove(index: number): T {
    this.#index(index, "remove an element of");
    const s = this.#mutable();
    const value = this.#read(s, index);
    const last = this.#cursor.next - 1;
    if (index !== last) s.block.copyWithin(index * this.#stride, last * this.#stride, (last + 1) * this.#stride);
    this.#cursor.next--;
    return value;
  }

  /**
   * Removes and returns the last element, or undefined when empty.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32");
   * values.push(0.5);
   * assert.equal(values.pop(), 0.5);
   * assert.equal(values.pop(), undefined);
   * ```
   */
  pop(): T | undefined {
    this.#use("pop from");
    if (this.#cursor.next === 0) return undefined;
    const s = this.#mutable();
    return this.#read(s, --this.#cursor.next);
  }

  /**
   * Makes room for at least `capacity` elements (one resize).
   * @throws {TypeError} When `capacity` is not a number.
   * @throws {RangeError} When it is not an integer from 0 to 2^40.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's errors.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32");
   * values.reserve(1_000);
   * assert.equal(values.capacity, 1_000);
   * ```
   */
  reserve(capacity: number): void {
    checkSize(capacity, `reserve room in a ${this.#name}`, "capacity", MAX_CAPACITY);
    this.#use("reserve room in");
    if (capacity > this.#capacity) {
      this.#mutable();
      this.#resize(capacity);
    }
  }

  /**
   * Shrinks the storage to the live elements (at least one).
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's errors.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32", { capacity: 100 });
   * values.push(1);
   * values.compact();
   * assert.equal(values.capacity, 1);
   * ```
   */
  compact(): void {
    this.#use("compact");
    this.#mutable();
    const capacity = Math.max(1, this.#cursor.next);
    if (capacity !== this.#capacity) this.#resize(capacity);
  }

  /**
   * Removes every element (the storage stays).
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32");
   * values.pushMany([1, 2]);
   * values.clear();
   * assert.equal(values.length, 0);
   * ```
   */
  clear(): void {
    this.#use("clear");
    this.#mutable();
    this.#cursor.next = 0;
  }

  /**
   * Counters; `count`, `capacity`, `memoryUsage` and `utilization` are 0 once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32", { capacity: 4 });
   * values.pushMany([1, 2, 3, 4, 5]);
   * const m = values.metrics();
   * assert.equal(m.count, 5);
   * assert.equal(m.reallocations, 1);
   * ```
   */
  metrics(): DynamicArrayMetrics {
    const alive = this.#storage.block.length !== 0;
    return {
      count: alive ? this.#cursor.next : 0,
      capacity: alive ? this.#capacity : 0,
      memoryUsage: alive ? this.#capacity * this.#stride : 0,
      utilization: alive ? this.#cursor.next / this.#capacity : 0,
      allocations: this.#allocations,
      reallocations: this.#reallocations,
    };
  }

  /**
   * A copy that shares the storage until either side changes (copy on
   * write). It shares the storage's fate too: when the allocator releases
   * it, both arrays are gone.
   * @returns A new DynamicArray with the same elements.
   * @throws {AllocationError} "use-after-free" once the storage is gone.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("f32");
   * values.push(1);
   * using before = values.snapshot();
   * values.push(2);
   * assert.deepEqual([...before], [1]);
   * ```
   */
  snapshot(): DynamicArray<T> {
    this.#use("take a snapshot of");
    pendingShare = this as DynamicArray<unknown>;
    try {
      return new DynamicArray<T>(this.#type, {
        allocator: this.#allocator,
        alignment: this.#align,
        growth: this.#growth,
        wrap: this.#wrap,
      });
    } finally {
      pendingShare = null;
    }
  }

  /**
   * The elements in order. Each step checks the storage: an iteration that
   * outlives it stops with `AllocationError("use-after-free")`.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using values = new DynamicArray<number>("u8");
   * values.pushMany([1, 2]);
   * assert.deepEqual([...values], [1, 2]);
   * ```
   */
  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0;; i++) {
      const s = this.#use("iterate over");
      if (i >= this.#cursor.next) return;
      yield this.#read(s, i);
    }
  }

  /**
   * Returns the storage to the allocator (when no snapshot still shares it);
   * the array is unusable afterwards. A second call, or a call after the
   * allocator released the storage itself, does nothing.
   * @throws {AllocationError} What the allocator's `free` throws.
   *
   * @example
   * ```ts
   * import { AllocationError, DynamicArray } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const values = new DynamicArray<number>("f32");
   * values.free();
   * values.free();
   * assert.throws(() => values.push(1), (e) => e instanceof AllocationError && e.category === "use-after-free");
   * ```
   */
  free(): void {
    const s = this.#storage;
    if (s === FREED) return;
    if (s === BUSY) throw this.#gone(s, "free");
    this.#storage = FREED;
    this.#detach(s);
    if (--s.refs !== 0) return;
    const lease = s.lease;
    s.lease = null;
    lease?.end();
    if (s.block.length === 0) return; // the allocator released it already: nothing to give back
    const given = s.given;
    s.revoke("free");
    this.#allocator.free(given);
  }

  /**
   * Same as {@linkcode DynamicArray.free}, for `using`.
   *
   * @example
   * ```ts
   * import { DynamicArray } from "@memkit/memkit";
   *
   * {
   *   using values = new DynamicArray<number>("f32");
   *   values.push(1);
   * } // freed here
   * ```
   */
  [Symbol.dispose](): void {
    this.free();
  }

  // ---------------------------------------------------------------- internals

  // This array now holds `s` (its cursor follows it).
  #attach(s: Storage): void {
    s.cursors.push(this.#cursor);
    this.#bind();
  }

  // This array no longer holds `s`.
  #detach(s: Storage): void {
    const at = s.cursors.indexOf(this.#cursor);
    if (at >= 0) s.cursors.splice(at, 1);
    this.#cursor.close();
  }

  // The cursor over the current storage: push's fast path is open while the storage is alive and not shared.
  #bind(): void {
    const s = this.#storage, cursor = this.#cursor;
    const open = s.refs === 1 && s.block.length !== 0;
    cursor.views = open ? s.views : null;
    cursor.bytes = open ? s.block : EMPTY;
    cursor.limit = open ? this.#capacity : 0;
  }

  // The live storage, or the error that says why there is none.
  #use(op: string): Storage {
    const s = this.#storage;
    if (s.block.length === 0) throw this.#gone(s, op);
    return s;
  }

  #gone(s: Storage, op: string): AllocationError {
    if (s === BUSY) {
      return new AllocationError(
        "unsupported",
        `Cannot ${op} a ${this.#name} while its allocator is allocating or resizing its storage (a call from inside it)`,
      );
    }
    if (s === FREED) {
      return new AllocationError("use-after-free", `Cannot ${op} a ${this.#name} after its free()`);
    }
    if (s.released === null) {
      // Only the engine told: the buffer is detached. Remember it (and stop leasing a block that is gone).
      s.lease?.end();
      s.revoke(DETACHED);
    }
    return new AllocationError(
      "use-after-free",
      `Cannot ${op} a ${this.#name}: its storage was released (${s.released})`,
    );
  }

  // `index` checked against the live storage: TypeError for a non-number, RangeError out of range.
  #index(index: number, op: string): Storage {
    if (typeof index !== "number") {
      throw new TypeError(
        `Cannot ${op} a ${this.#name} as 'index' must be a number: current value is ${describe(index)}`,
      );
    }
    const s = this.#use(op);
    if (!(index >= 0 && index < this.#cursor.next && Number.isInteger(index))) {
      throw new RangeError(
        `Cannot ${op} a ${this.#name} as 'index' must be an integer ${
          this.#cursor.next === 0 ? "but the array is empty" : `from 0 to ${this.#cursor.next - 1}`
        }: current value is ${describe(index)}`,
      );
    }
    return s;
  }

  #read(s: Storage, index: number): T {
    const views = s.views;
    return (views !== null
      ? this.#codec.readViews(views, index)
      : this.#codec.read(s.view!, index * this.#stride)) as T;
  }

  // What the allocator returned, checked (DESIGN §2 rule 4), as storage with memkit's own views, leased.
  #adopt(given: unknown, size: number, call: string): Storage {
    const parts = blockParts(given, size);
    if (typeof parts === "string") {
      throw new AllocationError(
        "corruption",
        `Cannot use what ${this.#allocatorName()}.${call}() returned for a ${this.#name}'s ${size}-byte storage: ${parts}`,
      );
    }
    const block = new Uint8Array(parts[0] as ArrayBuffer, parts[1], parts[2]);
    const storage = new Storage(given as Uint8Array, block, this.#codec.viewsOf(block));
    storage.lease = leaseBlock(this.#allocator, block, storage);
    return storage;
  }

  #allocatorName(): string {
    const kind = (this.#allocator as { kind?: unknown }).kind;
    return typeof kind === "string" ? `the ${kind} allocator` : "its allocator";
  }

  // Storage of this array alone (a snapshot's share is copied first); the caller checked it is live.
  #mutable(): Storage {
    const old = this.#storage;
    if (old.refs === 1) return old;
    const size = this.#capacity * this.#stride;
    this.#storage = BUSY;
    this.#cursor.close();
    let next: Storage;
    try {
      next = this.#adopt(this.#allocator.alloc(size, this.#align), size, "alloc");
    } catch (error) {
      this.#storage = old;
      this.#bind();
      throw error;
    }
    if (old.block.length === 0) {
      // The shared block went away while the allocator ran: give the new one back.
      next.lease?.end();
      this.#storage = old;
      this.#allocator.free(next.given);
      throw this.#gone(old, "copy");
    }
    next.block.set(old.block.subarray(0, this.#cursor.next * this.#stride));
    old.refs--;
    this.#detach(old);
    this.#storage = next;
    this.#attach(next);
    this.#allocations++;
    return next;
  }

  // Live storage of this array alone with room for `count` more elements.
  #makeRoom(count: number, op: string): Storage {
    this.#use(op);
    this.#mutable();
    const needed = this.#cursor.next + count;
    if (needed > this.#capacity) {
      if (needed > MAX_CAPACITY) {
        throw new RangeError(`Cannot ${op} a ${this.#name}: ${needed} elements is more than 2^40`);
      }
      this.#resize(Math.min(MAX_CAPACITY, Math.max(needed, Math.ceil(this.#capacity * this.#growth))));
    }
    return this.#storage;
  }

  // Resizes this array's own live storage (refs 1) to `capacity` elements through the allocator.
  #resize(capacity: number): void {
    const old = this.#storage;
    const size = capacity * this.#stride;
    // The array's own resize must not revoke its own lease.
    old.lease?.end();
    old.lease = null;
    this.#storage = BUSY;
    this.#cursor.close();
    let given: unknown;
    try {
      given = this.#allocator.resize(old.given, size);
    } catch (error) {
      this.#storage = old; // the allocator failed and kept the block as it was
      old.lease = leaseBlock(this.#allocator, old.block, old);
      this.#bind();
      throw error;
    }
    let next: Storage;
    try {
      next = this.#adopt(given, size, "resize");
    } catch (error) {
      this.#storage = old;
      old.revoke("its allocator's resize() returned an unusable block");
      throw error;
    }
    this.#detach(old);
    this.#storage = next;
    this.#capacity = capacity;
    this.#attach(next);
    this.#reallocations++;
  }

  static {
    // push's slow path: the storage is gone, shared, full or detached (the writer checked `limit` and `bytes`).
    claimPush = (array, cursor) => {
      array.#makeRoom(1, "push to");
      array.#bind();
      return cursor.next++;
    };
    claimSet = (array, target) => {
      array.#index(target.index, "set an element of");
      const s = array.#mutable();
      target.views = s.views;
      target.bytes = s.block;
      return target.index;
    };
    arrayInternals.storageOf = (array, forWrite, op) => {
      array.#use(op);
      return (forWrite ? array.#mutable() : array.#storage).block;
    };
    arrayInternals.lengthOf = (array) => array.#cursor.next;
    arrayInternals.rename = (array, name) => {
      array.#name = name;
    };
  }
}
