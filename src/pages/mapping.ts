/**
 * Page mappings: anonymous memory straight from `mmap`, and files mapped into
 * memory.
 *
 * @module
 */
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { native } from "../../ffi/native.ts";
import { platformError } from "../base/_platform_error.ts";
import { checkSize, describe, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
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
 * A range of pages mapped with `mmap`. `bytes` is a view over all of it,
 * created on first use. `unmap()` (or leaving a `using` block) detaches
 * `bytes` and returns the pages; every other method then throws
 * `AllocationError("use-after-free")`.
 * @example
 * ```ts
 * import { type Mapping, mapPages } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const mapping: Mapping = mapPages(8192);
 * mapping.bytes.fill(1);
 * mapping.protect("read");
 * mapping.unmap();
 * assert.equal(mapping.bytes.length, 0);
 * ```
 */
export interface Mapping extends Disposable {
  /** Address of the first byte. */
  readonly address: number;
  /** Length in bytes (whole pages for `mapPages`, the file size for `mapFile`). */
  readonly byteLength: number;
  /** The mapped bytes; length 0 after `unmap()`. */
  readonly bytes: Uint8Array;
  /** Changes the protection of every page (`mprotect`). */
  protect(p: Protection): void;
  /** Tells the kernel how the pages will be used (`madvise`). */
  advise(a: Advice): void;
  /** Pins the pages in RAM (`mlock`; limited by RLIMIT_MEMLOCK). */
  lock(): void;
  /** Undoes `lock()`. */
  unlock(): void;
  /** Writes changed pages of a shared file mapping back to the file (`msync`). */
  sync(): void;
  /** Detaches `bytes` and unmaps the pages; a second call does nothing. */
  unmap(): void;
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
 * Options of {@linkcode mapFile}.
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
  /** Map writable (the file must be writable when `shared`). @default {false} */
  write?: boolean;
  /** `true`: writes reach the file and other mappers; `false`: private copy-on-write. @default {true} */
  shared?: boolean;
}

const ProtectionSchema = z.enum(["none", "read", "read-write"]);
const AdviceSchema = z.enum(["normal", "random", "sequential", "will-need", "dont-need", "free", "huge-page"]);

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

function protectionFlags(p: Protection): number {
  const c = native.platform;
  return p === "none" ? c.PROT_NONE : p === "read" ? c.PROT_READ : c.PROT_READ | c.PROT_WRITE;
}

function checkEnum<T extends string>(schema: z.ZodType<T>, value: unknown, op: string, name: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const options = (schema as unknown as { options: string[] }).options.map((o) => `"${o}"`).join(", ");
    throw new TypeError(`Cannot ${op} as '${name}' must be one of ${options}: current value is ${describe(value)}`);
  }
  return result.data;
}

class PageMapping implements Mapping {
  readonly #address: number;
  readonly #byteLength: number;
  readonly #label: string;
  #bytes: Uint8Array | null = null;
  #unmapped = false;

  constructor(address: number, byteLength: number, label: string) {
    this.#address = address;
    this.#byteLength = byteLength;
    this.#label = label;
  }

  get address(): number {
    return this.#address;
  }

  get byteLength(): number {
    return this.#unmapped ? 0 : this.#byteLength;
  }

