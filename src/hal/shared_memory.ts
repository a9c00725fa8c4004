/**
 * Named shared memory: one mapping that other Workers and other processes
 * open by name and see the same bytes.
 *
 * @module
 */
import { closeSync, linkSync, lstatSync, openSync, statSync, unlinkSync } from "node:fs";
import { native } from "../../ffi/native.ts";
import { errnoName, fileSystemError, platformError } from "../base/_platform_error.ts";
import { describe, MAX_BLOCK_SIZE, parseOptions, z } from "../base/_validate.ts";
import { AllocationError } from "../base/errors.ts";
import { PageMapping } from "../pages/_page_mapping.ts";
import { releasingFor } from "../alloc/_lease.ts";
import type { Mapping } from "../pages/mapping.ts";
import { byteCount, checkSize, describeValue } from "./_words.ts";

/**
 * A named shared mapping from {@linkcode openSharedMemory}: a
 * {@linkcode Mapping} (so `bytes`, `view()`, `read()`, `lock()` and the rest
 * work as for any mapping) that every opener of the same name shares.
 *
 * `close()` (or leaving a `using` block) detaches every view and unmaps this
 * process's mapping; the memory and its name live on until `unlink()` and the
 * last mapping closes, as with POSIX shared memory.
 *
 * @example
 * ```ts
 * import { openSharedMemory, type SharedMemory } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const name = `memkit-doc-${crypto.randomUUID().slice(0, 8)}`;
 * const memory: SharedMemory = openSharedMemory(name, 4096, { create: true });
 * memory.bytes[0] = 1;
 * assert.equal(memory.name, name);
 * memory.close();
 * assert.equal(memory.bytes.length, 0); // detached
 * assert.equal(memory.unlink(), true); // the name goes; nobody can open it any more
 * ```
 */
export interface SharedMemory extends Mapping {
  /** The name it was opened by. */
  readonly name: string;
  /** Detaches `bytes` and every window and unmaps this process's mapping; a second call does nothing. */
  close(): void;
  /**
   * Removes the name, so later opens fail (or create a new object); mappings
   * already open, here and elsewhere, keep working. Works after `close()` too.
   * @returns `true` when it removed the name; `false` when the name was already
   *   gone or now names another object (created after this one was unlinked),
   *   which it leaves alone.
   * @throws {AllocationError} "platform" when the system refuses.
   */
  unlink(): boolean;
}

/**
 * Options of {@linkcode openSharedMemory}.
 *
 * @example
 * ```ts
 * import { openSharedMemory, type OpenSharedMemoryOptions } from "@memkit/memkit";
 *
 * const options: OpenSharedMemoryOptions = { create: true, exclusive: true };
 * using memory = openSharedMemory(`memkit-doc-${crypto.randomUUID().slice(0, 8)}`, 1024, options);
 * memory.unlink();
 * ```
 */
export interface OpenSharedMemoryOptions {
  /**
   * Create it when the name is free (then `byteLength` is required). An
   * existing object is opened instead, and grown (never shrunk) to
   * `byteLength` if it is smaller (Linux; macOS cannot resize a shared
   * memory object once sized and refuses instead).
   * @default {false}
   */
  create?: boolean;
  /** With `create`: fail when the name exists instead of opening it. @default {false} */
  exclusive?: boolean;
}

const OptionsSchema = z.object({ create: z.boolean().optional(), exclusive: z.boolean().optional() }).strict();

/** The longest name: macOS allows 31 bytes including the leading slash (PSHMNAMLEN), so the same name works on both. */
export const MAX_SHARED_MEMORY_NAME = 30;
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
// Linux keeps POSIX shared memory as files in this tmpfs, where shm_open itself puts them.
const LINUX_DIRECTORY = "/dev/shm";

