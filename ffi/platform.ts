/**
 * Operating-system constants for the native layer, Linux and macOS in one
 * place. Values come from the kernel and libc headers; everything else in memkit reads
 * them from here.
 *
 * @module
 */

/** Operating systems the native layer knows. */
export type NativeOs = "linux" | "darwin";

/** The constants that differ between the supported operating systems. */
export interface PlatformConstants {
  readonly os: NativeOs;
  /** Candidate file names of the C library, tried in order. */
  readonly libcPaths: readonly string[];
  /** Function returning `int*` to the calling thread's errno. */
  readonly errnoSymbol: string;
  /** Function returning the usable size of a malloc block. */
  readonly usableSizeSymbol: string;
  /** File name suffix of shared libraries. */
  readonly sharedLibrarySuffix: string;
  readonly PROT_NONE: number;
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MAP_PRIVATE: number;
  readonly MAP_ANONYMOUS: number;
  readonly MAP_NORESERVE: number;
  /** 0 where the platform has no MAP_POPULATE (memkit then uses MADV_WILLNEED). */
  readonly MAP_POPULATE: number;
  readonly MADV_NORMAL: number;
  readonly MADV_RANDOM: number;
  readonly MADV_SEQUENTIAL: number;
  readonly MADV_WILLNEED: number;
  readonly MADV_DONTNEED: number;
  readonly MADV_FREE: number;
  /** Reclaim a range now (Linux 5.4+: lazily freed pages are discarded); -1 where the platform has none (macOS). */
  readonly MADV_PAGEOUT: number;
  /** -1 where the platform has no transparent huge pages. */
  readonly MADV_HUGEPAGE: number;
  /** Exclude a range from core dumps; -1 where the platform has no such advice (macOS). */
  readonly MADV_DONTDUMP: number;
  readonly MS_SYNC: number;
  readonly O_RDONLY: number;
  readonly O_RDWR: number;
  readonly O_CREAT: number;
  readonly O_EXCL: number;
  /** Differs by CPU on Linux (arm64 has its own value): see `platformConstants(os, arch)`. */
  readonly O_NOFOLLOW: number;
  readonly O_CLOEXEC: number;
  readonly O_NONBLOCK: number;
  readonly SEEK_END: number;
  /** The `getrlimit` resource number of the locked-memory limit. */
  readonly RLIMIT_MEMLOCK: number;
  /**
   * Whether a call passes variadic arguments on the stack rather than in
   * registers (Apple's arm64 ABI: "Writing ARM64 code for Apple platforms").
   * FFI cannot declare a variadic function, so `shm_open`'s `mode` is then
   * declared as a ninth argument after six unused register arguments, which
   * puts it where the callee's `va_arg` reads it.
   */
  readonly variadicOnStack: boolean;
  /** `fstat` with 64-bit inodes: `fstat$INODE64` on x86-64 macOS (its plain `fstat` is the old layout). */
  readonly fstatSymbol: string;
  readonly _SC_PAGESIZE: number;
  /** dlopen flags RTLD_NOW | RTLD_NODELETE: pin a library for the process's life. */
  readonly RTLD_NOW_NODELETE: number;
}

const LINUX: PlatformConstants = {
  os: "linux",
  libcPaths: ["libc.so.6", "libc.so"],
  errnoSymbol: "__errno_location",
  usableSizeSymbol: "malloc_usable_size",
  sharedLibrarySuffix: ".so",
  PROT_NONE: 0,
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 0x01,
  MAP_PRIVATE: 0x02,
  MAP_ANONYMOUS: 0x20,
  MAP_NORESERVE: 0x4000,
  MAP_POPULATE: 0x8000,
  MADV_NORMAL: 0,
  MADV_RANDOM: 1,
  MADV_SEQUENTIAL: 2,
  MADV_WILLNEED: 3,
  MADV_DONTNEED: 4,
  MADV_FREE: 8,
  MADV_PAGEOUT: 21,
  MADV_HUGEPAGE: 14,
  MADV_DONTDUMP: 16,
  MS_SYNC: 4,
  O_RDONLY: 0,
  O_RDWR: 2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOFOLLOW: 0o400000,
  O_CLOEXEC: 0o2000000,
  O_NONBLOCK: 0o4000,
  SEEK_END: 2,
  RLIMIT_MEMLOCK: 8,
  variadicOnStack: false,
  fstatSymbol: "fstat",
  _SC_PAGESIZE: 30,
  RTLD_NOW_NODELETE: 0x2 | 0x1000,
};

const DARWIN: PlatformConstants = {
  os: "darwin",
  // Lives in the dyld shared cache since Big Sur: dlopen works, stat does not.
  libcPaths: ["/usr/lib/libSystem.B.dylib"],
  errnoSymbol: "__error",
  usableSizeSymbol: "malloc_size",
  sharedLibrarySuffix: ".dylib",
  PROT_NONE: 0,
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 0x0001,
  MAP_PRIVATE: 0x0002,
  MAP_ANONYMOUS: 0x1000,
  MAP_NORESERVE: 0x0040,
  MAP_POPULATE: 0,
  MADV_NORMAL: 0,
  MADV_RANDOM: 1,
  MADV_SEQUENTIAL: 2,
  MADV_WILLNEED: 3,
  MADV_DONTNEED: 4,
  MADV_FREE: 5,
  MADV_PAGEOUT: -1,
  MADV_HUGEPAGE: -1,
  MADV_DONTDUMP: -1,
  MS_SYNC: 0x0010,
  O_RDONLY: 0,
  O_RDWR: 2,
  O_CREAT: 0x0200,
  O_EXCL: 0x0800,
  O_NOFOLLOW: 0x0100,
  O_CLOEXEC: 0x01000000,
  O_NONBLOCK: 0x4,
  SEEK_END: 2,
  RLIMIT_MEMLOCK: 6,
  variadicOnStack: false,
  fstatSymbol: "fstat$INODE64",
  _SC_PAGESIZE: 29,
  RTLD_NOW_NODELETE: 0x2 | 0x80,
};

// arm64 Linux numbers a few open flags its own way (arch/arm64/include/uapi/asm/fcntl.h).
const LINUX_ARM64: PlatformConstants = { ...LINUX, O_NOFOLLOW: 0o100000 };
const DARWIN_ARM64: PlatformConstants = { ...DARWIN, variadicOnStack: true, fstatSymbol: "fstat" };

/** The constants of `os` on `arch` (memkit's spelling: "x86_64", "aarch64"), or `null` when memkit has none for it. */
export function platformConstants(os: string, arch = "x86_64"): PlatformConstants | null {
  if (os === "linux") return arch === "aarch64" ? LINUX_ARM64 : LINUX;
  if (os === "darwin") return arch === "aarch64" ? DARWIN_ARM64 : DARWIN;
  return null;
}

/** `(void *)-1` read back as a JavaScript number (2^64 after rounding). */
export const MAP_FAILED: number = 2 ** 64;
