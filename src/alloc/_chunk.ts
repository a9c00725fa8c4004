// Transitional: the old chunk helpers, until every allocator takes its chunks through ChunkSource (_chunks.ts).
import { native } from "../../ffi/native.ts";
import type { Allocator } from "../base/allocator.ts";
export { roundToPage } from "./_chunks.ts";

/** A page-aligned region of native memory an allocator carves blocks from. */
export interface Chunk {
  readonly block: Uint8Array;
  readonly address: number;
  readonly size: number;
  buffer: ArrayBuffer;
}

/** Takes `size` bytes (a multiple of the page size) from `backing`, or null. */
export function takeChunk(backing: Allocator, size: number): Chunk | null {
  const block = backing.tryAlloc(size, native.pageSize);
  if (block === null) return null;
  const address = native.addressOf(block);
  return { block, address, size, buffer: native.wrap(address, size) };
}

/** Detaches the chunk's buffer, then returns it. */
export function returnChunk(backing: Allocator, chunk: Chunk): void {
  chunk.buffer.transfer(0);
  backing.free(chunk.block);
}
