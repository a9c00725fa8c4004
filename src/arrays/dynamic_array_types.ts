/**
 * The public types of a {@linkcode DynamicArray}: its scalar element types,
 * the values of its fields, its options and its counters.
 *
 * @module
 */
import type { Allocator } from "../base/allocator.ts";

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

export type { FieldValue } from "./_record_codec.ts";

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
  /**
   * Alignment of the storage: a power of two from 1 to 4096 (the allocator is asked for at least 8, as
   * every element type's views need). @default {the element's alignment, at least 16}
   */
  alignment?: number;
  /** Growth factor when full, from 1.01 to 16. @default {2} */
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