/**
 * Opens (or, with `create`, creates) the named shared memory `name` and maps
 * `byteLength` bytes of it read-write, shared: stores are seen at once by
 * every other mapping of the same name, in this process, its Workers and
 * other processes. New memory is zero-filled. Without `byteLength`, the whole
 * object is mapped (its creator's size). Pass the views' contents between
 * Workers through the name, never by transferring `bytes` (a transfer detaches
 * memkit's own view, and the mapping is then kept until the process exits).
 *
 * On Linux the object is a file in `/dev/shm` (where `shm_open` keeps them);
 * creation is atomic (a new object is sized under a private name and then
 * linked in place), so no opener ever sees it half made. On macOS it is a
 * POSIX shared memory object (`shm_open`).
 *
 * **Size and SIGBUS.** A page of a shared mapping past the end of the object
 * raises SIGBUS when touched, which kills the process (JavaScript cannot catch
 * it). memkit never maps past the end: opening with a `byteLength` larger than
 * the object throws instead (unless `create` grows it), and memkit never
 * shrinks an object. A tmpfs file cannot be sealed against shrinking
 * (`F_ADD_SEALS` fails with EPERM outside `memfd_create`), so a program that
 * truncates the object itself (`ftruncate`, `truncate -s`) while others map it
 * kills them on their next touch of a lost page: the owner of a name keeps its
 * size. `unlink()` and re-creating the name are safe: open mappings keep the
 * old object.
 *
 * Names: 1 to 30 characters from `A–Z a–z 0–9 . _ -`, not starting with `.`
 * (no slash: on Linux a name is a file name, on macOS it gets its leading
 * slash from memkit), so the same name works on both systems.
 *
 * Deno on Linux also needs `--allow-read` and `--allow-write` for `/dev/shm`
 * (and `/proc/self/fd`); its permission errors pass through unchanged.
 *
 * @param name The name every opener uses.
 * @param byteLength Bytes to map, 1 to 2^47; required with `create`. @default {the object's size}
 * @param options `create` and `exclusive`.
 * @returns The mapping; `close()` it (or let `using` do it), and `unlink()` the name when done.
 * @throws {TypeError} For a name that is not a string or has other characters, a length that is not a
 *   number, bad options, `create` without `byteLength`, or `exclusive` without `create`.
 * @throws {RangeError} For a name of 0 or more than 30 characters, or a length out of range.
 * @throws {AllocationError} "platform" when no object has that name (and `create` is not set), when it
 *   exists and `exclusive` is set, or when the system refuses (the message names the call and errno);
 *   "limit-exceeded" when the object is smaller than `byteLength`; "out-of-memory" when it cannot be
 *   mapped; "unsupported" without FFI or on a system other than Linux and macOS.
 *
 * @example Two mappings of one name share their bytes
 * ```ts
 * import { openSharedMemory } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const name = `memkit-doc-${crypto.randomUUID().slice(0, 8)}`;
 * using owner = openSharedMemory(name, 1 << 16, { create: true, exclusive: true });
 * using other = openSharedMemory(name); // another Worker or process does the same
 * assert.equal(other.byteLength, 1 << 16);
 * owner.bytes[42] = 7;
 * assert.equal(other.bytes[42], 7);
 * owner.unlink(); // the name goes; both mappings keep working until closed
 * other.bytes[43] = 8;
 * assert.equal(owner.bytes[43], 8);
 * ```
 */
export function openSharedMemory(name: string, byteLength?: number, options?: OpenSharedMemoryOptions): SharedMemory {
  checkName(name);
  if (byteLength !== undefined) checkSize(byteLength, "open shared memory", "byteLength", MAX_BLOCK_SIZE, 1);
  const parsed = parseOptions(OptionsSchema, options, "open shared memory");
  const create = parsed.create ?? false;
  const exclusive = parsed.exclusive ?? false;
  if (exclusive && !create) {
    throw new TypeError(
      `Cannot open shared memory ${describe(name)} as option 'exclusive' needs 'create: true': current options ` +
        `are { exclusive: true } without create`,
    );
  }
  if (create && byteLength === undefined) {
    throw new TypeError(
      `Cannot create shared memory ${describe(name)} as 'byteLength' is required with 'create: true': ` +
        "current value is undefined",
    );
  }
  if (native.libcError) throw new AllocationError("unsupported", native.libcError);
  if (native.os === "linux") return openLinux(name, byteLength, create, exclusive);
  if (native.os === "darwin") return openDarwin(name, byteLength, create, exclusive);
  throw new AllocationError("unsupported", `Cannot open shared memory: memkit has none on ${native.os}`);
}

