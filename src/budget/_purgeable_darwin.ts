// macOS purgeable memory, written from Apple's documentation (mach/vm_purgable.h,
// mach/vm_statistics.h, and vm_purgable_control(2) in the xnu sources): a region
// made by vm_allocate with VM_FLAGS_PURGABLE can be marked volatile, and the
// kernel may then empty it instead of paging it out; marking it non-volatile
// again returns the state it was in, and EMPTY means the contents are gone
// (the pages read as zeros). Not run on this project's Linux machines: the
// decoder below is tested on its own.
import { native } from "../../ffi/native.ts";
import { AllocationError } from "../base/errors.ts";

/** `vm_purgable_t` controls. */
export const VM_PURGABLE_SET_STATE = 0;
/** Purgeable states (the low two bits of the state word; higher bits are the volatile group and order). */
export const VM_PURGABLE_NONVOLATILE = 0;
export const VM_PURGABLE_VOLATILE = 1;
export const VM_PURGABLE_EMPTY = 2;
export const VM_PURGABLE_DENY = 3;
export const VM_PURGABLE_STATE_MASK = 3;
/** vm_allocate flags. */
export const VM_FLAGS_ANYWHERE = 0x1;
export const VM_FLAGS_PURGABLE = 0x2;

/**
 * What the old state returned by `VM_PURGABLE_SET_STATE` means for the
 * contents: "purged" for EMPTY, "kept" for NONVOLATILE or VOLATILE.
 * @throws {AllocationError} "platform" for DENY (the region is not purgeable) or a state outside the mask.
 */
export function decodePurgableState(state: number): "kept" | "purged" {
  const value = state & VM_PURGABLE_STATE_MASK;
  if (value === VM_PURGABLE_EMPTY) return "purged";
  if (value === VM_PURGABLE_NONVOLATILE || value === VM_PURGABLE_VOLATILE) return "kept";
  throw new AllocationError(
    "platform",
    `vm_purgable_control returned state ${state} (VM_PURGABLE_DENY): the region is not purgeable`,
  );
}

/** One purgeable region from vm_allocate(VM_FLAGS_PURGABLE). */
export class DarwinPurgeableRegion {
  readonly address: number;
  readonly byteLength: number;
  readonly #task: number;
  readonly #state = new Uint8Array(4);

  /** @throws {AllocationError} "out-of-memory" when vm_allocate refuses. */
  constructor(byteLength: number) {
    const libc = native.libc;
    this.#task = libc.mach_task_self!();
    const out = new Uint8Array(8);
    const kr = libc.vm_allocate!(this.#task, out, byteLength, VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE);
    if (kr !== 0) {
      throw new AllocationError(
        "out-of-memory",
        `vm_allocate(${byteLength} bytes, purgeable) failed: kern_return ${kr}`,
        {
          call: "vm_allocate",
        },
      );
    }
    this.address = Number(new DataView(out.buffer).getBigUint64(0, true));
    this.byteLength = byteLength;
  }

  /**
   * Sets `state`; the old state word.
   * @throws {AllocationError} "platform" when the kernel refuses.
   */
  setState(state: number): number {
    const view = new DataView(this.#state.buffer);
    view.setInt32(0, state, true);
    const kr = native.libc.vm_purgable_control!(this.#task, this.address, VM_PURGABLE_SET_STATE, this.#state);
    if (kr !== 0) {
      throw new AllocationError("platform", `vm_purgable_control(SET_STATE ${state}) failed: kern_return ${kr}`, {
        call: "vm_purgable_control",
      });
    }
    return view.getInt32(0, true);
  }

  release(): void {
    native.libc.vm_deallocate!(this.#task, this.address, this.byteLength);
  }
}
