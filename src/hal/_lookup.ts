// Turning what deallocate, isValidPointer and getAllocationInfo are given
// (an allocation, a view or an address) into an allocation of the index,
// with the error each kind of miss deserves.
import { bufferOf, describe, isDetached, lengthOf } from "../base/_validate.ts";
import { addressOf } from "../base/native_info.ts";
import { AllocationError } from "../base/errors.ts";
import { Allocation } from "./_allocation.ts";
import type { AllocationIndex } from "./_allocation_index.ts";

/**
 * The address `target` names: a number as is, a view's first byte, an
 * allocation's address. Null for a view over released memory (no live
 * allocation can be there), and, unless `strict`, for a number that is no
 * address (negative, a fraction, NaN).
 * @throws {TypeError} For anything else; {RangeError} for a bad number when `strict`.
 */
export function addressOfTarget(target: unknown, op: string, strict: boolean): number | null {
  if (typeof target === "number") {
    if (!Number.isInteger(target) || target < 0) {
      if (!strict) return null;
      throw new RangeError(
        `Cannot ${op} as an address must be an integer from 0: current value is ${describe(target)}`,
      );
    }
    return target;
  }
  if (ArrayBuffer.isView(target)) {
    if (lengthOf(target) === 0 && isDetached(bufferOf(target))) return null;
    return addressOf(target);
  }
  if (Allocation.is(target)) return Allocation.addressIfLive(target);
  throw new TypeError(
    `Cannot ${op} as 'target' must be a MemoryAllocation, a view or an address: current value is ${describe(target)}`,
  );
}

/**
 * The allocation `target` names exactly (its first byte), live or released;
 * `usable()` runs once the argument is known to be of the right kind.
 * @throws {AllocationError} "double-free" for a view over released memory or a view at a live allocation's
 *   first byte that is not its own `bytes`, "invalid-free" for an address
 *   inside an allocation or outside all of them.
 */
export function findAllocation(index: AllocationIndex, target: unknown, op: string, usable: () => void): Allocation {
  if (Allocation.is(target)) {
    usable();
    return target;
  }
  const address = addressOfTarget(target, op, true);
  usable();
  if (address === null) {
    throw new AllocationError("double-free", `Cannot ${op} ${describe(target)}: its memory was already released`);
  }
  const found = index.find(address, false);
  if (found !== undefined) {
    // A view names a live allocation only when it is that allocation's own `bytes`: a view kept from an
    // allocation released since starts at the same byte once the slot is reused, and must never free its
    // new owner (a view made by hand over the first byte looks the same, so it is refused too).
    if (ArrayBuffer.isView(target) && target !== found.bytes && Allocation.isLive(found)) {
      throw new AllocationError(
        "double-free",
        `Cannot ${op} ${describe(target)}: it is not the bytes of the live allocation at its address ` +
          `(a view kept from an allocation released since, whose place was reused); ` +
          `pass the allocation or its own bytes`,
      );
    }
    return found;
  }
  const inside = index.find(address, true);
  throw new AllocationError(
    "invalid-free",
    inside !== undefined
      ? `Cannot ${op} ${
        describe(target)
      }: it starts inside an allocation of ${inside.size} bytes, not at its first byte`
      : `Cannot ${op} ${describe(target)}: it is not an allocation of this MemoryInterface`,
  );
}

/**
 * Whether `target`, when a view starting at `found`'s first byte, is `found`'s own `bytes` (always true for
 * addresses and interior views): a stale view of a released allocation whose slot `found` took is not.
 */
export function viewNamesIt(target: unknown, found: Allocation, address: number): boolean {
  return !ArrayBuffer.isView(target) || target === found.bytes || address !== Allocation.addressIfLive(found);
}