function checkName(name: unknown): void {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot open shared memory as 'name' must be a string: current value is ${describeValue(name)}`,
    );
  }
  if (name.length < 1 || name.length > MAX_SHARED_MEMORY_NAME) {
    throw new RangeError(
      `Cannot open shared memory as 'name' must have 1 to ${MAX_SHARED_MEMORY_NAME} characters: current value is ` +
        `${describe(name)} (${name.length})`,
    );
  }
  if (!NAME.test(name)) {
    throw new TypeError(
      "Cannot open shared memory as 'name' must use only A-Z a-z 0-9 . _ - and not start with '.' (no slash): " +
        `current value is ${describeValue(name)}`,
    );
  }
}

/** The mapping, and how to remove its name. */
class SharedMapping extends PageMapping implements SharedMemory {
  readonly #name: string;
  readonly #unlink: () => boolean;

  constructor(address: number, byteLength: number, name: string, unlink: () => boolean) {
    super(address, byteLength, `shared memory ${describe(name)}`, "read-write", `openSharedMemory (${describe(name)})`);
    this.#name = name;
    this.#unlink = unlink;
  }

  get name(): string {
    return this.#name;
  }

  close(): void {
    releasingFor("SharedMemory.close() released it", () => this.unmap());
  }

  unlink(): boolean {
    return this.#unlink();
  }
}

// Maps `length` bytes of the open descriptor `fd` (the caller closes it: the mapping keeps the object).
function mapDescriptor(fd: number, length: number, name: string, unlink: () => boolean): SharedMapping {
  const c = native.platform;
  const address = native.libc.mmap(0, length, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED, fd, 0);
  if (address >= 2 ** 63 || address === 0) {
    throw platformError("mmap", `shared memory ${describe(name)}, ${byteCount(length)}`, "out-of-memory");
  }
  return new SharedMapping(address, length, name, unlink);
}

function missing(name: string, errno?: number): AllocationError {
  return new AllocationError(
    "platform",
    `Cannot open shared memory ${describe(name)}: no shared memory has that name (ENOENT); create it with ` +
      `openSharedMemory(${describe(name)}, byteLength, { create: true })`,
    { call: "open", errno },
  );
}

/** errno EEXIST (the same on Linux and macOS): the error of `exclusive` for an existing name carries it. */
export const EEXIST = 17;

function exists(name: string, errno: number): AllocationError {
  return new AllocationError(
    "platform",
    `Cannot create shared memory ${describe(name)} with 'exclusive: true': that name exists (EEXIST)`,
    { call: "open", errno },
  );
}

function tooSmall(name: string, size: number, length: number): AllocationError {
  return new AllocationError(
    "limit-exceeded",
    `Cannot map ${byteCount(length)} of shared memory ${describe(name)}: it has ${
      byteCount(size)
    }, and a mapping past ` +
      "its end would kill the process (SIGBUS) on the first touch of a missing page; open it without byteLength " +
      "to map all of it",
  );
}

// A node:fs failure (its `code`, like ENOENT) as a platform error; Deno's permission errors pass through unchanged.
function fileError(error: unknown, call: string, name: string): unknown {
  return fileSystemError(error, call, `open shared memory ${describe(name)}`);
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

// ------------------------------------------------------------------ Linux: files in /dev/shm

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${text}\0`);
}

function openLinux(name: string, byteLength: number | undefined, create: boolean, exclusive: boolean): SharedMemory {
  const path = `${LINUX_DIRECTORY}/${name}`;
  if (!create) return openExistingLinux(path, name, byteLength, false);
  // The name may go (another process unlinks it) between finding it taken and opening it: then create again.
  for (let attempt = 1;; attempt++) {
    const created = createLinux(path, name, byteLength!, exclusive);
    if (created !== null) return created;
    try {
      return openExistingLinux(path, name, byteLength, true);
    } catch (error) {
      if (attempt === 3 || !(error instanceof AllocationError) || error.errno !== 2) throw error;
    }
  }
}

function openExistingLinux(path: string, name: string, byteLength: number | undefined, create: boolean): SharedMemory {
  // node:fs first: it honours Deno's --allow-read and tells a missing name from other trouble.
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if (codeOf(error) === "ENOENT") throw missing(name, 2);
    throw fileError(error, "lstat", name);
  }
  if (!stat.isFile()) {
    throw new AllocationError("platform", `Cannot open shared memory ${describe(name)}: ${path} is not a regular file`);
  }
  const c = native.platform;
  // O_NOFOLLOW: /dev/shm is writable by every user, and a symbolic link planted there must not be followed.
  const fd = native.libc.open(cString(path), c.O_RDWR | c.O_NOFOLLOW | c.O_CLOEXEC);
  if (fd < 0) {
    const errno = native.errno();
    if (errno === 2) throw missing(name, errno);
    throw new AllocationError(
      "platform",
      `Cannot open shared memory ${describe(name)}: open failed with ${errnoName(errno)}`,
      {
        call: "open",
        errno,
      },
    );
  }
  try {
    const size = native.libc.lseek(fd, 0, c.SEEK_END);
    if (size < 0) throw platformError("lseek", `shared memory ${describe(name)}, SEEK_END`);
    const length = byteLength ?? size;
    if (size < length || length === 0) {
      if (!create || length === 0) throw tooSmall(name, size, length);
      // Grow, never shrink: mappings of the old size elsewhere stay valid.
      if (native.libc.ftruncate(fd, length) !== 0) {
        throw platformError("ftruncate", `shared memory ${describe(name)}, ${byteCount(length)}`);
      }
    }
    return mapDescriptor(fd, length, name, unlinker(path, name, fd));
  } finally {
    native.libc.close(fd);
  }
}

