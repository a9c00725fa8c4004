// What the allocators that give every block a native allocation of its own
// share (SystemAllocator, and LockedBlocks behind LockedPageAllocator and
// SecretAllocator): their list of live blocks and how messages name a block.
import { describe, offsetOf } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";

/** A block in its owner's list of live blocks. */
export interface ListedBlock {
  readonly address: number;
  readonly size: number;
  /** Position in the owner's list of live blocks; -1 once released. */
  index: number;
}

/** Takes `block` out of `blocks` in O(1), the last block moving into its place; its index becomes -1. */
export function unlistBlock<B extends ListedBlock>(blocks: B[], block: B): void {
  const last = blocks.pop()!;
  if (last !== block) {
    blocks[block.index] = last;
    last.index = block.index;
  }
  block.index = -1;
}

/** How messages name a block: "the 64-byte block at 0x7f...". */
export function describeBlock(block: ListedBlock): string {
  return `the ${block.size}-byte block at 0x${block.address.toString(16)}`;
}

/** The error for a view that starts inside `block` instead of at its first byte. */
export function interiorError(view: ArrayBufferView, block: ListedBlock, op: "free" | "resize"): AllocationError {
  return new AllocationError(
    "invalid-free",
    `Cannot ${op} ${describe(view)} at offset ${offsetOf(view)} of a ${block.size}-byte block: ` +
      "pass a view that starts at the block's first byte",
  );
}
