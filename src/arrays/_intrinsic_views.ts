// What the arrays read of a typed array or DataView a caller passes, or an
// allocator returns: always through the engine's own getters (ffi/boundary.ts
// `intrinsic`), so an own property, a subclass getter or a Proxy cannot change
// what they report (the safety model: lengths cannot be faked).
import { intrinsic } from "../../ffi/boundary.ts";
import { describe } from "../base/_validate.ts";

// `intrinsic` has no accessor for a typed array's class name; this is the one
// engine getter the arrays capture themselves (it reads an internal slot).
const taTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!
  .get! as (this: unknown) => string | undefined;
const isView = ArrayBuffer.isView;

/** The typed array class name of `value` ("Float32Array", ...), or undefined for anything else (a DataView, a Proxy, a fake). */
export function typedArrayKind(value: unknown): string | undefined {
  return taTag.call(value);
}

/**
 * The bytes of any typed array or DataView, read from internal slots: a
 * fresh Uint8Array over the same memory (empty when a DataView's buffer is
 * detached or no longer covers it), or null for anything that is not a view.
 */
export function bytesOfView(value: unknown): Uint8Array | null {
  if (!isView(value)) return null;
  const [buffer, byteOffset, byteLength] = intrinsic.range(value);
  // A typed array over a detached buffer throws here, as the engine's constructor does.
  if (taTag.call(value) !== undefined) return new Uint8Array(buffer, byteOffset, byteLength);
  try {
    return new Uint8Array(buffer, byteOffset, byteLength);
  } catch {
    return new Uint8Array(0); // a DataView over a detached buffer
  }
}

/**
 * The parts of a block an allocator returned, from internal slots, or a
 * reason it cannot be used: not a Uint8Array, fewer than `size` bytes
 * (detached buffers have none), or an offset in its buffer that typed arrays
 * of 8-byte elements cannot start at.
 */
export function blockParts(value: unknown, size: number): [ArrayBufferLike, number, number] | string {
  if (taTag.call(value) !== "Uint8Array") return `${describe(value)} is not a Uint8Array`;
  const [buffer, offset, length] = intrinsic.range(value as Uint8Array);
  if (length < size) {
    return length === 0 ? "its buffer is detached (that memory was released)" : `it has ${length} of ${size} bytes`;
  }
  if (offset % 8 !== 0) return `it starts at byte ${offset} of its buffer, not a multiple of 8`;
  return [buffer, offset, length];
}
