// A native chunk taken from a backing allocator, with the allocator's own
// ArrayBuffer over it (so the allocator can detach it whatever the backing).
import { native } from "../../ffi/native.ts";
import type { Allocator } from "../base/allocator.ts";

/** A page-aligned region of native memory an allocator carves blocks from. */
export interface Chunk {
  /** The block the backing gave. */
  readonly block: Uint8Array;
  readonly address: number;
  readonly size: number;
  /** The allocator's own buffer over the whole chunk. */
  buffer: ArrayBuffer;
}

/** Takes `size` bytes (a multiple of the page size) from `backing`, or null. */
export function takeChunk(backing: Allocator, size: number): Chunk | null {
  const block = backing.tryAlloc(size, native.pageSize);
  if (block === null) return null;
  const address = native.addressOf(block);
  return { block, address, size, buffer: native.wrap(address, size) };
}

/** Detaches the chunk's buffer (rule 1: before the memory goes back), then returns it. */
export function returnChunk(backing: Allocator, chunk: Chunk): void {
  chunk.buffer.transfer(0);
  backing.free(chunk.block);
}

/** `bytes` rounded up to whole pages. */
export function roundToPage(bytes: number): number {
  const page = native.pageSize;
  return Math.ceil(bytes / page) * page;
}
