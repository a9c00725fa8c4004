/**
 * Growable arrays of C-layout records (or scalars) in native memory.
 *
 * @module
 */
import { defaultBacking } from "../alloc/_default_backing.ts";
import { checkAlignment, checkSize, describe, parseOptions, typeCheck, z } from "../base/_validate.ts";
import type { Allocator, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { addressOf } from "../base/native_info.ts";
import { ArrayStore, MAX_CAPACITY, SetTarget } from "./_array_storage.ts";
import type { Storage } from "./_storage_block.ts";
import { bytesOfView } from "./_intrinsic_views.ts";
import { arrayOf } from "./_plain_values.ts";
import { isArray, max, moveWithin } from "./_builtins.ts";
import { codecFor, type FieldValue, type RecordCodec } from "./_record_codec.ts";
import type { DynamicArrayMetrics, DynamicArrayOptions } from "./dynamic_array_types.ts";
import type { FieldType, FieldValueOf, StructLayout } from "./struct.ts";

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
  growth: z.number().min(1.01, "must be at least 1.01").max(16, "must be at most 16").optional(),
  wrap: z.boolean().optional(),
}).strict();

/**
 * Access to a DynamicArray's private state for SIMDArray and the GPU family
 * (not public): the live storage block (checked, and copied first when
 * `forWrite` and a snapshot shares it), the element count, and the name
 * errors use; the live elements' bytes and the stride as `bytes` and
 * `stride` give them, whatever a subclass puts in their place.
 */
export const arrayInternals: {
  /** Whether `value` is a DynamicArray (a real one: its private state is there). */
  isArray(value: unknown): value is DynamicArray<unknown>;
  bytesOf(array: DynamicArray<unknown>, op: string): Uint8Array;
  strideOf(array: DynamicArray<unknown>): number;
  storageOf(array: DynamicArray<unknown>, forWrite: boolean, op: string): Uint8Array;
  lengthOf(array: DynamicArray<unknown>): number;
  /**
   * Names the array the DynamicArray constructor makes next for `target`
   * (the subclass constructor's `new.target`), as its errors say it: a
   * subclass's constructor calls it just before `super()`, so its option
   * errors and its allocator's refusals there name it too.
   */
  nameNext(name: string, target: unknown): void;
  /** What `make` creates (given the options of `array`) shares the storage of `array`: a snapshot. */
  snapshotOf<A>(array: DynamicArray<unknown>, make: (options: DynamicArrayOptions) => A): A;
} = {} as never;

// Set by snapshot() around its constructor call, so the new array shares storage.
let pendingShare: DynamicArray<unknown> | null = null;
// Set by a subclass's constructor just before super() (see nameNext), taken by the constructor it calls. With its
// new.target: a Proxy given as new.target runs code between the two (its "prototype" is read there), which may
// make other arrays; those are not what was named.
let pendingName: { name: string; target: unknown } | null = null;

