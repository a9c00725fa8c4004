/**
 * Runtime-neutral shapes of the native layer. `src/` sees only these: plain
 * numbers for addresses, typed arrays for buffers, no runtime pointer objects.
 *
 * @module
 */

/** The libc functions memkit calls (see symbols.ts for the C prototypes). */
export interface Libc {
  mmap(addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number;
  munmap(addr: number, length: number): number;
  mprotect(addr: number, length: number, prot: number): number;
  madvise(addr: number, length: number, advice: number): number;
  mlock(addr: number, length: number): number;
  munlock(addr: number, length: number): number;
  msync(addr: number, length: number, flags: number): number;
  /** `out` receives the address as two little-endian 32-bit halves. */
  posix_memalign(out: Uint32Array, alignment: number, size: number): number;
  malloc(size: number): number;
  realloc(addr: number, size: number): number;
  free(addr: number): void;
  malloc_usable_size?: (addr: number) => number;
  sysconf(name: number): number;
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  read(fd: number, buffer: Uint8Array, count: number): number;
  write(fd: number, buffer: Uint8Array, count: number): number;
  ftruncate(fd: number, length: number): number;
  lseek(fd: number, offset: number, whence: number): number;
  /** `limits` receives the soft and the hard limit as two 64-bit integers. */
  getrlimit(resource: number, limits: Uint8Array): number;
  /** Linux: `fcntl(fd, F_DUPFD_CLOEXEC, 0)`, a close-on-exec duplicate of `fd`. */
  fcntl_dupfd?: (fd: number, cmd: number, arg: number) => number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  /** Deno only: poll on a worker thread. */
  poll_async?: (fds: number, nfds: number, timeoutMs: number) => Promise<number>;
  errno_location(): number;
  // macOS only.
  sysctlbyname?: (name: Uint8Array, oldp: Uint8Array, oldlenp: Uint8Array, newp: number, newlen: number) => number;
  mach_host_self?: () => number;
  host_statistics64?: (host: number, flavor: number, info: Uint8Array, count: Uint8Array) => number;
  proc_pid_rusage?: (pid: number, flavor: number, buffer: Uint8Array) => number;
  getpid?: () => number;
  dlopen?: (path: Uint8Array, flags: number) => number;
  notify_register_check?: (name: Uint8Array, token: Uint8Array) => number;
  notify_get_state?: (token: number, state: Uint8Array) => number;
  /** macOS: `mode` is the last argument; on arm64 after six padding arguments (see symbols.ts). */
  shm_open?: (name: Uint8Array, flags: number, ...rest: number[]) => number;
  shm_unlink?: (name: Uint8Array) => number;
  fstat?: (fd: number, stat: Uint8Array) => number;
  mach_task_self?: () => number;
  /** `address` receives the new region's address as one 64-bit integer. */
  vm_allocate?: (task: number, address: Uint8Array, size: number, flags: number) => number;
  vm_deallocate?: (task: number, address: number, size: number) => number;
  /** `state` is an int read and written by the kernel (the old state after VM_PURGABLE_SET_STATE). */
  vm_purgable_control?: (task: number, address: number, control: number, state: Uint8Array) => number;
}

/** libmemkit's functions as the adapters expose them. */
export interface MemkitLibrary {
  mk_abi_version(): number;
  mk_simd_level(): number;
  mk_simd_best(): number;
  mk_simd_force(level: number): number;
  mk_copy_u32(dst: Uint8Array, src: Uint8Array, bytes: number): void;
  mk_fill_u32(dst: Uint8Array, byte: number, bytes: number): void;
  mk_compare_u32(a: Uint8Array, b: Uint8Array, bytes: number): number;
  mk_f32_scale_u32(x: Float32Array, n: number, k: number): void;
  mk_f32_add_u32(y: Float32Array, x: Float32Array, n: number): void;
  mk_f32_sub_u32(y: Float32Array, x: Float32Array, n: number): void;
  mk_f32_axpy_u32(y: Float32Array, a: number, x: Float32Array, n: number): void;
  mk_f32_dot_u32(a: Float32Array, b: Float32Array, n: number): number;
  mk_f32_sum_u32(x: Float32Array, n: number): number;
  mk_f32_magnitudes_u32(v: Float32Array, count: number, stride: number, dims: number, out: Float32Array): void;
  mk_f32_dots_u32(
    a: Float32Array,
    b: Float32Array,
    count: number,
    stride: number,
    dims: number,
    out: Float32Array,
  ): void;
  mk_f32_normalize_u32(v: Float32Array, count: number, stride: number, dims: number): void;
  mk_malloc(size: number): number;
  mk_realloc(address: number, size: number): number;
  mk_memalign(alignment: number, size: number): number;
  mk_free(address: number): void;
  mk_usable_size(address: number): number;
  mk_madvise(address: number, length: number, advice: number): number;
  mk_census_table(): number;
  mk_census_claim(): number;
  /**
   * Lists `path` (NUL-terminated) to be unlinked when the process exits, also where no JavaScript runs then
   * (a terminated Worker, a Worker running at the exit), while it names the object `dev`/`ino` (lstat, as
   * bigints; ignored on macOS, where `path` is a shared memory name). Its slot, or -1 (empty or too long a
   * path, a full table). Absent from libraries built before it.
   */
  mk_unlink_at_exit?: (path: Uint8Array, dev: bigint, ino: bigint) => number;
  /** Takes a slot of `mk_unlink_at_exit` off the list (-1 and unknown slots are ignored). */
  mk_forget_at_exit?: (slot: number) => void;
  /** Deno only, on a worker thread: poll the pollfds at `fds`, then close their descriptors; -errno on failure. */
  mk_poll_close?: (fds: number, nfds: number, timeoutMs: number) => Promise<number>;
  mk_copy(dst: Uint8Array, src: Uint8Array, bytes: number): void;
  mk_fill(dst: Uint8Array, byte: number, bytes: number): void;
  mk_compare(a: Uint8Array, b: Uint8Array, bytes: number): number;
  mk_equals(a: Uint8Array, b: Uint8Array, bytes: number): number;
  mk_f32_scale(x: Float32Array, n: number, k: number): void;
  mk_f32_add(y: Float32Array, x: Float32Array, n: number): void;
  mk_f32_sub(y: Float32Array, x: Float32Array, n: number): void;
  mk_f32_axpy(y: Float32Array, a: number, x: Float32Array, n: number): void;
  mk_f32_dot(a: Float32Array, b: Float32Array, n: number): number;
  mk_f32_sum(x: Float32Array, n: number): number;
  mk_f32_magnitudes(v: Float32Array, count: number, stride: number, dims: number, out: Float32Array): void;
  mk_f32_dots(
    a: Float32Array,
    b: Float32Array,
    count: number,
    stride: number,
    dims: number,
    out: Float32Array,
  ): void;
  mk_f32_normalize(v: Float32Array, count: number, stride: number, dims: number): void;
}

/**
 * The compute kernels as memkit calls them: `native.kernels`. Every call is
 * checked first (ffi/boundary.ts): counts are non-negative integers, each
 * array's real byte length (read through the engine's intrinsic getters)
 * covers them, and a detached array is `AllocationError("use-after-free")`.
 * Counts are in elements: floats for the f32 kernels, bytes for `compare`.
 * Strided kernels take vectors of `dims` components every `stride` floats
 * (1 <= dims <= stride) and need `count × stride` floats.
 */
export interface Kernels {
  /** Copies all of `src` to the start of `dst` (memmove). */
  copy(dst: Uint8Array, src: Uint8Array): void;
  /** Sets every byte of `dst`. */
  fill(dst: Uint8Array, byte: number): void;
  /** Index of the first differing byte in the first `bytes` of both, or -1. */
  compare(a: Uint8Array, b: Uint8Array, bytes: number): number;
  /**
   * `simd.compare` of two whole byte arrays: the index of the first
   * difference, the shorter length when one is a prefix of the other, or -1
   * when both are equal. Short inputs run in JavaScript (`jsBelowBytes`).
   */
  compareAll(a: Uint8Array, b: Uint8Array): number;
  f32Scale(x: Float32Array, n: number, k: number): void;
  f32Add(y: Float32Array, x: Float32Array, n: number): void;
  f32Sub(y: Float32Array, x: Float32Array, n: number): void;
  f32Axpy(y: Float32Array, a: number, x: Float32Array, n: number): void;
  f32Dot(a: Float32Array, b: Float32Array, n: number): number;
  f32Sum(x: Float32Array, n: number): number;
  f32Magnitudes(v: Float32Array, count: number, stride: number, dims: number, out: Float32Array): void;
  f32Dots(a: Float32Array, b: Float32Array, count: number, stride: number, dims: number, out: Float32Array): void;
  f32Normalize(v: Float32Array, count: number, stride: number, dims: number): void;
}

/**
 * A kernel implementation (libmemkit's or the TypeScript fallback). It trusts
 * its arguments: only ffi/boundary.ts calls it, after checking them, and
 * passes every count explicitly (copy and fill included).
 */
export interface KernelImpl extends Omit<Kernels, "copy" | "fill" | "compareAll"> {
  copy(dst: Uint8Array, src: Uint8Array, bytes: number): void;
  fill(dst: Uint8Array, byte: number, bytes: number): void;
}

/** What one runtime's FFI offers, behind one shape. */
export interface FfiAdapter {
  readonly runtime: "deno" | "bun";
  /** Opens a library and returns its functions (results as numbers); throws on failure. */
  open(path: string, table: Readonly<Record<string, import("./symbols.ts").SymbolDefinition>>): Record<
    string,
    ((...args: never[]) => unknown) | undefined
  >;
  /** An ArrayBuffer over `byteLength` native bytes at `address` (no deallocator). */
  wrap(address: number, byteLength: number): ArrayBuffer;
  /** Address of a non-empty view's first byte. */
  addressOf(view: ArrayBufferView): number;
}
