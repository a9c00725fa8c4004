// Turning what deallocate, isValidPointer and getAllocationInfo are given
// (an allocation, a view or an address) into an allocation of the index,
// with the error each kind of miss deserves.
import { bufferOf, describe, isDetached, lengthOf } from "../base/_validate.ts";
import { addressOf } from "../base/native_info.ts";
import { AllocationError } from "../base/errors.ts";
import { Allocation } from "./_allocation.ts";
import type { AllocationIndex } from "./_allocation_index.ts";
import { describeTarget, describeValue, hexAddress } from "./_words.ts";

// Every live interface's index, weakly held: when a view or address is no allocation of the interface asked,
// these tell whether it is another interface's live allocation ("mismatched-allocator", as for the
// allocation object itself) rather than memory of no interface ("invalid-free"). Only a failed lookup walks
// them (a program has few interfaces), so no allocation or deallocation pays for it.
const indexes = new Set<WeakRef<AllocationIndex>>();
const collected = new FinalizationRegistry<WeakRef<AllocationIndex>>((ref) => indexes.delete(ref));

/** Registers an interface's index for the lookups of the others; the returned function unregisters it. */
export function registerIndex(index: AllocationIndex): () => void {
  const ref = new WeakRef(index);
  indexes.add(ref);
  collected.register(index, ref, ref);
  return () => {
    indexes.delete(ref);
    collected.unregister(ref);
  };
}

// The live allocation of another interface whose first byte is at `address` (and, for a view, whose own bytes
// the view is), if any.
function othersLiveAt(index: AllocationIndex, address: number, target: unknown): Allocation | undefined {
  for (const ref of indexes) {
    const other = ref.deref();
    if (other === undefined || other === index) continue;
    const found = other.find(address, false);
    if (found !== undefined && Allocation.isLive(found) && (!ArrayBuffer.isView(target) || target === found.bytes)) {
      return found;
    }
  }
  return undefined;
}

/** Throws "mismatched-allocator" when `target` is another interface's live allocation. */
function refuseOthers(index: AllocationIndex, address: number, target: unknown, op: string): void {
  const foreign = othersLiveAt(index, address, target);
  if (foreign === undefined) return;
  throw new AllocationError(
    "mismatched-allocator",
    `Cannot ${op} ${describeTarget(target)}: it is a live ${foreign.size}-byte ${foreign.type} allocation of ` +
      "another MemoryInterface; give it back to that one",
  );
}

/**
 * The address `target` names: a number as is, a view's first byte, an
 * allocation's address. Null for a view over released memory (no live
 * allocation can be there), and, unless `strict`, for a number that is no
 * address (negative, a fraction, NaN).
 * @throws {TypeError} For anything else; {RangeError} for a bad number when `strict`.
 */
export function addressOfTarget(
  target: unknown,
  op: string,
  strict: boolean,
  expected = "a MemoryAllocation, a view or an address",
): number | null {
  if (typeof target === "number") {
    if (!Number.isInteger(target) || target < 0) {
      if (!strict) return null;
      throw new RangeError(
        `Cannot ${op} as an address must be an integer from 0: current value is ${describeValue(target)}`,
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
    `Cannot ${op} as 'target' must be ${expected}: current value is ${describeValue(target)}`,
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
    throw new AllocationError(
      "double-free",
      `Cannot ${op} ${describeTarget(target)}: its memory was already released`,
    );
  }
  const found = index.find(address, false);
  if (found !== undefined) {
    // A view names a live allocation only when it is that allocation's own `bytes`: a view kept from an
    // allocation released since starts at the same byte once the slot is reused, and must never free its
    // new owner (a view made by hand over the first byte looks the same, so it is refused too).
    if (ArrayBuffer.isView(target) && target !== found.bytes && Allocation.isLive(found)) {
      throw new AllocationError(
        "double-free",
        `Cannot ${op} ${describe(target)}: it is another view over the live ${found.size}-byte ${found.type} ` +
          `allocation at ${hexAddress(address)}, not that allocation's own bytes (${op} takes only those, so that ` +
          "a view kept from an allocation released before never frees the one that took its place): pass the " +
          "allocation or its own bytes",
      );
    }
    // A released allocation of this interface whose memory another interface's allocator has since reused.
    if (!Allocation.isLive(found) && target !== found.bytes) refuseOthers(index, address, target, op);
    return found;
  }
  const inside = index.find(address, true);
  if (inside === undefined) refuseOthers(index, address, target, op);
  throw new AllocationError(
    "invalid-free",
    inside !== undefined
      ? `Cannot ${op} ${describeTarget(target)}: it starts inside the ${inside.size}-byte ${inside.type} ` +
        `allocation at ${hexAddress(Allocation.addressIfLive(inside))}, not at its first byte (pass the allocation, ` +
        "its own bytes or its address)"
      : `Cannot ${op} ${describeTarget(target)}: it is not an allocation of this MemoryInterface`,
  );
}
