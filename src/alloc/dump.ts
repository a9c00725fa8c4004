/**
 * The dump format of every allocator's `dump()`: its chunks and the blocks
 * in them (the idea of Vulkan Memory Allocator's JSON dump), versioned so
 * tools can read it.
 *
 * @module
 */
import type { AllocatorKind, AllocatorStats } from "../base/allocator.ts";

// The format's name and version (bumped on any incompatible change).
const DUMP_FORMAT = "memkit.allocator-dump";
const DUMP_VERSION = 1;

/**
 * One block in a {@linkcode DumpChunk}.
 *
 * @example
 * ```ts
 * import type { DumpBlock } from "@memkit/memkit";
 *
 * const block: DumpBlock = { offset: 0, size: 64, free: false, requested: 60, owner: null };
 * console.log(block.free ? "free" : "used");
 * ```
 */
export interface DumpBlock {
  /** Where it starts, in bytes from its chunk's start. */
  offset: number;
  /** Bytes it spans (a used block's size as carved, with its rounding). */
  size: number;
  /** Whether it is free. Bytes no block claims (padding, a chunk's unused tail) are listed as free blocks. */
  free: boolean;
  /** Bytes the user asked for (used blocks; 0 for free ones). */
  requested: number;
  /**
   * What the allocator knows of who holds it, else null:
   * - `"handle"`: a FreeListAllocator's relocatable handle;
   * - `"bump"`: an Arena's run of allocations, which it does not tell apart
   *   (one used block for one or more allocations and their padding;
   *   `requested` is its size);
   * - `"canary"`: a DebugAllocator's guard bytes before or after a block
   *   (header and canaries): used, but not an allocation (`requested` 0);
   * - `"quarantine"`: a DebugAllocator's freed block held back from its
   *   backing (`neverUnmap`, `retainMetadata`): free;
   * - any other string: where a DebugAllocator's traced block was
   *   allocated, the first frame of its trace outside memkit
   *   (`"main (file:///app.ts:12:3)"`).
   */
  owner: string | null;
}

/**
 * One chunk of memory an allocator took from its backing (or the system).
 *
 * @example
 * ```ts
 * import type { DumpChunk } from "@memkit/memkit";
 *
 * const chunk: DumpChunk = { address: 0x7f0000000000, size: 4096, blocks: [] };
 * console.log(chunk.size);
 * ```
 */
export interface DumpChunk {
  /** Its native address. */
  address: number;
  /** Its size in bytes. */
  size: number;
  /** Its blocks by offset; together they cover the chunk exactly. */
  blocks: DumpBlock[];
}

/**
 * What an allocator's `dump()` returns: plain JSON data (`JSON.stringify`
 * keeps all of it). Format `"memkit.allocator-dump"`, version 1:
 *
 * ```
 * { format, version, kind, stats: AllocatorStats,
 *   chunks: [{ address, size, blocks: [{ offset, size, free, requested, owner }] }] }
 * ```
 *
 * Chunks are in the order the allocator took them; blocks in a chunk are
 * sorted by offset, never overlap and cover the chunk. What chunks and
 * blocks are, per allocator:
 *
 * | kind | chunks | blocks |
 * |---|---|---|
 * | `system` | each live block (its own `malloc` or `mmap`; freed extents it retains are not listed) | one per allocation; page rounding is a free tail |
 * | `pool`, `buddy`, `free-list`, `stack` | the chunks taken from the backing | one per allocation or free block; padding is free |
 * | `arena` | its chunks, then those of allocations too large for one | a chunk's used part is ONE block, `owner: "bump"` (an arena does not record its allocations: that would cost every `alloc`); an allocation with a chunk of its own is one block |
 * | `debug` | each block taken from the backing, in allocation order: live, or freed and held back (`neverUnmap`, `retainMetadata`) | the user's bytes (`owner`: where it was allocated, when traced) and the header and canaries around them (`owner: "canary"`; none with `safety: false`); a held-back block is one free block, `owner: "quarantine"` |
 *
 * So a used block is one allocation unless its owner is `"bump"` (one or
 * more) or `"canary"` (none). Fields and owner tags may be added within
 * version 1; the version changes when a field changes its meaning.
 *
 * @example
 * ```ts
 * import { type AllocatorDump, PoolAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4 });
 * const block = pool.alloc(64);
 * const dump: AllocatorDump = pool.dump();
 * assert.equal(dump.format, "memkit.allocator-dump");
 * // Four 64-byte slots, one used (the chunk's page-rounded tail follows as a free block).
 * assert.deepEqual(dump.chunks[0].blocks.slice(0, 4).map((b) => b.free), [false, true, true, true]);
 * pool.free(block);
 * ```
 */
export interface AllocatorDump {
  /** Always `"memkit.allocator-dump"`. */
  format: "memkit.allocator-dump";
  /** The format's version, 1. */
  version: 1;
  /** Which allocator wrote it. */
  kind: AllocatorKind;
  /** Its statistics at the time. */
  stats: AllocatorStats;
  /** Its chunks. */
  chunks: DumpChunk[];
}

/** A block as an allocator reports it (gaps are filled in by {@linkcode makeDump}). */
export interface RawBlock {
  offset: number;
  size: number;
  free: boolean;
  requested?: number;
  owner?: string | null;
}

/**
 * Builds a dump: sorts each chunk's blocks, fills what no block covers with
 * free blocks and merges nothing else, so every chunk is covered exactly.
 */
export function makeDump(
  stats: AllocatorStats,
  chunks: Iterable<{ address: number; size: number; blocks: RawBlock[] }>,
): AllocatorDump {
  const out: DumpChunk[] = [];
  for (const chunk of chunks) {
    const raw = chunk.blocks.filter((b) => b.size > 0).sort((a, b) => a.offset - b.offset);
    const blocks: DumpBlock[] = [];
    let at = 0;
    const gap = (end: number) => {
      if (end > at) blocks.push({ offset: at, size: end - at, free: true, requested: 0, owner: null });
    };
    for (const b of raw) {
      gap(b.offset);
      const offset = Math.max(b.offset, at);
      const end = Math.min(b.offset + b.size, chunk.size);
      if (end <= offset) continue;
      blocks.push({
        offset,
        size: end - offset,
        free: b.free,
        requested: b.free ? 0 : b.requested ?? end - offset,
        owner: b.owner ?? null,
      });
      at = end;
    }
    gap(chunk.size);
    out.push({ address: chunk.address, size: chunk.size, blocks });
  }
  return { format: DUMP_FORMAT, version: DUMP_VERSION, kind: stats.kind, stats, chunks: out };
}