/**
 * A growable array of records (a {@linkcode StructLayout}) or scalars in
 * native memory: amortized O(1) `push`, the bytes ready for FFI (`bytes`,
 * `address`) and for typed views. Growth goes through the allocator's
 * `resize` (so a FreeListAllocator can grow it in place); views taken
 * earlier are then detached (they read as length 0; also when the allocator
 * fails to grow it, since they are detached before the allocator runs).
 * `snapshot()` shares the storage until either side changes it.
 *
 * Every view it hands out (`bytes`, `view()`) is over an ArrayBuffer of the
 * array's own over its storage (made the first time one is asked for), which
 * is detached whenever the storage goes away or moves: the array's
 * `free()`, a growth, or its allocator releasing the memory (a scope's end,
 * `reset()`, a stack's `rewind()`), so no view ever reads or writes memory
 * that is no longer the array's. A view may write, so asking for one first
 * gives the array storage of its own if a snapshot shares it, and a
 * snapshot of an array that handed out views (or its `address`) copies at
 * once. A view's buffer belongs to memkit: an array whose buffer someone
 * detached (`bytes.buffer.transfer()`) never gives that memory back, and
 * its `free()` or growth throws `AllocationError("corruption")`. (With an
 * allocator that is not memkit's, views are over that allocator's own
 * buffer, and only its own detach retires them.)
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
 * When its allocator refuses to make, grow, shrink or copy its storage, the
 * error names the array's operation ("Cannot push to a DynamicArray: its
 * StackAllocator cannot grow its storage from 32 to 64 bytes in place (…)",
 * then what to do when memkit knows), keeps the allocator's category (a
 * RangeError, a size the allocator never serves, is "out-of-memory"), and has
 * the allocator's error as its `cause`; the array is left as it was.
 *
 * `T` is the element type, or the field type it comes from: reads (`get`,
 * `pop`, iteration) give {@linkcode FieldValueOf}`<T>` and writes (`push`,
 * `set`) take `FieldValueOf<T, "write">`. Without a type argument it is
 * inferred: `new DynamicArray(layout)` reads and takes the layout's records
 * ({@linkcode RecordOf}), `new DynamicArray("u64")` is a
 * `DynamicArray<"u64">` (the same type as a `DynamicArray<bigint>`) that
 * reads bigints and takes integer numbers too, `new DynamicArray("f32x3")`
 * reads and takes tuples of 3 numbers. A type argument (`DynamicArray<number>`)
 * is taken as the element type, a bigint in it also taking integer numbers.
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
export class DynamicArray<T = FieldValue | Record<string, FieldValue>>
  implements Disposable, Iterable<FieldValueOf<T>> {
  // (Not typed with T: a DynamicArray<"u64"> and a DynamicArray<bigint> are the same type, which a private
  // field typed with T would tell apart.)
  readonly #type: StructLayout<unknown> | FieldType;
  readonly #codec: RecordCodec;
  readonly #stride: number;
  readonly #wrap: boolean;
  // The storage, its capacity and counters, the name errors use, and the
  // length (`next`) with push's fast path: the Target push() writes to.
  readonly #store: ArrayStore;

  /**
   * Creates an array of a field type and allocates room for `capacity`
   * elements; without a type argument, the element type is inferred from
   * `type` ({@linkcode FieldValueOf}): numbers for numeric scalars, bigints
   * for `i64`/`u64` (which take integer numbers too), booleans for `bool`,
   * tuples of the type's length for vector types.
   *
   * @param type A field type.
   * @param options Allocator, initial capacity, alignment, growth factor, `wrap`.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers.
   * @throws {AllocationError} As the allocator's `alloc` does; "corruption" when it returns something unusable.
   *
   * @example
   * ```ts
   * import { DynamicArray, FreeListAllocator } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * const heap = new FreeListAllocator({ capacity: 1 << 20 });
   * using ids = new DynamicArray("u64", { allocator: heap, capacity: 1024, growth: 1.5 });
   * ids.push(7); // an integer number, or a bigint
   * const first: bigint = ids.get(0);
   * assert.equal(first, 7n);
   * using uvs = new DynamicArray("f32x2");
   * uvs.push([0.5, 1]);
   * const [u, v] = uvs.get(0); // a [number, number]
   * assert.equal(u + v, 1.5);
   * ```
   */
  constructor(type: T & FieldType, options?: DynamicArrayOptions);
  /**
   * Creates an array of a layout's records (their type inferred from the
   * layout, see {@linkcode RecordOf}), or of a field type with the element
   * type given as the type argument, and allocates room for `capacity`
   * elements.
   *
   * @param type A StructLayout from `struct()`, or a field type.
   * @param options Allocator, initial capacity, alignment, growth factor, `wrap`.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers.
   * @throws {AllocationError} As the allocator's `alloc` does; "corruption" when it returns something unusable.
   *
   * @example
   * ```ts
   * import { DynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using events = new DynamicArray(struct({ id: "u64", at: "f64" }), { capacity: 1024 });
   * events.push({ id: 1, at: 0.5 }); // id: an integer number or a bigint
   * assert.equal(events.get(0).id, 1n); // a bigint
   * using levels = new DynamicArray<number>("u8");
   * levels.push(200);
   * ```
   */
  constructor(type: StructLayout<T> | FieldType, options?: DynamicArrayOptions);
  constructor(type: StructLayout<T> | FieldType, options?: DynamicArrayOptions) {
    if (options === undefined) options = {};
    // Taken at once: checking the options may run an allocator's getters, which may create arrays.
    const share = pendingShare;
    pendingShare = null;
    // The class being made (a subclass names itself before calling super()), so every error from here on
    // names it; a string fixed here, so no operation pays for it later.
    let name = "DynamicArray";
    if (pendingName !== null && pendingName.target === new.target) {
      name = pendingName.name;
      pendingName = null;
    }
    this.#type = type;
    if (share !== null) {
      // A snapshot: the options are the source's own (checked when it was made), taken as they are, so no
      // schema runs (its code calls built-ins a program may have replaced since memkit loaded).
      const source = share.#store;
      this.#wrap = share.#wrap;
      this.#codec = share.#codec;
      this.#stride = this.#codec.stride;
      this.#store = new ArrayStore(name, this.#codec, source.allocator, source.align, source.growth, 1, source);
      return;
    }
    const parsed = parseOptions(OptionsSchema, options, `create ${name}`);
    this.#wrap = parsed.wrap ?? false;
    this.#codec = codecFor(type, `create ${name}`, this.#wrap);
    this.#stride = this.#codec.stride;
    let align = max(16, this.#codec.align);
    if (parsed.alignment !== undefined) {
      align = checkAlignment(parsed.alignment, `create ${name}`, 4096, 16, "alignment");
    }
    this.#store = new ArrayStore(
      name,
      this.#codec,
      parsed.allocator ?? defaultBacking(),
      align,
      parsed.growth ?? 2,
      max(1, parsed.capacity ?? 16),
      null,
    );
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
    return this.#store.alive ? this.#store.next : 0;
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
    return this.#store.alive ? this.#store.capacity : 0;
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
   * once the storage moves or is released). The storage is first made this
   * array's alone when a snapshot shares it (a view may write).
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when a snapshot's share must be copied (see the class).
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
  get bytes(): Uint8Array<ArrayBuffer> {
    return this.#store.userBytes("read the bytes of");
  }

  /**
   * Address of the first element, for FFI (valid until the storage grows).
   * Native code may write there, so, as for `bytes`, a storage a snapshot
   * shares is first copied.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when a snapshot's share must be copied (see the class).
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
    this.#store.use("take the address of");
    const s = this.#store.mutable("take the address of");
    s.exposed = true;
    return addressOf(s.block);
  }

  /**
   * A view over the live elements' bytes: any typed array (e.g. a
   * Float32Array over a SIMD array), or a DataView. Like `bytes`, it reads
   * as length 0 once the storage moves or is released, and a storage a
   * snapshot shares is first copied.
   * @param ctor A typed array constructor, or `DataView`.
   * @throws {TypeError} For anything else (subclasses included).
   * @throws {RangeError} When the bytes are not a whole number of `ctor` elements.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when a snapshot's share must be copied (see the class).
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
    return this.#store.view(ctor);
  }

  /**
   * Appends one element (amortized O(1)). The value is read and checked in
   * full first; if that throws, nothing changed.
   * @param value A record object with exactly the layout's fields (own or inherited enumerable keys: any other key
   *   is refused), a number (for i64/u64 an integer number or a bigint; read back as a bigint), or an array of
   *   numbers for vector types.
   * @returns The new length.
   * @throws {TypeError} For a value of the wrong type, a missing or unknown field.
   * @throws {RangeError} For a vector of the wrong length, an integer that does not fit (without `wrap`).
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when it must grow (see the class).
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
  push(value: FieldValueOf<T, "write">): number {
    return this.#codec.store(value, this.#store) + 1;
  }

  /**
   * Appends many elements, all or none: an array of values (its length and
   * each element read once, every value checked before any is stored), or a
   * typed array or DataView whose bytes are whole elements (copied as they
   * are, also when they are this array's own bytes).
   * @returns The new length.
   * @throws {TypeError} When `values` is neither, or for a bad value (the message names its index).
   * @throws {RangeError} For bytes that are not whole elements, or a bad value.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when it must grow (see the class).
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
  pushMany(values: readonly FieldValueOf<T, "write">[] | ArrayBufferView): number {
    const source = bytesOfView(values);
    if (source !== null) return this.#store.appendBytes(source, "push many to");
    if (!isArray(values)) {
      throw new TypeError(
        `Cannot push many to a ${this.#store.name} as 'values' must be an array, a typed array or a DataView: current value is ${
          describe(values)
        }`,
      );
    }
    const { bytes, count } = this.#codec.encodeMany(values, `push many to a ${this.#store.name}`);
    return this.#store.append(bytes, count, "push many to");
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
  get(index: number): FieldValueOf<T> {
    const views = this.#store.viewsAt(index, "get an element of");
    return (views !== null
      ? this.#codec.readViews(views, index)
      : this.#codec.read(this.#store.storage.view!, index * this.#stride)) as FieldValueOf<T>;
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
  set(index: number, value: FieldValueOf<T, "write">): void {
    this.#store.at(index, "set an element of");
    this.#codec.store(value, new SetTarget(this.#store, index));
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
  remove(index: number): FieldValueOf<T> {
    this.#store.at(index, "remove an element of");
    const s = this.#store.mutable("remove an element of");
    const value = this.#read(s, index);
    moveWithin(s.block, index * this.#stride, (index + 1) * this.#stride, this.#store.next * this.#stride);
    this.#store.next--;
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
  swapRemove(index: number): FieldValueOf<T> {
    this.#store.at(index, "remove an element of");
    const s = this.#store.mutable("remove an element of");
    const value = this.#read(s, index);
    const last = this.#store.next - 1;
    if (index !== last) {
      moveWithin(s.block, index * this.#stride, last * this.#stride, (last + 1) * this.#stride);
    }
    this.#store.next--;
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
  pop(): FieldValueOf<T> | undefined {
    this.#store.use("pop from");
    if (this.#store.next === 0) return undefined;
    const s = this.#store.mutable("pop from");
    return this.#read(s, --this.#store.next);
  }

  /**
   * Makes room for at least `capacity` elements (one resize).
   * @throws {TypeError} When `capacity` is not a number.
   * @throws {RangeError} When it is not an integer from 0 to 2^40.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals (see the class).
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
    checkSize(capacity, `reserve room in a ${this.#store.name}`, "capacity", MAX_CAPACITY);
    this.#store.use("reserve room in");
    if (capacity > this.#store.capacity) {
      this.#store.mutable("reserve room in");
      this.#store.resize(capacity, "reserve room in");
    }
  }

  /**
   * Shrinks the storage to the live elements (at least one).
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals (see the class).
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
    this.#store.use("compact");
    this.#store.mutable("compact");
    const capacity = max(1, this.#store.next);
    if (capacity !== this.#store.capacity) this.#store.resize(capacity, "compact");
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
    this.#store.use("clear");
    this.#store.mutable("clear");
    this.#store.next = 0;
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
    const store = this.#store, alive = store.alive;
    return {
      count: alive ? this.#store.next : 0,
      capacity: alive ? store.capacity : 0,
      memoryUsage: alive ? store.capacity * this.#stride : 0,
      utilization: alive ? this.#store.next / store.capacity : 0,
      allocations: store.allocations,
      reallocations: store.reallocations,
    };
  }

  /**
   * A copy that shares the storage until either side changes (copy on
   * write). It shares the storage's fate too: when the allocator releases
   * it, both arrays are gone. An array that handed out views or its
   * `address` (which may write at any time) is copied at once instead.
   * @returns A new DynamicArray with the same elements.
   * @throws {AllocationError} "use-after-free" once the storage is gone; the allocator's refusals when it copies (see the class).
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
    return arrayInternals.snapshotOf(
      this as DynamicArray<unknown>,
      (options) => new DynamicArray<T>(this.#type as StructLayout<T> | FieldType, options),
    );
  }

  /**
   * The elements copied out into a JavaScript array (numbers, tuples or
   * records), like `[...array]` in one step.
   * @throws {AllocationError} "use-after-free" after `free()`.
   *
   * @example
   * ```ts
   * import { DynamicArray, struct } from "@memkit/memkit";
   * import assert from "node:assert/strict";
   *
   * using points = new DynamicArray(struct({ x: "f32", y: "f32" }));
   * points.push({ x: 1, y: 2 });
   * assert.deepEqual(points.toArray(), [{ x: 1, y: 2 }]);
   * ```
   */
  toArray(): FieldValueOf<T>[] {
    const s = this.#store.use("copy out");
    // arrayOf, not assignments into `new Array(length)`: an index setter a program put on Array.prototype
    // would run between two reads (and could free the storage being read).
    return arrayOf(this.#store.next, (i) => this.#read(s, i));
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
  *[Symbol.iterator](): Iterator<FieldValueOf<T>> {
    for (let i = 0;; i++) {
      const s = this.#store.use("iterate over");
      if (i >= this.#store.next) return;
      yield this.#read(s, i);
    }
  }

  /**
   * Returns the storage to the allocator (when no snapshot still shares it);
   * the array is unusable afterwards, and every view it handed out reads as
   * length 0. A second call, or a call after the allocator released the
   * storage itself, does nothing.
   * @throws {AllocationError} What the allocator's `free` throws (when the allocator still owns the block,
   *   `owns()`, the array keeps its storage and elements and a later `free()` tries again, views taken before
   *   reading as length 0; else the array is freed); "corruption" (and the array keeps its storage) when the buffer behind its views was detached outside memkit (`bytes.buffer.transfer()`): that memory is never given back.
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
    this.#store.free();
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

  #read(s: Storage, index: number): FieldValueOf<T> {
    const views = s.views;
    return (views !== null
      ? this.#codec.readViews(views, index)
      : this.#codec.read(s.view!, index * this.#stride)) as FieldValueOf<T>;
  }

  static {
    arrayInternals.isArray = (value): value is DynamicArray<unknown> =>
      typeof value === "object" && value !== null && #store in value;
    arrayInternals.bytesOf = (array, op) => array.#store.userBytes(op);
    arrayInternals.strideOf = (array) => array.#stride;
    arrayInternals.storageOf = (array, forWrite, op) => {
      const store = array.#store;
      store.use(op);
      return (forWrite ? store.mutable(op) : store.storage).block;
    };
    arrayInternals.lengthOf = (array) => array.#store.next;
    arrayInternals.nameNext = (name, target) => {
      pendingName = { name, target };
    };
    arrayInternals.snapshotOf = (array, make) => {
      const store = array.#store;
      store.use("take a snapshot of");
      pendingShare = array;
      try {
        return make({ allocator: store.allocator, alignment: store.align, growth: store.growth, wrap: array.#wrap });
      } finally {
        pendingShare = null;
      }
    };
  }
}
