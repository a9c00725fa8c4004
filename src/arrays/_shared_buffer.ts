// A SharedDynamicArray's buffer as any thread first meets it: the words of
// its header (their protocol, between threads, is SharedHeader's, in
// _shared_header.ts), its lengths through the engine's own getters, and the
// checks a buffer passes before this thread adopts it (attach) or makes one.
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../base/errors.ts";
import { apply, Builtin, floor } from "./_builtins.ts";

/** The header's words (Int32 indexes): see the protocol in _shared_header.ts. */
export const SEQ = 0, STATE = 1, STRIDE = 3;
// The lock bits of STATE.
export const FREE = 0, TAKEN = 1, SLEEPER = 2, LOCK_BITS = 3;
/** Bytes before the first element. */
export const HEADER = 16;
/** Most elements, so that the length times 4 plus the lock bits fits the Int32 STATE word. */
export const MAX_ELEMENTS = 2 ** 29 - 1;

// The engine's own getters and grow: an own `byteLength` or `grow` property on a buffer changes nothing.
function getter<T>(key: string): (this: SharedArrayBuffer) => T {
  return Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, key)!.get as (this: SharedArrayBuffer) => T;
}
export const sabByteLength = getter<number>("byteLength");
export const sabMaxByteLength = getter<number>("maxByteLength");
const sabGrowable = getter<boolean>("growable");
export const sabGrow = SharedArrayBuffer.prototype.grow as (this: SharedArrayBuffer, length: number) => void;
// Taken once, as the header takes every built-in it calls (and called through the captured Reflect.apply).
const atomicLoad = Atomics.load;

/**
 * The real byte length and maxByteLength of `value` when it is a growable
 * SharedArrayBuffer of at least a header (from the engine's getters: an
 * object that only claims to be one is not), else null.
 */
export function growableLengths(value: unknown): [number, number] | null {
  let length: number, max: number, growable: boolean;
  try {
    length = apply(sabByteLength, value as SharedArrayBuffer, []);
    max = apply(sabMaxByteLength, value as SharedArrayBuffer, []);
    growable = apply(sabGrowable, value as SharedArrayBuffer, []);
  } catch {
    return null;
  }
  return growable && length >= HEADER ? [length, max] : null;
}

export const lockFound = (state: number): string =>
  `its length word reads ${state}, whose lock bits read ${state & LOCK_BITS} (0, 1 or 2 expected)`;
export const lengthFound = (state: number, capacity: number): string =>
  `its length word reads ${state} (${state >> 2} elements), but the buffer holds ${capacity} elements`;

// The corruption error: what was read, and what that means.
export function corrupt(op: string, found: string): AllocationError {
  return new AllocationError(
    "corruption",
    `Cannot ${op} the SharedDynamicArray: ${found}; its SharedArrayBuffer was written outside memkit ` +
      `(only a SharedDynamicArray may write the buffer's first ${HEADER} bytes)`,
  );
}

/**
 * Checks the header of a buffer being attached as elements of `stride`
 * bytes: a stride word that cannot be a SharedDynamicArray's (not a positive
 * size the buffer's lengths are whole multiples of, or one that leaves room
 * for no element), lock bits other than
 * 0, 1 or 2, or a length outside what the buffer holds.
 * @returns The stride word (the caller compares it with the type's: another size is a TypeError).
 * @throws {AllocationError} "corruption".
 */
export function checkAttachable(buffer: SharedArrayBuffer, byteLength: number, maxByteLength: number): number {
  const words = new Builtin.Int32Array(buffer, 0, 4);
  const stride = atomicLoad(words, STRIDE);
  const op = "attach";
  if (
    !(stride > 0) || (byteLength - HEADER) % stride !== 0 || (maxByteLength - HEADER) % stride !== 0 ||
    // Every SharedDynamicArray has room for one element at least (maxCapacity >= 1).
    (maxByteLength - HEADER) / stride < 1 || (maxByteLength - HEADER) / stride > MAX_ELEMENTS
  ) {
    throw corrupt(
      op,
      `its element size word reads ${stride}, which no SharedDynamicArray of a ${byteLength}-byte buffer ` +
        `growing to ${maxByteLength} bytes has`,
    );
  }
  const state = atomicLoad(words, STATE);
  if ((state & LOCK_BITS) === LOCK_BITS) throw corrupt(op, lockFound(state));
  // Another thread may grow the buffer and publish a longer length between the
  // caller's read of byteLength and this one: a writer grows before it publishes,
  // so the byte length read after the length covers it.
  const capacity = floor((apply(sabByteLength, buffer, []) - HEADER) / stride);
  if (!(state >= 0 && state >> 2 <= capacity)) throw corrupt(op, lengthFound(state, capacity));
  return stride;
}

/** A growable SharedArrayBuffer; the runtime reserves `max` bytes of address space up front. */
export function reserve(bytes: number, max: number): SharedArrayBuffer {
  if (max > native.maxViewBytes) {
    // Bun's limit, said as such: the engine's own refusal reads "Out of memory".
    throw new RangeError(
      `Cannot create SharedDynamicArray as its buffer would need up to ${max} bytes (maxCapacity × the element ` +
        `size, plus a ${HEADER}-byte header): ${native.runtime === "bun" ? "Bun" : "Deno"} allows at most ` +
        `${native.maxViewBytes} bytes per ArrayBuffer (nativeInfo().maxViewBytes); ask for a smaller maxCapacity`,
    );
  }
  try {
    return new Builtin.SharedArrayBuffer(bytes, { maxByteLength: max });
  } catch (error) {
    throw new RangeError(
      `Cannot create SharedDynamicArray: the runtime refused a growable SharedArrayBuffer of up to ${max} bytes ` +
        `(${(error as Error).message}); ask for a smaller maxCapacity`,
    );
  }
}
