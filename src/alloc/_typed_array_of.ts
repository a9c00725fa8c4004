/**
 * `array()` for every allocator: checks the constructor, length and
 * alignment, then views one block as `ctor`.
 *
 * @module
 */
import { checkAlignment, checkSize, checkTypedArrayConstructor, MAX_BLOCK_SIZE } from "../base/_validate.ts";
import type { TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { native } from "../../ffi/native.ts";

/**
 * `length` elements of `ctor` in one block from `alloc`, aligned to `align`
 * (default: `fallback`, at least 16) and never less than the element size: a
 * typed array cannot start between elements, and a stricter alignment
 * satisfies the request. Every check runs before `alloc`, so a bad call
 * reserves nothing.
 */
export function typedArrayOf<T extends TypedArray>(
  alloc: (size: number, align: number) => Uint8Array,
  ctor: TypedArrayConstructor<T>,
  length: number,
  align: number | undefined,
  maxAlign: number = native.pageSize,
): T {
  const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
  checkSize(length, "allocate an array", "length", Math.floor(MAX_BLOCK_SIZE / bytesPerElement));
  const requested = checkAlignment(align, "allocate an array", maxAlign, Math.max(16, bytesPerElement));
  const bytes = alloc(length * bytesPerElement, Math.max(requested, bytesPerElement));
  return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
}
