/**
 * Arrays for the three regions a renderer and an audio engine keep: vertices (16-byte
 * aligned), uniforms (one 256-byte slot per element) and audio samples (f32).
 *
 * @module
 */
import { checkAlignment, describe } from "../base/_validate.ts";
import { DynamicArray } from "./dynamic_array.ts";
import type { DynamicArrayOptions, FieldValue } from "./dynamic_array_types.ts";
import { SIMDArray } from "./simd_array.ts";
import { arrayOf, recordOf } from "./_plain_values.ts";
import { max, objectKeys } from "./_builtins.ts";
import { isStructLayout, struct, type StructLayout } from "./struct.ts";

/** Uniform buffer offsets must be multiples of this (WebGPU's minUniformBufferOffsetAlignment; Metal's constant buffers). */
const UNIFORM_STRIDE = 256;

function checkLayout(layout: StructLayout<unknown>, op: string): void {
  if (!isStructLayout(layout)) {
    throw new TypeError(
      `Cannot create ${op} as 'layout' must be a StructLayout<unknown> from struct(): current value is ${
        describe(layout)
      }`,
    );
  }
}

/**
 * A growable array of vertices whose storage is aligned to 16 bytes, ready to
 * copy into a GPU vertex buffer or hand to SIMD code.
 *
 * @param layout The vertex record, from `struct()`.
 * @param options As for DynamicArray; `alignment` is raised to at least 16.
 * @throws {TypeError} When `layout` is not a StructLayout, or `alignment` is not a number.
 * @throws {RangeError} When `alignment` is not a power of two from 1 to 4096 (as for DynamicArray).
 *
 * @example
 * ```ts
 * import { addressOf, struct, vertexArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Vertex = struct({ position: "f32x3", color: "f32x4" });
 * using vertices = vertexArray<{ position: number[]; color: number[] }>(Vertex);
 * vertices.push({ position: [0, 1, 0], color: [1, 0, 0, 1] });
 * assert.equal(addressOf(vertices.bytes) % 16, 0);
 * assert.equal(vertices.bytes.length, 32);
 * ```
 */
export function vertexArray<T = Record<string, FieldValue>>(
  layout: StructLayout<T>,
  options?: DynamicArrayOptions,
): DynamicArray<T> {
  if (options === undefined) options = {};
  checkLayout(layout, "a vertex array");
  return new DynamicArray<T>(layout, withAlignment(options, 16, "a vertex array"));
}

/**
 * A growable array of uniform blocks, one per 256-byte slot: element `i`
 * starts at byte `i * 256`, the offset rule of uniform buffers in WebGPU and
 * Metal, so any element can be bound by offset. Larger records take the next
 * multiple of 256.
 *
 * @param layout The uniform record, from `struct()` (its fields are laid out again with 256-byte alignment).
 * @param options As for DynamicArray; `alignment` is raised to at least 256.
 * @throws {TypeError} When `layout` is not a StructLayout, or `alignment` is not a number.
 * @throws {RangeError} When `alignment` is not a power of two from 1 to 4096 (as for DynamicArray).
 *
 * @example
 * ```ts
 * import { struct, uniformArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const Uniforms = struct({ mvp: "f32x4x4", tint: "f32x4" });
 * using uniforms = uniformArray<{ mvp: number[]; tint: number[] }>(Uniforms);
 * uniforms.push({ mvp: new Array(16).fill(1), tint: [1, 1, 1, 1] });
 * uniforms.push({ mvp: new Array(16).fill(2), tint: [0, 0, 0, 1] });
 * assert.equal(uniforms.stride, 256);
 * assert.equal(uniforms.bytes.length, 512);
 * ```
 */
export function uniformArray<T = Record<string, FieldValue>>(
  layout: StructLayout<T>,
  options?: DynamicArrayOptions,
): DynamicArray<T> {
  if (options === undefined) options = {};
  checkLayout(layout, "a uniform array");
  options = withAlignment(options, UNIFORM_STRIDE, "a uniform array");
  // Defined, not assigned (a setter a program put on Object.prototype for a field's name would run).
  // (The layout's own fields, frozen, read with the built-ins memkit loaded with: see _builtins.ts.)
  const names = objectKeys(layout.fields);
  const types = recordOf(names, arrayOf(names.length, (i) => layout.fields[names[i]].type));
  const slotted = struct(types, {
    packed: layout.packed,
    align: max(UNIFORM_STRIDE, layout.align),
    layout: layout.layout,
  });
  return new DynamicArray<T>(slotted as StructLayout<T>, options); // the same fields: the same records
}

/**
 * A growable array of f32 audio samples (a SIMDArray, so `scale`, `add`,
 * `axpy` and `sum` run in libmemkit), aligned to 16 bytes.
 *
 * @param options As for DynamicArray.
 *
 * @example
 * ```ts
 * import { audioArray } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const samples = audioArray({ capacity: 4096 });
 * samples.pushMany(new Float32Array([0.5, -0.5, 0.25]));
 * samples.scale(2); // gain
 * assert.deepEqual([...samples], [1, -1, 0.5]);
 * samples.free();
 * ```
 */
export function audioArray(options?: DynamicArrayOptions): SIMDArray {
  if (options === undefined) options = {};
  return new SIMDArray("f32", options);
}

// The options with `alignment` checked (as DynamicArray checks it: raising 3 to 16 first would hide the
// mistake) and raised to `minimum`; anything else malformed passes through unchanged, for DynamicArray to report.
function withAlignment(options: DynamicArrayOptions, minimum: number, what: string): DynamicArrayOptions {
  if (typeof options !== "object" || options === null) return options;
  const copy = { ...options }; // each option read once
  const alignment = checkAlignment(copy.alignment, `create ${what}`, 4096, minimum, "alignment");
  return { ...copy, alignment: max(minimum, alignment) };
}
