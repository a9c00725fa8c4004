/**
 * Page mappings: anonymous memory straight from `mmap`, and files mapped into
 * memory.
 *
 * @module
 */
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { native } from "../../ffi/native.ts";
import { fileSystemError, platformError } from "../base/_platform_error.ts";
import { checkSize, describe, describePath, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import { PageMapping, protectionFlags, ProtectionSchema } from "./_page_mapping.ts";
import { AllocationError } from "../base/errors.ts";

/**
 * Page protection.
 *
 * @example
 * ```ts
 * import { mapPages, type Protection } from "@memkit/memkit";
 *
 * const protection: Protection = "read";
 * using pages = mapPages(4096, { protection });
 * ```
 */
export type Protection = "none" | "read" | "read-write";

/**
 * Advice to the kernel about how a mapping will be used (`madvise`).
 *
 * @example
 * ```ts
 * import { type Advice, mapPages } from "@memkit/memkit";
 *
 * using pages = mapPages(1 << 20);
 * const advice: Advice = "sequential";
 * pages.advise(advice);
 * ```
 */
export type Advice = "normal" | "random" | "sequential" | "will-need" | "dont-need" | "free" | "huge-page";

/**
 * A range of pages mapped with `mmap`.
 *
 * **Views.** `bytes` is a view over all of it, `view(offset, length)` a
 * window over part of it, each created on first use, and
 * `window(offset, length)` a window with a lifetime of its own. No view that could fault
 * is ever reachable: `protect("read")` or `protect("none")` detaches every
 * view handed out so far (they read as length 0), and while the protection is
 * below "read-write", `bytes` and `view()` throw (JavaScript has no read-only
 * typed array, and a store into a read-only page kills the process); copy
 * bytes out with `read()` instead. After `protect("read-write")`, get `bytes`
 * again: it is a new view.
 *
 * **Size.** One ArrayBuffer holds at most `maxViewBytes` bytes (Bun: 4 GiB;
 * Deno: 2^53 − 1): `bytes` of a larger mapping throws; use windows. Each
 * ArrayBuffer also counts its whole length as JavaScript heap while it lives
 * (Bun's `heapUsed`, and the heap size its collector plans for; Deno's
 * external memory), however little of it is touched: `bytes` counts the whole
 * mapping. A `view()` window counts the MiBs of the mapping it lies in, until
 * `protect()` or `unmap()`; a `window()` counts its own bytes until its
 * `close()`. To walk a mapping of many GiB, open a window, use it, close it.
 *
 * **Lifetime.** `unmap()` (or leaving a `using` block) detaches every view and
 * returns the pages; `bytes` then reads as a detached, empty view, and every
 * method but `unmap()` throws `AllocationError("use-after-free")` naming the
 * mapping.
 *
 * **Chains.** An allocator or array built over an Allocator written in
 * JavaScript that passes a mapping's bytes on (an Arena's backing that returns
 * `mapping.bytes`, a window's bytes, a frame's) leases that memory from the
 * mapping: `unmap()`, `protect()` below read-write and a window's `close()`
 * end it, so every view that allocator handed out reads as length 0 and its
 * next use throws `AllocationError("use-after-free")` naming the call.
 *
 * **Files.** A file mapping reads the file's pages, so a file truncated by
 * anyone (another process, or this one) while it is mapped turns the next
 * access past the new end into SIGBUS, which kills the process. memkit cannot
 * catch that in JavaScript: map only files that are not truncated while
 * mapped (for instance, write new data to a new file and rename it).
 *
 * @example
 * ```ts
 * import { AllocationError, type Mapping, mapPages } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const mapping: Mapping = mapPages(8192);
 * const bytes = mapping.bytes;
 * bytes.fill(1);
 * mapping.protect("read");
 * assert.equal(bytes.length, 0); // detached: a store can no longer fault
 * assert.deepEqual([...mapping.read(0, 3)], [1, 1, 1]); // a copy
 * assert.throws(() => mapping.bytes, AllocationError);
 * mapping.protect("read-write");
 * mapping.bytes[0] = 2; // a new view
 * mapping.unmap();
 * assert.equal(mapping.bytes.length, 0);
 * ```
 */
export interface Mapping extends Disposable {
  /** Address of the first byte. */
  readonly address: number;
  /** Length in bytes (whole pages for `mapPages`, the file size for `mapFile`); 0 after `unmap()`. */
  readonly byteLength: number;
  /** The protection set last (`mapPages`' option, "read-write" for `mapFile`, then `protect()`). */
  readonly protection: Protection;
  /**
   * The mapped bytes, one view over all of them, created on first use; an
   * empty, detached view after `unmap()`. Its buffer counts the whole mapping
   * as JavaScript heap (see {@linkcode Mapping}): for a large mapping prefer
   * windows.
   * @throws {AllocationError} "unsupported" while the protection is "read" or
   *   "none" (use `read()`), or when the mapping is larger than one ArrayBuffer
   *   can be on this runtime (use `view()`).
   */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /**
   * A window of `length` bytes from `offset`: a writable view over the mapped
   * memory, detached (length 0) with `bytes` by `protect("read" | "none")` and
   * `unmap()`. It is a view into `bytes`' buffer when that was made, else into
   * a buffer over the whole MiBs of the mapping around it, made on first use
   * and shared by later windows there; memkit keeps each such buffer (to
   * detach it) until `protect()` below read-write or `unmap()`.
   * @param offset Byte offset, 0 to `byteLength`. @default {0}
   * @param length Bytes, up to `byteLength - offset` and `maxViewBytes`. @default {byteLength - offset}
   * @throws {TypeError} For a non-number offset or length.
   * @throws {RangeError} For a range that is not inside the mapping.
   * @throws {AllocationError} "unsupported" while the protection is below "read-write" or for a
   *   window larger than one ArrayBuffer can be; "use-after-free" after `unmap()`.
   */
  view(offset?: number, length?: number): Uint8Array<ArrayBuffer>;
  /**
   * A window of `length` bytes from `offset` with a lifetime of its own: its
   * `bytes` are over an ArrayBuffer of exactly those bytes, which its
   * `close()` detaches (as do `protect()` below read-write and `unmap()`), so
   * the window stops counting as JavaScript heap. Use it with `using`.
   * @param offset Byte offset, 0 to `byteLength`. @default {0}
   * @param length Bytes, up to `byteLength - offset` and `maxViewBytes`. @default {byteLength - offset}
   * @throws {TypeError} For a non-number offset or length.
   * @throws {RangeError} For a range that is not inside the mapping.
   * @throws {AllocationError} "unsupported" while the protection is below "read-write" or for a
   *   window larger than one ArrayBuffer can be; "use-after-free" after `unmap()`.
   */
  window(offset?: number, length?: number): MappingWindow;
  /**
   * A copy of `length` bytes from `offset`, in a new JS-owned Uint8Array: the
   * read path while the protection is "read".
   * @param offset Byte offset, 0 to `byteLength`. @default {0}
   * @param length Bytes, up to `byteLength - offset`. @default {byteLength - offset}
   * @throws {TypeError} For a non-number offset or length.
   * @throws {RangeError} For a range that is not inside the mapping.
   * @throws {AllocationError} "unsupported" while the protection is "none", or for more bytes than one
   *   ArrayBuffer can hold; "use-after-free" after `unmap()`.
   */
  read(offset?: number, length?: number): Uint8Array<ArrayBuffer>;
  /**
   * Changes the protection of every page (`mprotect`). Going below
   * "read-write" detaches `bytes` and every window first.
   * @throws {TypeError} For another value.
   * @throws {AllocationError} "platform" when the kernel refuses (nothing changes then);
   *   "use-after-free" after `unmap()`.
   */
  protect(p: Protection): void;
  /**
   * Tells the kernel how the pages will be used (`madvise`).
   * @throws {AllocationError} "unsupported" for advice this OS lacks; "platform" when the kernel refuses;
   *   "use-after-free" after `unmap()`.
   */
  advise(a: Advice): void;
  /**
   * Pins the pages in RAM (`mlock`; limited by RLIMIT_MEMLOCK).
   * @throws {AllocationError} "platform" when the kernel refuses; "use-after-free" after `unmap()`.
   */
  lock(): void;
  /**
   * Undoes `lock()`.
   * @throws {AllocationError} "platform" when the kernel refuses; "use-after-free" after `unmap()`.
   */
  unlock(): void;
  /**
   * Writes changed pages of a shared file mapping back to the file (`msync`).
   * @throws {AllocationError} "platform" when the kernel refuses; "use-after-free" after `unmap()`.
   */
  sync(): void;
  /**
   * Detaches `bytes` and every window, ends what allocators over the mapping's bytes handed out (see
   * "Chains" above), and unmaps the pages; a second call does nothing.
   */
  unmap(): void;
}

/**
 * A window of a {@linkcode Mapping} that ends on its own: `bytes` is a view
 * over an ArrayBuffer of exactly the window's bytes, detached (length 0) by
 * `close()`, by the mapping's `protect()` below "read-write" and by its
 * `unmap()`. While open, it counts its own length as JavaScript heap, not the
 * mapping's (see {@linkcode Mapping}).
 *
 * @example Walk a mapping larger than one ArrayBuffer, one window at a time
 * ```ts
 * import { mapPages } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pages = mapPages(2 ** 33, { protection: "none" }); // 8 GiB of address space, no RAM
 * pages.protect("read-write");
 * for (const offset of [0, 2 ** 32, 2 ** 33 - (1 << 20)]) {
 *   using window = pages.window(offset, 1 << 20);
 *   window.bytes[0] = 7;
 * } // each window is detached at the end of its block
 * assert.equal(pages.read(2 ** 32, 1)[0], 7);
 * ```
 */
export interface MappingWindow extends Disposable {
  /** Offset of the window's first byte in the mapping. */
  readonly offset: number;
  /** Length in bytes; 0 once closed. */
  readonly byteLength: number;
  /** The window's bytes; an empty, detached view once closed. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Whether `close()`, or the mapping's `protect()` below "read-write" or `unmap()`, ended the window. */
  readonly closed: boolean;
  /**
   * Detaches `bytes` (and every view over its buffer), and ends what an allocator over the window's bytes
   * handed out (see "Chains" in {@linkcode Mapping}); a second call does nothing.
   */
  close(): void;
}

/**
 * Options of {@linkcode mapPages}.
 *
 * @example
 * ```ts
 * import { mapPages, type MapPagesOptions } from "@memkit/memkit";
 *
 * const options: MapPagesOptions = { populate: true, protection: "read-write" };
 * using pages = mapPages(1 << 16, options);
 * ```
 */
export interface MapPagesOptions {
  /** Page protection to start with. @default {"read-write"} */
  protection?: Protection;
  /** Ask for transparent huge pages (`MADV_HUGEPAGE`; Linux only). @default {false} */
  hugePages?: boolean;
  /** Fault every page in now instead of on first touch. @default {false} */
  populate?: boolean;
  /** Shared with child processes instead of private. @default {false} */
  shared?: boolean;
}

/**
 * Options of {@linkcode mapFile}. Stores reach the file only with `write`
 * and `shared` both true; every other combination is a private copy-on-write
 * mapping, where a store changes this mapping's copy of the page and never
 * the file.
 *
 * @example
 * ```ts
 * import { mapFile, type MapFileOptions } from "@memkit/memkit";
 * import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import assert from "node:assert/strict";
 *
 * const path = `${mkdtempSync(`${tmpdir()}/memkit-`)}/scratch.bin`;
 * writeFileSync(path, new Uint8Array(16));
 * const privateCopy: MapFileOptions = { write: true, shared: false };
 * using file = mapFile(path, privateCopy);
 * file.bytes[0] = 1; // copy-on-write: the file keeps its 0
 * assert.equal(readFileSync(path)[0], 0);
 * ```
 */
export interface MapFileOptions {
  /** With `shared`, stores reach the file (which must then be writable). @default {false} */
  write?: boolean;
  /** With `write`: `true`, stores reach the file and other mappers; `false`, private copy-on-write. @default {true} */
  shared?: boolean;
}

const MapPagesSchema = z.object({
  protection: ProtectionSchema.optional(),
  hugePages: z.boolean().optional(),
  populate: z.boolean().optional(),
  shared: z.boolean().optional(),
}).strict();

const MapFileSchema = z.object({
  write: z.boolean().optional(),
  shared: z.boolean().optional(),
}).strict();

/**
 * Maps fresh anonymous pages: zero-filled, page-aligned, and not backed by RAM
 * until touched (unless `populate`). `byteLength` is rounded up to whole pages.
 * With protection "read" or "none", `bytes` and `view()` throw until
 * `protect("read-write")` (see {@linkcode Mapping}); a mapping larger than
 * one ArrayBuffer can be (4 GiB on Bun) is used through windows.
 *
 * Protection "none" maps a reservation (`MAP_NORESERVE`): address space that
 * the kernel does not charge to its commit limit, even after
 * `protect("read-write")`. Its pages take RAM only when touched; if none is
 * left then, the process is killed instead of `mmap` failing up front.
 *
 * @param byteLength Bytes wanted, 1 to 2^47.
 * @param options Protection, huge pages, populate, shared.
 * @returns The mapping; unmap it, or let `using` do it.
 * @throws {TypeError} For a non-number length or bad options.
 * @throws {RangeError} For a length that is not an integer from 1 to 2^47.
 * @throws {AllocationError} "out-of-memory" when mmap fails; "unsupported" for huge pages off Linux,
 *   or without FFI (Deno without `--allow-ffi`).
 *
 * @example Reserve a large range cheaply
 * ```ts
 * import { mapPages } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * {
 *   using pages = mapPages(1 << 20);
 *   pages.bytes[0] = 42;
 *   assert.equal(pages.bytes[0], 42);
 *   pages.protect("read");
 *   assert.equal(pages.read(0, 1)[0], 42);
 * } // unmapped here; every view is detached
 * ```
 *
 * @example Windows into a mapping larger than one ArrayBuffer
 * ```ts
 * import { mapPages } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * using pages = mapPages(2 ** 33, { protection: "none" }); // 8 GiB of address space, no RAM
 * pages.protect("read-write");
 * const window = pages.view(2 ** 32 + 4096, 4096); // past 4 GiB: fine on Bun too
 * window[0] = 1;
 * assert.equal(pages.read(2 ** 32 + 4096, 1)[0], 1);
 * ```
 */
export function mapPages(byteLength: number, options?: MapPagesOptions): Mapping {
  if (options === undefined) options = {};
  checkSize(byteLength, "map pages", "byteLength", MAX_BLOCK_SIZE, 1);
  const parsed = parseOptions(MapPagesSchema, options, "map pages");
  if (native.libcError) throw new AllocationError("unsupported", native.libcError);
  const c = native.platform;
  if (parsed.hugePages && c.MADV_HUGEPAGE < 0) {
    throw new AllocationError("unsupported", `Cannot map huge pages: ${native.os} has no transparent huge pages`);
  }
  const length = Math.ceil(byteLength / native.pageSize) * native.pageSize;
  let flags = c.MAP_ANONYMOUS | (parsed.shared ? c.MAP_SHARED : c.MAP_PRIVATE);
  if (parsed.populate && c.MAP_POPULATE) flags |= c.MAP_POPULATE;
  const protection = parsed.protection ?? "read-write";
  // An inaccessible mapping is a reservation: not charged to the commit limit,
  // even after protect("read-write").
  if (protection === "none") flags |= c.MAP_NORESERVE;
  const address = native.libc.mmap(0, length, protectionFlags(protection), flags, -1, 0);
  if (address >= 2 ** 63 || address === 0) {
    throw platformError("mmap", `${length} bytes, ${protection}`, "out-of-memory");
  }
  const mapping = new PageMapping(address, length, `${length} mapped bytes at 0x${address.toString(16)}`, protection);
  if (parsed.hugePages) mapping.advise("huge-page");
  if (parsed.populate && !c.MAP_POPULATE) mapping.advise("will-need");
  return mapping;
}

/**
 * Maps a file into memory, zero-copy: `bytes` reads the file's pages
 * directly. An empty file gives an empty mapping.
 *
 * By default (no `write`), the mapping is private copy-on-write
 * (`MAP_PRIVATE | MAP_NORESERVE`, readable and writable): a store through
 * `bytes` changes this mapping's copy of that page, never the file, and
 * cannot crash the process; pages never stored to keep reading the file
 * (on Linux, also changes others make to it later). With `write` and
 * `shared`, the mapping is `MAP_SHARED`: stores reach the file and other
 * mappers, and `sync()` flushes them. The copied pages of a private mapping
 * are anonymous memory, taken from RAM as they are written (the kernel
 * reserves none up front).
 *
 * Truncation: if the file is truncated (by another process or this one)
 * while mapped, reading or writing a page past its new end raises SIGBUS,
 * and the process dies; JavaScript cannot catch it. Map files that nobody
 * truncates while they are mapped (write new contents to a new file and
 * rename it over the old one instead).
 *
 * @param path A path or `file:` URL.
 * @param options `write` and `shared`.
 * @returns The mapping, protection "read-write"; unmap it, or let `using` do it.
 * @throws {TypeError} For a path that is not a string or URL, or is not a regular file; for bad options.
 * @throws {RangeError} For a file larger than 2^47 bytes.
 * @throws {AllocationError} "platform" when stat, open or mmap fails (the message names the errno);
 *   "unsupported" without FFI (Deno without `--allow-ffi`).
 *
 * @example Read a file without copying it
 * ```ts
 * import { mapFile } from "@memkit/memkit";
 * import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import assert from "node:assert/strict";
 *
 * const path = `${mkdtempSync(`${tmpdir()}/memkit-`)}/data.bin`;
 * writeFileSync(path, new Uint8Array([1, 2, 3]));
 * {
 *   using file = mapFile(path); // private copy-on-write
 *   assert.deepEqual([...file.bytes], [1, 2, 3]);
 *   file.bytes[0] = 7; // changes this mapping only
 *   assert.equal(readFileSync(path)[0], 1);
 * }
 * using shared = mapFile(path, { write: true, shared: true });
 * shared.bytes[0] = 9; // reaches the file
 * shared.sync();
 * assert.equal(readFileSync(path)[0], 9);
 * ```
 */
export function mapFile(path: string | URL, options?: MapFileOptions): Mapping {
  if (options === undefined) options = {};
  if (typeof path !== "string" && !(path instanceof URL)) {
    throw new TypeError(`Cannot map a file as 'path' must be a string or URL: current value is ${describe(path)}`);
  }
  const parsed = parseOptions(MapFileSchema, options, "map a file");
  if (path instanceof URL && path.protocol !== "file:") {
    throw new TypeError(
      `Cannot map a file as 'path' must be a file: URL or a path: current value is ${describe(path.href)}`,
    );
  }
  const filePath = path instanceof URL ? fileURLToPath(path) : path;
  if (filePath.length === 0 || filePath.includes("\0")) {
    throw new TypeError(`Cannot map a file as 'path' must be a non-empty path: current value is ${describe(path)}`);
  }
  // stat through the runtime first: it honours Deno's --allow-read and tells the size.
  let stat;
  try {
    stat = statSync(filePath);
  } catch (error) {
    // Permission errors (Deno's NotCapable) pass through unchanged; file-system errors are platform errors.
    throw fileSystemError(error, "stat", `map ${describePath(filePath)}`);
  }
  if (!stat.isFile()) {
    throw new TypeError(`Cannot map ${describePath(filePath)} as it is not a regular file`);
  }
  if (stat.size > MAX_BLOCK_SIZE) {
    throw new RangeError(`Cannot map ${describePath(filePath)} as it is larger than 2^47 bytes`);
  }
  if (native.libcError) throw new AllocationError("unsupported", native.libcError);
  const write = parsed.write ?? false;
  const shared = parsed.shared ?? true;
  const label = `file ${describePath(filePath)}`;
  if (stat.size === 0) return new PageMapping(0, 0, label, "read-write");

  const c = native.platform;
  const cPath = new TextEncoder().encode(`${filePath}\0`);
  const fd = native.libc.open(cPath, (write && shared ? c.O_RDWR : c.O_RDONLY) | c.O_CLOEXEC);
  if (fd < 0) throw platformError("open", label);
  // Always writable, so no store through `bytes` can fault. Unless stores are to
  // reach the file, the mapping is private copy-on-write, and MAP_NORESERVE
  // keeps the kernel from charging the whole file to the commit limit (without
  // it, a private writable mapping of a 64 GiB file fails with ENOMEM on a
  // 23 GiB machine in the default overcommit mode).
  const flags = write && shared ? c.MAP_SHARED : c.MAP_PRIVATE | c.MAP_NORESERVE;
  const address = native.libc.mmap(0, stat.size, c.PROT_READ | c.PROT_WRITE, flags, fd, 0);
  const failed = address >= 2 ** 63 || address === 0;
  const error = failed ? platformError("mmap", `${label}, ${stat.size} bytes`) : null;
  native.libc.close(fd); // The mapping keeps the file open on its own.
  if (error) throw error;
  return new PageMapping(address, stat.size, label, "read-write");
}
