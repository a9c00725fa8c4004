/**
 * An allocator whose blocks are pages locked in RAM: the HAL's `audio` memory
 * type and `dma-capable` flag.
 *
 * @module
 */
import { parseOptions, z } from "../base/_validate.ts";
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import type { AllocatorDump } from "../alloc/dump.ts";
import { LockedBlocks } from "./_locked_blocks.ts";

/**
 * Options of {@linkcode LockedPageAllocator}.
 *
 * @example
 * ```ts
 * import { LockedPageAllocator, type LockedPageAllocatorOptions } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const options: LockedPageAllocatorOptions = { zero: true };
 * using allocator = new LockedPageAllocator(options);
 * let block = allocator.alloc(3000);
 * block[2999] = 7;
 * block = allocator.resize(block, 100); // same page: stays in place
 * block = allocator.resize(block, 3000); // grows back in place: zero-filled, not the old 7
 * assert.equal(block[2999], 0);
 * ```
 */
export interface LockedPageAllocatorOptions {
  /**
   * Zero-fill the bytes a `resize` adds in place. Every new block is zero-filled
   * anyway (fresh pages from `mmap`); a block that shrank and grows again
   * within its pages otherwise shows the bytes it held before it shrank.
   * @default {false}
   */
  zero?: boolean;
}

const OptionsSchema = z.object({ zero: z.boolean().optional() }).strict();

/**
 * Gives every block its own pages from `mmap`, locked in RAM with `mlock`:
 * they are never swapped out and never paged in on first touch, so a real-time
 * thread (an audio callback) or a device that reads the memory directly never
 * waits for the disk or a page fault. Blocks are page-aligned, take whole pages
 * (a 64-byte block holds a 4 KiB page) and are zero-filled. `free` detaches the
 * block's views, then unmaps its pages, which also unlocks them.
 *
 * Locked memory is limited per process by `RLIMIT_MEMLOCK` (often 8 MiB, as
 * little as 64 KiB on older systems; no limit with `CAP_IPC_LOCK`). When the
 * kernel refuses, `alloc` throws `AllocationError("platform")` whose message
 * names the limit, what the process already has locked and how to raise it;
 * `tryAlloc` returns `null`; nothing stays mapped.
 *
 * It is a `"system"` allocator: it asks the operating system for every block
 * (a few system calls and a page fault per page, several µs), so keep its
 * blocks for long, or carve small buffers from one block with an allocator
 * that takes it as `backing` (`new PoolAllocator({ blockSize, backing })`).
 *
 * @example Lock an audio buffer in RAM
 * ```ts
 * import { LockedPageAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using allocator = new LockedPageAllocator();
 * const samples = allocator.array(Float32Array, 4096); // 16 KiB, never swapped out
 * samples[0] = 0.5;
 * assert.equal(allocator.stats().capacityBytes, 16384);
 * allocator.free(samples);
 * assert.equal(samples.length, 0); // detached before its pages went back
 * ```
 */
export class LockedPageAllocator implements Allocator, Disposable {
  /** Always `"system"`: every block comes from the operating system. */
  readonly kind = "system" as const;
  readonly #blocks: LockedBlocks;

  /**
   * Creates an allocator; it maps and locks nothing until the first `alloc`.
   *
   * @param options Whether in-place growth zero-fills.
   * @throws {TypeError} For options of the wrong type or unknown keys.
   * @throws {AllocationError} "unsupported" when libc cannot be opened (e.g. Deno without `--allow-ffi`).
   */
  constructor(options?: LockedPageAllocatorOptions) {
    const parsed = parseOptions(OptionsSchema, options, "create LockedPageAllocator");
    this.#blocks = new LockedBlocks(this, {
      name: "LockedPageAllocator",
      label: "locked-page",
      guardPages: false,
      wipe: false,
      dontDump: false,
      zero: parsed.zero ?? false,
    });
  }

  /**
   * Maps `size` bytes (rounded up to whole pages) and locks them in RAM.
   * @param size Bytes, 0 to 2^47.
   * @param align A power of two up to the page size (blocks are page-aligned anyway). @default {16}
   * @throws {TypeError} When size or align is not a number.
   * @throws {RangeError} For a size or alignment out of range.
   * @throws {AllocationError} "platform" when the kernel refuses to lock the pages (the message names
   *   RLIMIT_MEMLOCK and how to raise it); "out-of-memory" when it cannot map them; "unsupported" for a size
   *   above what one ArrayBuffer holds in this runtime (`nativeInfo().maxViewBytes`: 4 GiB in Bun), before
   *   anything is mapped or locked.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    return this.#blocks.alloc(size, align);
  }

  /** Like {@linkcode LockedPageAllocator.alloc}, but `null` wherever `alloc` would throw an AllocationError. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    return this.#blocks.tryAlloc(size, align);
  }

  /**
   * A typed array of `length` elements in its own locked pages.
   * @throws {TypeError} When `ctor` is not a typed array constructor.
   */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return this.#blocks.array(ctor, length, align);
  }

  /**
   * Detaches the block's views and unmaps (and so unlocks) its pages.
   * @throws {TypeError} When `view` is not a typed array or DataView.
   * @throws {AllocationError} "double-free", "invalid-free" (foreign or interior view) or "mismatched-allocator".
   */
  free(view: ArrayBufferView): void {
    this.#blocks.free(view);
  }

  /**
   * Resizes a block, keeping `min(old, new)` bytes. A size that keeps the
   * page count stays in place (a new view; the old one is detached); any
   * other moves to new locked pages.
   * @throws {AllocationError} As `alloc` (the old block stays valid), and as `free` for a bad view.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    return this.#blocks.resize(view, newSize);
  }

  /** Whether `view` points into a live block of this allocator. */
  owns(view: ArrayBufferView): boolean {
    return this.#blocks.owns(view);
  }

  /** Counters; `capacityBytes` is the bytes locked (whole pages), `overheadBytes` the rounding to pages. */
  stats(): AllocatorStats {
    return this.#blocks.stats();
  }

  /**
   * Each live block's locked pages as a chunk (the guard pages around them are not listed), as a versioned
   * JSON description: see {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    return this.#blocks.dump("dump the LockedPageAllocator");
  }

  /**
   * Unmaps every live block (its views read as length 0) and ends the
   * allocator: every later call but `owns` and `stats` throws "use-after-free". A second call does nothing.
   */
  dispose(): void {
    this.#blocks.dispose();
  }

  /** Same as {@linkcode LockedPageAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
