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
// here, and every place that releases or reuses memory (`mayRelease`: a
// chunk going back to its backing, a block going back to libc, a reset or a
// scope's end making memory available again) keeps memory that overlaps it.
// The record is process-wide, so a theft found anywhere in a chain of
// allocators stops every allocator in it from releasing or reusing that
// memory.
import { intrinsic } from "../../ffi/boundary.ts";
import { AllocationError } from "./errors.ts";

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
    keep(address, byteLength);
    return false;
  }
  intrinsic.detach(buffer); // the engine's own transfer, captured when memkit loaded
  return true;
}

/**
 * Records that the `byteLength` bytes at `address` may be reached by a buffer
 * memkit cannot see (a block whose buffer was collected before memkit could
 * check it): that memory is never released or reused, as if transferred.
 */
export function keep(address: number, byteLength: number): void {
  if (byteLength > 0 && mayRelease(address, byteLength)) taken.push(address, address + byteLength);
}

/**
 * Whether the `byteLength` bytes at `address` may be released or reused
 * (given back to a backing, to libc or the OS, or handed out again after a
 * reset or a scope's end): false when a buffer memkit made over any of them
 * was transferred away.
 */
export function mayRelease(address: number, byteLength: number): boolean {
  for (let i = 0; i < taken.length; i += 2) {
    if (address < taken[i + 1] && taken[i] < address + byteLength) return false;
  }
  return true;
}

/** Whether any memory was ever found transferred away (the common case is no: one length check). */
export function anyTaken(): boolean {
  return taken.length !== 0;
}

/** Whether `buffer` was detached. */
export const isDetached: (buffer: ArrayBufferLike) => boolean = intrinsic.isDetached;

/**
 * The error for an operation on memory an ArrayBuffer reaches that was
 * transferred away (nothing was changed): `subject` names that memory.
 */
export function transferredError(op: string, subject: string): AllocationError {
  return new AllocationError(
    "corruption",
    `Cannot ${op}: an ArrayBuffer over ${subject} was transferred away (ArrayBuffer.prototype.transfer, or a ` +
      "postMessage transfer list), so another buffer may still reach that memory; memkit keeps it and never frees it",
  );
}

/** What happened, in a few words, when a buffer over an allocator's memory was transferred away. */
export const THEFT = "one of the ArrayBuffers over its memory was transferred away";

/**
 * Why an allocator ended when it found memory it holds reachable through a
 * transferred buffer (its later calls throw "corruption" with this reason).
 */
export const ENDED_ON_THEFT = `ended: ${THEFT} (ArrayBuffer.prototype.transfer, or a postMessage transfer ` +
  "list), so another buffer may reach that memory; memkit keeps it and never reuses it";
