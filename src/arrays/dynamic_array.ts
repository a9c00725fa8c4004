/**
 * Growable arrays of C-layout records (or scalars) in native memory.
 *
 * @module
 */
import { defaultBacking } from "../alloc/_default_backing.ts";
import { checkAlignment, checkSize, describe, parseOptions, typeCheck, z } from "../base/_validate.ts";
import type { Allocator, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { AllocationError } from "../base/errors.ts";
import { addressOf } from "../base/native_info.ts";
import { codecFor, type FieldValue, type RecordCodec, type Views } from "./_record_codec.ts";
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
  /** Elements stored. */
  count: number;
  /** Elements that fit without growing. */
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
    (v) => typeof v === "object" && v !== null && typeof (v as Allocator).alloc === "function",
    "must be an Allocator",
  ).optional(),
  capacity: z.number().int("must be an integer").min(0, "must be at least 0").max(2 ** 40, "must be at most 2^40")
    .optional(),
  alignment: z.number().optional(),
  growth: z.number().min(1.01, "must be above 1").max(16, "must be at most 16").optional(),
}).strict();

/**
 * The storage block of a live array, without making a view (for SIMDArray;
 * not public). With `forWrite`, a storage shared with a snapshot is copied
 * first, as every other change does.
 */
export let storageOf: (array: DynamicArray<unknown>, forWrite: boolean) => Uint8Array;

// Set by snapshot() around its constructor call, so the new array shares storage.
let pendingShare: DynamicArray<unknown> | null = null;

interface Storage {
  block: Uint8Array;
  refs: number;
}

/**
 * A growable array of records (a {@linkcode StructLayout}) or scalars in
 * native memory: amortized O(1) `push`, the bytes ready for FFI (`bytes`,
 * `address`) and for typed views. Growth goes through the allocator's
 * `resize` (so a FreeListAllocator can grow it in place); views taken
 * earlier are then detached or, after an in-place growth, still valid, but
 * never point at freed memory. `snapshot()` shares the storage until either
 * side changes it.
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
 */
export class DynamicArray<T = FieldValue | Record<string, FieldValue>> implements Disposable, Iterable<T> {
  readonly #type: StructLayout | FieldType;
  readonly #codec: RecordCodec;
  readonly #stride: number;
  readonly #allocator: Allocator;
  readonly #align: number;
  readonly #growth: number;
  #storage: Storage;
  #view!: DataView;
  // Typed arrays over the storage for the codec's generated reader and writer (null: the DataView path).
  #views: Views | null = null;
  #length = 0;
  #capacity: number;
  #allocations = 1;
  #reallocations = 0;
  #freed = false;

  /**
   * Creates an array and allocates room for `capacity` elements.
   *
   * @param type A StructLayout from `struct()`, or a field type (scalars give numbers, vector types arrays).
   * @param options Allocator, initial capacity, alignment, growth factor.
   * @throws {TypeError} For an unknown type or mistyped options.
   * @throws {RangeError} For out-of-range numbers.
   */
  constructor(type: StructLayout | FieldType, options: DynamicArrayOptions = {}) {
    const parsed = parseOptions(OptionsSchema, options, "create DynamicArray");
    this.#type = type;
    this.#codec = codecFor(type, "create DynamicArray");
    this.#stride = this.#codec.stride;
    this.#align = Math.max(16, this.#codec.align);
    if (parsed.alignment !== undefined) this.#align = checkAlignment(parsed.alignment, "create DynamicArray", 4096);
    this.#allocator = parsed.allocator ?? defaultBacking();
    this.#growth = parsed.growth ?? 2;
    this.#capacity = Math.max(1, parsed.capacity ?? 16);
    if (pendingShare !== null) {
      this.#storage = null!;
      this.#adopt(pendingShare);
      return;
    }
    const block = this.#allocator.alloc(this.#capacity * this.#stride, this.#align);
    this.#storage = { block, refs: 1 };
    this.#bind(block);
  }

  /** Elements stored. */
  get length(): number {
    return this.#length;
  }

