// How the HAL's messages write numbers and values: byte counts with the
// right grammar ("1 byte", "2 bytes"), addresses in hex as the leak report
// writes them ("0x7f3a…"), and values for "current value is …" (a plain
// object is "an object", an instance names its class), read without running
// the program's code.
import { backingNoun } from "../alloc/_backing_phrase.ts";
import {
  checkAlignment as checkAlignmentOf,
  checkSize as checkSizeOf,
  describe,
  isRevokedProxy,
} from "../base/_validate.ts";

/** "1 byte", "2 bytes", "0 bytes". */
export function byteCount(n: number): string {
  return n === 1 ? "1 byte" : `${n} bytes`;
}

/** "1 frame", "2 frames": a count and its noun, the noun's plural an "s" more. */
export function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** "is" for one, "are" for any other count. */
export function isAre(n: number): string {
  return n === 1 ? "is" : "are";
}

/** An address as the HAL's messages write it: "0x…" in lowercase hex. */
export function hexAddress(address: number): string {
  return `0x${address.toString(16)}`;
}

/**
 * What deallocate, isValidPointer and getAllocationInfo were given, for a message: "the address 0x…" for an
 * address, the view's description ("Uint8Array(8 bytes)") for a view, describe()'s text for anything else.
 */
export function describeTarget(target: unknown): string {
  if (typeof target === "number" && Number.isInteger(target) && target >= 0) return `the address ${hexAddress(target)}`;
  return describeValue(target);
}

/**
 * A value for a message, as describe() writes it, with two things describe() does not say: a Proxy whose
 * revoke() ran is "a revoked Proxy" (every use of it throws: the program needs to know), and an allocator
 * memkit named is called by that name (`MemoryInterface.getAllocator("pool")`, not the class of the guard
 * behind it). (describe() keeps "a Proxy": other families' messages say that of a revoked one.)
 */
export function describeValue(value: unknown): string {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return describe(value);
  if (isRevokedProxy(value)) return "a revoked Proxy";
  return backingNoun(value); // "an object", "an Array", "a Map", "a Proxy" (no trap runs)
}

// The base checks name a value that is not a number with describe(): these refuse such a value first, named
// as describeValue names it, then check as they do.

/** As the base checkSize, with a value of the wrong type named by what it is. */
export function checkSize(value: unknown, op: string, name = "size", max?: number, min?: number): number {
  if (typeof value !== "number") throw notANumber(value, op, name);
  return checkSizeOf(value, op, name, max, min);
}

/** As the base checkAlignment, with a value of the wrong type named by what it is. */
export function checkAlignment(value: unknown, op: string, max: number, fallback?: number, name = "align"): number {
  if (value !== undefined && typeof value !== "number") throw notANumber(value, op, name);
  return checkAlignmentOf(value, op, max, fallback, name);
}

function notANumber(value: unknown, op: string, name: string): TypeError {
  return new TypeError(`Cannot ${op} as '${name}' must be a number: current value is ${describeValue(value)}`);
}