// Creates the object under a private name, sizes it, and links it in place:
// null when the name exists (and `exclusive` is not set), so the caller opens it.
function createLinux(path: string, name: string, byteLength: number, exclusive: boolean): SharedMemory | null {
  const suffix = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("");
  // A leading dot: no valid name can collide with it.
  const temporary = `${LINUX_DIRECTORY}/.memkit-${suffix}`;
  try {
    closeSync(openSync(temporary, "wx", 0o600)); // node:fs: Deno's --allow-write applies
  } catch (error) {
    throw fileError(error, "open", name);
  }
  try {
    const c = native.platform;
    const fd = native.libc.open(cString(temporary), c.O_RDWR | c.O_NOFOLLOW | c.O_CLOEXEC);
    if (fd < 0) throw platformError("open", `shared memory ${describe(name)} (being created)`);
    try {
      if (native.libc.ftruncate(fd, byteLength) !== 0) {
        throw platformError("ftruncate", `shared memory ${describe(name)}, ${byteCount(byteLength)}`);
      }
      const unlink = unlinker(path, name, fd);
      try {
        linkSync(temporary, path); // atomic, and fails when the name exists
      } catch (error) {
        if (codeOf(error) !== "EEXIST") throw fileError(error, "link", name);
        if (exclusive) throw exists(name, EEXIST);
        return null;
      }
      try {
        return mapDescriptor(fd, byteLength, name, unlink);
      } catch (error) {
        unlink(); // all or nothing: a name nobody could map is not left behind
        throw error;
      }
    } finally {
      native.libc.close(fd);
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Already gone, or not ours to remove: nothing else can be done.
    }
  }
}

// unlink() for the object open as `fd`: removes `path` only while it still names that object.
function unlinker(path: string, name: string, fd: number): () => boolean {
  // The descriptor's own identity, through /proc (fstat of a libc descriptor is not reachable from node:fs).
  let self;
  try {
    self = statSync(`/proc/self/fd/${fd}`);
  } catch (error) {
    throw fileError(error, "stat", name);
  }
  const dev = self.dev, ino = self.ino;
  return () => {
    try {
      const now = lstatSync(path);
      if (now.ino !== ino || now.dev !== dev) return false;
      unlinkSync(path);
      return true;
    } catch (error) {
      if (codeOf(error) === "ENOENT") return false;
      throw fileError(error, "unlink", name);
    }
  };
}

// ------------------------------------------------------------------ macOS: shm_open
// Written from the macOS documentation (shm_open(2), sys/stat.h, Apple's arm64 ABI); not run on this
// project's Linux machines.

function openDarwin(name: string, byteLength: number | undefined, create: boolean, exclusive: boolean): SharedMemory {
  const libc = native.libc;
  const c = native.platform;
  const cName = cString(`/${name}`);
  const flags = c.O_RDWR | (create ? c.O_CREAT : 0) | (exclusive ? c.O_EXCL : 0);
  const mode = 0o600;
  const fd = c.variadicOnStack
    ? libc.shm_open!(cName, flags, 0, 0, 0, 0, 0, 0, mode)
    : libc.shm_open!(cName, flags, mode);
  if (fd < 0) {
    const errno = native.errno();
    if (errno === 2) throw missing(name, errno);
    if (errno === EEXIST) throw exists(name, errno);
    throw new AllocationError(
      "platform",
      `Cannot open shared memory ${describe(name)}: shm_open failed with ${errnoName(errno)}`,
      {
        call: "shm_open",
        errno,
      },
    );
  }
  try {
    const stat = new Uint8Array(144); // struct stat (64-bit inodes): 144 bytes, st_size at 96
    if (libc.fstat!(fd, stat) !== 0) throw platformError("fstat", `shared memory ${describe(name)}`);
    let size = Number(new DataView(stat.buffer).getBigInt64(96, true));
    const sized = size === 0 && create;
    const unlink = () => {
      if (libc.shm_unlink!(cName) === 0) return true;
      const errno = native.errno();
      if (errno === 2) return false;
      throw new AllocationError("platform", `Cannot unlink shared memory ${describe(name)}: ${errnoName(errno)}`, {
        call: "shm_unlink",
        errno,
      });
    };
    try {
      if (sized) {
        // Just created (macOS sizes a shared memory object once, with its first ftruncate).
        if (libc.ftruncate(fd, byteLength!) !== 0) {
          throw platformError("ftruncate", `shared memory ${describe(name)}, ${byteCount(byteLength!)}`);
        }
        size = byteLength!;
      }
      const length = byteLength ?? size;
      if (size < length || length === 0) throw tooSmall(name, size, length);
      return mapDescriptor(fd, length, name, unlink);
    } catch (error) {
      if (sized) unlink(); // all or nothing: the object this call made goes again
      throw error;
    }
  } finally {
    libc.close(fd);
  }
}
