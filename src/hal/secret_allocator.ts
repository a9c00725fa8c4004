/**
 * An allocator for keys, passwords and other secrets: guarded, locked,
 * kept out of core dumps, wiped on free.
 *
 * @module
 */
import type { Allocator, AllocatorStats, TypedArray, TypedArrayConstructor } from "../base/allocator.ts";
import type { AllocatorDump } from "../alloc/dump.ts";
import { LockedBlocks } from "./_locked_blocks.ts";

/**
 * Gives every block its own mapping, built for secrets (the HAL's `secret` flag):
 *
 * - **Guard pages.** An inaccessible (`PROT_NONE`) page sits on each side of
 *   the block's pages, and the block *ends* where the upper one begins. A
 *   native write one byte past the end (a C library handed the address, an
 *   off-by-one in a kernel) kills the process with SIGSEGV instead of leaking
 *   into a neighbour. (When `size` is not a multiple of `align`, the end is
 *   rounded down to the alignment, leaving up to `align - 1` unguarded bytes.)
 *   A write before the start faults once it leaves the block's first page.
 *   JavaScript views are bounds-checked and never reach a guard page.
 * - **Locked** in RAM with `mlock`: never written to swap. The same
 *   `RLIMIT_MEMLOCK` applies as for {@linkcode LockedPageAllocator}, with the
 *   same `AllocationError("platform")` that explains it.
 * - **Out of core dumps** with `madvise(MADV_DONTDUMP)` on Linux (the `dd`
 *   flag in `/proc/self/smaps`). macOS has no such advice: there the pages are
 *   guarded, locked and wiped but would appear in a core dump, which macOS
 *   writes only when `ulimit -c` allows it and `/cores` is writable (both off
 *   by default).
 * - **Wiped**: `free`, a moving `resize` and `dispose` zero the block before
 *   its views are detached and its pages unmapped.
 *
 * Every block costs a mapping and several system calls (`mmap`, `mprotect`,
 * `madvise`, `mlock`, `munmap`) and at least one page of locked memory: use
 * it for the few bytes that must not leak, not as a general allocator.
 * `resize` always moves the block to new pages (its end must stay at the guard).
 *
 * @example Keep a key out of swap and core dumps
 * ```ts
 * import { SecretAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using secrets = new SecretAllocator();
 * const key = secrets.alloc(32);
 * crypto.getRandomValues(key);
 * // ... use the key ...
 * secrets.free(key); // zeroed, then detached, then unmapped
 * assert.equal(key.length, 0);
 * ```
 */
export class SecretAllocator implements Allocator, Disposable {
  /** Always `"system"`: every block comes from the operating system. */
  readonly kind = "system" as const;
  readonly #blocks: LockedBlocks;

  /**
   * Creates an allocator; it maps nothing until the first `alloc`.
   *
   * @throws {AllocationError} "unsupported" when libc cannot be opened (e.g. Deno without `--allow-ffi`).
   */
  constructor() {
    this.#blocks = new LockedBlocks(this, {
      name: "SecretAllocator",
      label: "secret",
      guardPages: true,
      wipe: true,
      dontDump: true,
      zero: true,
    });
  }

  /**
   * Maps a fenced, locked block of `size` bytes (zero-filled).
   * @param size Bytes, 0 to 2^47.
   * @param align A power of two up to the page size. @default {16}
   * @throws {TypeError} When size or align is not a number.
   * @throws {RangeError} For a size or alignment out of range.
   * @throws {AllocationError} "platform" when the kernel refuses to lock the pages (the message names
   *   RLIMIT_MEMLOCK and how to raise it) or to exclude them from core dumps; "out-of-memory" when it
   *   cannot map or fence them; "unsupported" for a size above what one ArrayBuffer holds in this runtime
   *   (`nativeInfo().maxViewBytes`: 4 GiB in Bun), before anything is mapped or locked.
   */
  alloc(size: number, align?: number): Uint8Array<ArrayBuffer> {
    return this.#blocks.alloc(size, align);
  }

  /** Like {@linkcode SecretAllocator.alloc}, but `null` wherever `alloc` would throw an AllocationError. */
  tryAlloc(size: number, align?: number): Uint8Array<ArrayBuffer> | null {
    return this.#blocks.tryAlloc(size, align);
  }

  /**
   * A typed array of `length` elements in its own fenced block.
   * @throws {TypeError} When `ctor` is not a typed array constructor.
   */
  array<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number, align?: number): T {
    return this.#blocks.array(ctor, length, align);
  }

  /**
   * Zeroes the block, detaches its views and unmaps its pages. A block whose
   * ArrayBuffer was transferred away is zeroed too, then kept mapped (the
   * buffer that went away still reaches it) and refused with "corruption".
   * @throws {TypeError} When `view` is not a typed array or DataView.
   * @throws {AllocationError} "double-free", "invalid-free" (foreign or interior view), "mismatched-allocator",
   *   or "corruption" (its buffer was transferred away; its bytes are zeroed).
   */
  free(view: ArrayBufferView): void {
    this.#blocks.free(view);
  }

  /**
   * Moves the block to a new fenced block of `newSize` bytes, keeping
   * `min(old, new)` bytes; the old one is wiped and unmapped.
   * @throws {AllocationError} As `alloc` (the old block stays valid), and as `free` for a bad view.
   */
  resize(view: ArrayBufferView, newSize: number): Uint8Array<ArrayBuffer> {
    return this.#blocks.resize(view, newSize);
  }

  /** Whether `view` points into a live block of this allocator. */
  owns(view: ArrayBufferView): boolean {
    return this.#blocks.owns(view);
  }

  /**
   * Counters; `capacityBytes` is the bytes locked (whole pages; the guard
   * pages hold address space, not memory, and are not counted).
   */
  stats(): AllocatorStats {
    return this.#blocks.stats();
  }

  /**
   * Each live block's locked pages as a chunk (the guard pages around them are not listed), as a versioned
   * JSON description: see {@linkcode AllocatorDump}.
   * @throws {AllocationError} "use-after-free" after `dispose()`.
   */
  dump(): AllocatorDump {
    return this.#blocks.dump("dump the SecretAllocator");
  }

  /**
   * Wipes and unmaps every live block (its views read as length 0; one whose
   * buffer was transferred away is wiped and stays mapped) and ends
   * the allocator: every later call but `owns` and `stats` throws "use-after-free". A second call does nothing.
   */
  dispose(): void {
    this.#blocks.dispose();
  }

  /** Same as {@linkcode SecretAllocator.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
