// Detaching the ArrayBuffers memkit makes over native memory, and what to do
// when someone else detached one first.
//
// `buffer.transfer()` (or a postMessage transfer list) moves a buffer's
// memory into a NEW ArrayBuffer and detaches the old one. For a buffer over
// native memory that means another buffer, which memkit cannot detach, now
// reaches the memory, so that memory must never go back to libc or the OS
// (the new buffer would dangle). Every memkit buffer is detached through
// `detach()` before its memory is released anywhere (rule 1 of the safety
// model); when it was already detached, the memory it covered is recorded
// here, and the places that return memory to the system (`mayRelease`) keep
// any block that overlaps such memory. The record is process-wide, so a
// theft found low in a chain of allocators stops every allocator above it
// from freeing that memory.
import { intrinsic } from "../../ffi/boundary.ts";
import { AllocationError } from "./errors.ts";

// The engine's own transfer: a `transfer` property a caller put on a buffer is never called.
const transfer = ArrayBuffer.prototype.transfer as (this: ArrayBufferLike, length?: number) => ArrayBuffer;

// [start, end) address ranges another buffer may reach. Thefts are rare: a
// scan is enough, and the common case is one length check.
const taken: number[] = [];

/**
 * Detaches `buffer`, which covers `byteLength` bytes at `address`, so every
 * view over it reads as length 0. False when someone else had detached it
 * (transferred it away): that memory is then recorded as reachable elsewhere.
 */
export function detach(buffer: ArrayBufferLike, address: number, byteLength: number): boolean {
  if (intrinsic.isDetached(buffer)) {
    if (byteLength > 0) taken.push(address, address + byteLength);
    return false;
  }
  transfer.call(buffer, 0);
  return true;
}

/**
 * Whether the `byteLength` bytes at `address` may go back to libc or the OS:
 * false when a buffer memkit made over any of them was transferred away.
 */
export function mayRelease(address: number, byteLength: number): boolean {
  for (let i = 0; i < taken.length; i += 2) {
    if (address < taken[i + 1] && taken[i] < address + byteLength) return false;
  }
  return true;
}

/** Whether `buffer` was detached. */
export const isDetached: (buffer: ArrayBufferLike) => boolean = intrinsic.isDetached;

/** The error for an operation on memory whose buffer was transferred away (nothing was changed). */
export function transferredError(op: string, what: string): AllocationError {
  return new AllocationError(
    "corruption",
    `Cannot ${op} ${what}: its ArrayBuffer was transferred away (ArrayBuffer.prototype.transfer, or a postMessage ` +
      "transfer list), so another buffer may still reach its memory; memkit keeps that memory and never frees it",
  );
}
