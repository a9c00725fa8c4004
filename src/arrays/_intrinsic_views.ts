// What the arrays read of a typed array or DataView a caller passes, or an
// allocator returns: always through the engine's own getters (ffi/boundary.ts
// `intrinsic`), so an own property, a subclass getter or a Proxy cannot change
// what they report (the safety model: lengths cannot be faked).
import { intrinsic } from "../../ffi/boundary.ts";
import { describe } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { Builtin } from "./_builtins.ts";

const isView = ArrayBuffer.isView;

/** The typed array class name of `value` ("Float32Array", ...), or undefined for anything else (a DataView, a Proxy, a fake). */
export function typedArrayKind(value: unknown): string | undefined {
  return intrinsic.typedArrayTag(value);
}

/**
 * Throws when `value` is a typed array or DataView over a detached buffer
 * (its memory was released): whatever else is wrong with it, that is a
 * use-after-free. Anything else passes (the caller checks its type).
 * @throws {AllocationError} "use-after-free", naming `name`.
 */
export function checkNotFreed(value: unknown, op: string, name: string): void {
  if (isView(value) && intrinsic.isDetached(intrinsic.bufferOf(value))) {
    throw new AllocationError(
      "use-after-free",
      `Cannot ${op} as '${name}' is a view over a detached ArrayBuffer: its memory was released`,
    );
  }
}

/**
 * The bytes of any typed array or DataView, read from internal slots: a
 * fresh Uint8Array over the same memory (empty when a view no longer covers
 * its shrunk buffer), or null for anything that is not a view.
 * @throws {AllocationError} "use-after-free" for a view over a detached buffer (its memory was released).
 */
export function bytesOfView(value: unknown): Uint8Array | null {
  if (!isView(value)) return null;
  const range = intrinsic.range(value); // (by index: destructuring would ask the array iterator)
  const buffer = range[0], byteOffset = range[1], byteLength = range[2];
  if (byteLength === 0) {
    if (intrinsic.isDetached(buffer)) {
      throw new AllocationError(
        "use-after-free",
        `Cannot read ${describe(value)}: it is a view over a detached ArrayBuffer (its memory was released)`,
      );
    }
    return new Builtin.Uint8Array(0);
  }
  return new Builtin.Uint8Array(buffer, byteOffset, byteLength);
}

/**
 * The parts of a block an allocator returned, from internal slots, or a
 * reason it cannot be used: not a Uint8Array, fewer than `size` bytes
 * (detached buffers have none), or an offset in its buffer that typed arrays
 * of 8-byte elements cannot start at.
 */
export function blockParts(value: unknown, size: number): [ArrayBufferLike, number, number] | string {
  if (intrinsic.typedArrayTag(value) !== "Uint8Array") return `${describe(value)} is not a Uint8Array`;
  const range = intrinsic.range(value as Uint8Array);
  const buffer = range[0], offset = range[1], length = range[2];
  if (length < size) {
    return length === 0 ? "its buffer is detached (that memory was released)" : `it has ${length} of ${size} bytes`;
  }
  if (offset % 8 !== 0) return `it starts at byte ${offset} of its buffer, not a multiple of 8`;
  if (intrinsic.isResizable(buffer)) {
    return "its buffer is a resizable ArrayBuffer (shrinking it would release memory the storage uses)";
  }
  if (intrinsic.isShared(buffer)) {
    // The array's views are ArrayBuffer memory, as their types say (SharedDynamicArray is the shared array).
    return "its buffer is a SharedArrayBuffer (a DynamicArray's storage is not shared: use SharedDynamicArray)";
  }
  return [buffer, offset, length];
}
