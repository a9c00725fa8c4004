/**
 * The `array()` of allocators whose only path is `alloc()`: checks the
 * constructor, length and alignment, then views one block as `ctor`.
 *
 * @module
 */
import { checkAlignment, checkSize, checkTypedArrayConstructor, MAX_BLOCK_SIZE } from "../base/_validate.ts";
import type { TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import { native } from "../../ffi/native.ts";

/** `length` elements of `ctor` in one block from `alloc`, aligned to at least the element size and 16. */
export function typedArrayOf<T extends TypedArray>(
  alloc: (size: number, align: number) => Uint8Array,
  ctor: TypedArrayConstructor<T>,
  length: number,
  align: number | undefined,
): T {
  const bytesPerElement = checkTypedArrayConstructor(ctor, "allocate an array");
  checkSize(length, "allocate an array", "length", Math.floor(MAX_BLOCK_SIZE / bytesPerElement));
  const alignment = checkAlignment(align, "allocate an array", native.pageSize, Math.max(16, bytesPerElement));
  const bytes = alloc(length * bytesPerElement, alignment);
  return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
}
