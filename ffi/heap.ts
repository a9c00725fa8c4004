/**
 * libc's heap (malloc, realloc, posix_memalign, free, the usable size) and
 * madvise, called through the cheapest signature this process has.
 *
 * Why: the FFI signature is a performance decision. A `size_t` argument or
 * result goes through Deno's BigInt-capable path (malloc+free declared that
 * way: ~10× a pair of `double` calls here; Bun ~2×), while a `double` is the
 * cheapest type in both runtimes and holds every user-space address and size
 * exactly. libmemkit exports the same functions with doubles (memkit.h); until
 * it is loaded (or where it cannot be built) libc's own declarations serve.
 * Both reach the same libc heap, so a block from one may go back through the
 * other.
 *
 * @module
 */
import type { Libc, MemkitLibrary } from "./types.ts";

/** The heap functions `src/` calls. Addresses are plain numbers; 0 is null. */
export interface NativeHeap {
  /** malloc: the address, or 0 (errno says why). */
  malloc(size: number): number;
  /** realloc: the new address, or 0 with the old block untouched. */
  realloc(address: number, size: number): number;
  /** posix_memalign: the address, or minus its error code (ENOMEM, EINVAL). */
  memalign(alignment: number, size: number): number;
  free(address: number): void;
  /** malloc_usable_size (malloc_size on macOS), or null where libc has none. */
  usableSize: ((address: number) => number) | null;
  /** madvise: 0, or -1 with errno set. */
  madvise(address: number, length: number, advice: number): number;
  /** Which declarations serve: "libmemkit" (doubles) or "libc" (size_t). */
  readonly via: "libmemkit" | "libc";
}

/** libc's own declarations; `out` receives posix_memalign's address. */
export function libcHeap(libc: Libc): NativeHeap {
  const out = new Uint32Array(2);
  return {
    malloc: (size) => libc.malloc(size),
    realloc: (address, size) => libc.realloc(address, size),
    memalign(alignment, size) {
      const code = libc.posix_memalign(out, alignment, size);
      return code === 0 ? out[0] + out[1] * 2 ** 32 : -code;
    },
    free: (address) => libc.free(address),
    usableSize: libc.malloc_usable_size ?? null,
    madvise: (address, length, advice) => libc.madvise(address, length, advice),
    via: "libc",
  };
}

/** libmemkit's double-typed entry points; `errno` reads the thread's errno. */
export function memkitHeap(lib: MemkitLibrary, errno: () => number): NativeHeap {
  return {
    malloc: lib.mk_malloc,
    realloc: lib.mk_realloc,
    memalign(alignment, size) {
      const address = lib.mk_memalign(alignment, size);
      return address !== 0 ? address : -errno();
    },
    free: lib.mk_free,
    usableSize: lib.mk_usable_size,
    madvise: lib.mk_madvise,
    via: "libmemkit",
  };
}