  /** Elements that fit before the storage grows. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Bytes per element. */
  get stride(): number {
    return this.#stride;
  }

  /** The live elements' bytes (a view; it goes stale when the storage grows). */
  get bytes(): Uint8Array {
    this.#live();
    const block = this.#storage.block;
    return block.subarray(0, this.#length * this.#stride);
  }

  /** Address of the first element, for FFI. */
  get address(): number {
    this.#live();
    return addressOf(this.#storage.block);
  }

  /**
   * A typed view over the live elements' bytes (e.g. Float32Array over a SIMD array).
   * @throws {RangeError} When the bytes are not a whole number of `ctor` elements.
   */
  view<V extends TypedArray>(ctor: TypedArrayConstructor<V>): V {
    this.#live();
    const bytes = this.#length * this.#stride;
    if (bytes % ctor.BYTES_PER_ELEMENT !== 0) {
      throw new RangeError(`Cannot view ${bytes} bytes as ${ctor.name}: not a whole number of elements`);
    }
    const block = this.#storage.block;
    return new ctor(block.buffer as ArrayBuffer, block.byteOffset, bytes / ctor.BYTES_PER_ELEMENT);
  }

  /** Appends one element (amortized O(1)). */
  push(value: T): number {
    // Fast path: room left, storage not shared, a layout with a generated writer.
    const views = this.#views;
    if (views !== null && this.#length < this.#capacity && this.#storage.refs === 1 && !this.#freed) {
      this.#codec.writeViews(views, this.#length, value);
      return ++this.#length;
    }
    this.#mutable();
    if (this.#length === this.#capacity) this.#grow(this.#length + 1);
    this.#write(this.#length, value);
    return ++this.#length;
  }

  /**
   * Appends many elements: an array of values, or a typed array whose bytes
   * are whole elements (copied as they are).
   */
  pushMany(values: readonly T[] | ArrayBufferView): number {
    this.#mutable();
    if (ArrayBuffer.isView(values)) {
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      if (bytes.length % this.#stride !== 0) {
        throw new RangeError(`Cannot push ${bytes.length} bytes: not a whole number of ${this.#stride}-byte elements`);
      }
      const count = bytes.length / this.#stride;
      this.reserve(this.#length + count);
      this.#storage.block.set(bytes, this.#length * this.#stride);
      this.#length += count;
      return this.#length;
    }
    if (!Array.isArray(values)) {
      throw new TypeError(
        `Cannot push many as 'values' must be an array or a typed array: current value is ${describe(values)}`,
      );
    }
    this.reserve(this.#length + values.length);
    for (const value of values) this.push(value);
    return this.#length;
  }

  /** The element at `index` (a fresh object for records). */
  get(index: number): T {
    this.#index(index);
    return this.#read(index);
  }

  /** Replaces the element at `index`. */
  set(index: number, value: T): void {
    this.#index(index);
    this.#mutable();
    this.#write(index, value);
  }

  /** Removes and returns the element at `index`, keeping the order (O(n)). */
  remove(index: number): T {
    this.#index(index);
    this.#mutable();
    const value = this.#read(index);
    const block = this.#storage.block;
    block.copyWithin(index * this.#stride, (index + 1) * this.#stride, this.#length * this.#stride);
    this.#length--;
    return value;
  }

  /** Removes and returns the element at `index`, moving the last one into its place (O(1)). */
  swapRemove(index: number): T {
    this.#index(index);
    this.#mutable();
    const value = this.#read(index);
    const last = this.#length - 1;
    if (index !== last) {
      this.#storage.block.copyWithin(index * this.#stride, last * this.#stride, (last + 1) * this.#stride);
    }
    this.#length--;
    return value;
  }

  /** Removes and returns the last element, or undefined when empty. */
  pop(): T | undefined {
    if (this.#length === 0) return undefined;
    this.#mutable();
    return this.#read(--this.#length);
  }

  /** Makes room for at least `capacity` elements. */
  reserve(capacity: number): void {
    checkSize(capacity, "reserve", "capacity", 2 ** 40);
    this.#live();
    if (capacity > this.#capacity) this.#grow(capacity, true);
  }

  /** Shrinks the storage to the live elements (at least one). */
  compact(): void {
    this.#mutable();
    const capacity = Math.max(1, this.#length);
    if (capacity === this.#capacity) return;
    this.#resize(capacity);
  }

  /** Removes every element (the storage stays). */
  clear(): void {
    this.#mutable();
    this.#length = 0;
  }

  /** Counters. */
  metrics(): DynamicArrayMetrics {
    return {
      count: this.#length,
      capacity: this.#capacity,
      memoryUsage: this.#freed ? 0 : this.#capacity * this.#stride,
      utilization: this.#capacity ? this.#length / this.#capacity : 0,
      allocations: this.#allocations,
      reallocations: this.#reallocations,
    };
  }

  /**
   * A copy that shares the storage until either side changes (copy on write).
   * @returns A new DynamicArray with the same elements.
   */
  snapshot(): DynamicArray<T> {
    this.#live();
    pendingShare = this as DynamicArray<unknown>;
    try {
      return new DynamicArray<T>(this.#type, {
        allocator: this.#allocator,
        alignment: this.#align,
        growth: this.#growth,
      });
    } finally {
      pendingShare = null;
    }
  }

  // The constructor's share path for snapshot().
  #adopt(from: DynamicArray<unknown>): void {
    from.#storage.refs++;
    this.#storage = from.#storage;
    this.#bind(from.#storage.block);
    this.#length = from.#length;
    this.#capacity = from.#capacity;
    this.#allocations = 0;
  }

  /** The elements in order. */
  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.#length; i++) yield this.#read(i);
  }

  /** Returns the storage to the allocator (when no snapshot still shares it); the array is unusable afterwards. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    if (--this.#storage.refs === 0) this.#allocator.free(this.#storage.block);
  }

  /** Same as {@linkcode DynamicArray.free}, for `using`. */
  [Symbol.dispose](): void {
    this.free();
  }

  #live(): void {
    if (this.#freed) throw new AllocationError("use-after-free", "Cannot use a DynamicArray after free()");
  }

  // Before a change: take a private copy if a snapshot shares the storage.
  #mutable(): void {
    this.#live();
    if (this.#storage.refs === 1) return;
    const old = this.#storage;
    const block = this.#allocator.alloc(this.#capacity * this.#stride, this.#align);
    block.set(old.block.subarray(0, this.#length * this.#stride));
    old.refs--;
    this.#storage = { block, refs: 1 };
    this.#bind(block);
    this.#allocations++;
  }

  #index(index: number): void {
    this.#live();
    if (!Number.isInteger(index) || index < 0 || index >= this.#length) {
      throw new RangeError(`Index out of range: ${describe(index)} (length ${this.#length})`);
    }
  }

  #grow(needed: number, exact = false): void {
    const target = exact ? needed : Math.max(needed, Math.ceil(this.#capacity * this.#growth));
    this.#resize(target);
  }

  #resize(capacity: number): void {
    this.#mutable();
    const block = this.#allocator.resize(this.#storage.block, capacity * this.#stride);
    this.#storage.block = block;
    this.#bind(block);
    this.#capacity = capacity;
    this.#reallocations++;
  }

  // Views over new storage: the DataView, and the typed arrays of the generated code.
  #bind(block: Uint8Array): void {
    this.#view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    this.#views = this.#codec.viewsOf(block);
  }

  #read(index: number): T {
    const views = this.#views;
    if (views !== null) return this.#codec.readViews(views, index) as T;
    return this.#codec.read(this.#view, index * this.#stride) as T;
  }

  #write(index: number, value: T): void {
    const views = this.#views;
    if (views !== null) this.#codec.writeViews(views, index, value);
    else this.#codec.write(this.#view, this.#storage.block, index * this.#stride, value);
  }

  static {
    storageOf = (array, forWrite) => {
      if (forWrite) array.#mutable();
      else array.#live();
      return array.#storage.block;
    };
  }
}