  get bytes(): Uint8Array {
    if (this.#bytes === null) {
      // Created lazily: wrapping a large mapping costs time in Bun.
      this.#bytes = this.#unmapped || this.#byteLength === 0
        ? new Uint8Array(0)
        : new Uint8Array(native.wrap(this.#address, this.#byteLength));
    }
    return this.#bytes;
  }

  protect(p: Protection): void {
    const protection = checkEnum(ProtectionSchema, p, "protect", "protection");
    if (this.#live("protect")) return;
    if (native.libc.mprotect(this.#address, this.#byteLength, protectionFlags(protection)) !== 0) {
      throw platformError("mprotect", `${this.#label}, ${protection}`);
    }
  }

  advise(a: Advice): void {
    const advice = checkEnum(AdviceSchema, a, "advise", "advice");
    if (this.#live("advise")) return;
    const c = native.platform;
    const value = {
      "normal": c.MADV_NORMAL,
      "random": c.MADV_RANDOM,
      "sequential": c.MADV_SEQUENTIAL,
      "will-need": c.MADV_WILLNEED,
      "dont-need": c.MADV_DONTNEED,
      "free": c.MADV_FREE,
      "huge-page": c.MADV_HUGEPAGE,
    }[advice];
    if (value < 0) {
      throw new AllocationError("unsupported", `Cannot advise "${advice}": ${native.os} has no such madvise advice`);
    }
    if (native.libc.madvise(this.#address, this.#byteLength, value) !== 0) {
      throw platformError("madvise", `${this.#label}, ${advice}`);
    }
  }

  lock(): void {
    if (this.#live("lock")) return;
    if (native.libc.mlock(this.#address, this.#byteLength) !== 0) {
      throw platformError("mlock", this.#label);
    }
  }

  unlock(): void {
    if (this.#live("unlock")) return;
    if (native.libc.munlock(this.#address, this.#byteLength) !== 0) {
      throw platformError("munlock", this.#label);
    }
  }

  sync(): void {
    if (this.#live("sync")) return;
    if (native.libc.msync(this.#address, this.#byteLength, native.platform.MS_SYNC) !== 0) {
      throw platformError("msync", this.#label);
    }
  }

  unmap(): void {
    if (this.#unmapped) return;
    this.#unmapped = true;
    // Detach before munmap: a view over unmapped pages would segfault on use.
    (this.#bytes?.buffer as ArrayBuffer | undefined)?.transfer(0);
    this.#bytes ??= new Uint8Array(0);
    if (this.#byteLength > 0 && native.libc.munmap(this.#address, this.#byteLength) !== 0) {
      throw platformError("munmap", this.#label);
    }
  }

  [Symbol.dispose](): void {
    this.unmap();
  }

  // Throws after unmap; true for an empty mapping, where there is nothing to do.
  #live(op: string): boolean {
    if (this.#unmapped) {
      throw new AllocationError("use-after-free", `Cannot ${op} ${this.#label}: it was unmapped`);
    }
    return this.#byteLength === 0;
  }
}

/**
 * Maps fresh anonymous pages: zero-filled, page-aligned, and not backed by RAM
 * until touched (unless `populate`). `byteLength` is rounded up to whole pages.
 *
 * @param byteLength Bytes wanted, 1 to 2^47.
 * @param options Protection, huge pages, populate, shared.
 * @returns The mapping; unmap it, or let `using` do it.
 * @throws {TypeError} For a non-number length or bad options.
 * @throws {RangeError} For a length that is not an integer from 1 to 2^47.
 * @throws {AllocationError} "out-of-memory" when mmap fails; "unsupported" for huge pages off Linux.
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
 * } // unmapped here; `bytes` is detached
 * ```
 */
export function mapPages(byteLength: number, options: MapPagesOptions = {}): Mapping {
  checkSize(byteLength, "map pages", "byteLength");
  if (byteLength === 0) {
    throw new RangeError("Cannot map pages as 'byteLength' must be an integer from 1 to 2^47: current value is 0");
  }
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
  const address = native.libc.mmap(0, length, protectionFlags(protection), flags, -1, 0);
  if (address >= 2 ** 63 || address === 0) {
    throw platformError("mmap", `${length} bytes, ${protection}`, "out-of-memory");
  }
  const mapping = new PageMapping(address, length, `${length} mapped bytes at 0x${address.toString(16)}`);
  if (parsed.hugePages) mapping.advise("huge-page");
  if (parsed.populate && !c.MAP_POPULATE) mapping.advise("will-need");
  return mapping;
}

/**
 * Maps a file into memory, zero-copy: `bytes` reads the file's pages
 * directly. With `write` and `shared` (the default), writes through `bytes`
 * change the file; `sync()` flushes them. An empty file gives an empty mapping.
 *
 * @param path A path or `file:` URL.
 * @param options `write` and `shared`.
 * @returns The mapping; unmap it, or let `using` do it.
 * @throws {TypeError} For a path that is not a string or URL, or is not a regular file.
 * @throws {AllocationError} "platform" when open or mmap fails (the message names the errno).
 *
 * @example Read a file without copying it
 * ```ts
 * import { mapFile } from "@memkit/memkit";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import assert from "node:assert/strict";
 *
 * const path = `${mkdtempSync(`${tmpdir()}/memkit-`)}/data.bin`;
 * writeFileSync(path, new Uint8Array([1, 2, 3]));
 * using file = mapFile(path, { write: true });
 * assert.deepEqual([...file.bytes], [1, 2, 3]);
 * file.bytes[0] = 9; // reaches the file: the mapping is shared
 * ```
 */
export function mapFile(path: string | URL, options: MapFileOptions = {}): Mapping {
  if (typeof path !== "string" && !(path instanceof URL)) {
    throw new TypeError(`Cannot map a file as 'path' must be a string or URL: current value is ${describe(path)}`);
  }
  const parsed = parseOptions(MapFileSchema, options, "map a file");
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
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string") throw error;
    throw new AllocationError("platform", `Cannot map ${describe(filePath)}: stat failed with ${code}`, {
      cause: error,
      call: "stat",
    });
  }
  if (!stat.isFile()) {
    throw new TypeError(`Cannot map ${describe(filePath)} as it is not a regular file`);
  }
  if (stat.size > MAX_BLOCK_SIZE) {
    throw new RangeError(`Cannot map ${describe(filePath)} as it is larger than 2^47 bytes`);
  }
  if (native.libcError) throw new AllocationError("unsupported", native.libcError);
  const write = parsed.write ?? false;
  const shared = parsed.shared ?? true;
  const label = `file ${describe(filePath)}`;
  if (stat.size === 0) return new PageMapping(0, 0, label);

  const c = native.platform;
  const cPath = new TextEncoder().encode(`${filePath}\0`);
  const fd = native.libc.open(cPath, (write && shared ? c.O_RDWR : c.O_RDONLY) | c.O_CLOEXEC);
  if (fd < 0) throw platformError("open", label);
  const protection = write ? c.PROT_READ | c.PROT_WRITE : c.PROT_READ;
  const address = native.libc.mmap(0, stat.size, protection, shared ? c.MAP_SHARED : c.MAP_PRIVATE, fd, 0);
  const failed = address >= 2 ** 63 || address === 0;
  const error = failed ? platformError("mmap", `${label}, ${stat.size} bytes`) : null;
  native.libc.close(fd); // The mapping keeps the file open on its own.
  if (error) throw error;
  return new PageMapping(address, stat.size, label);
}
