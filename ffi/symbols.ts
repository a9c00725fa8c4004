/**
 * The one symbol table of the native layer: every C function memkit calls,
 * declared once in Deno's shape. The Deno adapter passes it to `Deno.dlopen`;
 * the Bun adapter derives its `bun:ffi` table from it. Addresses are declared
 * as `usize` and cross into TypeScript as plain numbers.
 *
 * @module
 */
import type { PlatformConstants } from "./platform.ts";

/** A parameter or result type, spelled as Deno spells it. */
export type NativeType =
  | "void"
  | "i32"
  | "u32"
  | "i64"
  | "usize"
  | "f32"
  | "f64"
  | "buffer";

/** One C function. */
export interface SymbolDefinition {
  /** The exported C name when it differs from the key. */
  readonly name?: string;
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
  /** Absent symbols are tolerated and read back as `undefined`. */
  readonly optional?: boolean;
  /**
   * Run on a worker thread and return a Promise (Deno only; Bun has no such
   * calls, and its adapter leaves these symbols out). Never with a `buffer`
   * parameter: the thread may write after the isolate that passed a JS buffer
   * ended and freed it, so such calls take native memory (`usize`).
   */
  readonly nonblocking?: boolean;
}

/** A table of C functions keyed by the name memkit calls them by. */
export type SymbolTable = Readonly<Record<string, SymbolDefinition>>;

/** libc, with the names that differ per platform filled in. */
export function libcSymbols(platform: PlatformConstants): SymbolTable {
  return {
    ...(platform.os === "darwin" ? darwinSymbols(platform) : {}),
    ...(platform.os === "linux" ? LINUX_SYMBOLS : {}),
    // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
    mmap: { parameters: ["usize", "usize", "i32", "i32", "i32", "i64"], result: "usize" },
    // int munmap(void *addr, size_t length)
    munmap: { parameters: ["usize", "usize"], result: "i32" },
    // int mprotect(void *addr, size_t len, int prot)
    mprotect: { parameters: ["usize", "usize", "i32"], result: "i32" },
    // int madvise(void *addr, size_t length, int advice)
    madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
    // int mlock(const void *addr, size_t len)
    mlock: { parameters: ["usize", "usize"], result: "i32" },
    // int munlock(const void *addr, size_t len)
    munlock: { parameters: ["usize", "usize"], result: "i32" },
    // int msync(void *addr, size_t length, int flags)
    msync: { parameters: ["usize", "usize", "i32"], result: "i32" },
    // int posix_memalign(void **memptr, size_t alignment, size_t size)
    posix_memalign: { parameters: ["buffer", "usize", "usize"], result: "i32" },
    // void *malloc(size_t size)
    malloc: { parameters: ["usize"], result: "usize" },
    // void *realloc(void *ptr, size_t size)
    realloc: { parameters: ["usize", "usize"], result: "usize" },
    // void free(void *ptr)
    free: { parameters: ["usize"], result: "void" },
    // size_t malloc_usable_size(void *ptr) / size_t malloc_size(const void *ptr)
    malloc_usable_size: {
      name: platform.usableSizeSymbol,
      parameters: ["usize"],
      result: "usize",
      optional: true,
    },
    // void *dlopen(const char *path, int flags): pins libmemkit (RTLD_NODELETE)
    dlopen: { parameters: ["buffer", "i32"], result: "usize", optional: true },
    // long sysconf(int name)
    sysconf: { parameters: ["i32"], result: "i64" },
    // int open(const char *path, int flags): never called with a mode, so the
    // variadic third argument is absent and the fixed signature is safe.
    open: { parameters: ["buffer", "i32"], result: "i32" },
    // int close(int fd)
    close: { parameters: ["i32"], result: "i32" },
    // ssize_t read(int fd, void *buf, size_t count)
    read: { parameters: ["i32", "buffer", "usize"], result: "i64" },
    // ssize_t write(int fd, const void *buf, size_t count)
    write: { parameters: ["i32", "buffer", "usize"], result: "i64" },
    // int ftruncate(int fd, off_t length)
    ftruncate: { parameters: ["i32", "i64"], result: "i32" },
    // off_t lseek(int fd, off_t offset, int whence): a file's size is lseek(fd, 0, SEEK_END)
    lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
    // int getrlimit(int resource, struct rlimit *rlim): two 64-bit rlim_t on every 64-bit platform
    getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    // int poll(struct pollfd *fds, nfds_t nfds, int timeout)
    poll: { parameters: ["buffer", "usize", "i32"], result: "i32" },
    // The same poll on a worker thread, for waits that must not block the event loop (Deno). The
    // pollfd array is native memory (an address), never a JS buffer: the thread writes revents when
    // poll returns, which may be after the isolate that asked is gone and its buffers are freed.
    poll_async: { name: "poll", parameters: ["usize", "usize", "i32"], result: "i32", nonblocking: true },
    // int *__errno_location(void) / int *__error(void)
    errno_location: { name: platform.errnoSymbol, parameters: [], result: "usize" },
  };
}

// Linux only.
const LINUX_SYMBOLS: SymbolTable = {
  // int fcntl(int fd, int cmd, ...) as fcntl(fd, F_DUPFD_CLOEXEC, 0): the variadic int travels in the third
  // integer register on Linux's x86-64 and arm64 ABIs alike, where a fixed signature puts it.
  fcntl_dupfd: { name: "fcntl", parameters: ["i32", "i32", "i32"], result: "i32" },
};

// macOS only (libSystem): memory status and POSIX shared memory. None is
// declared variadic (FFI cannot): shm_open's mode goes where the ABI puts it.
function darwinSymbols(platform: PlatformConstants): SymbolTable {
  return { ...DARWIN_SYMBOLS, ...darwinSharedMemory(platform) };
}

function darwinSharedMemory(platform: PlatformConstants): SymbolTable {
  return {
    // int shm_open(const char *name, int oflag, ...): the optional mode_t is variadic. On x86-64 it travels
    // in the third integer register; on arm64 Apple passes variadic arguments on the stack, so six unused
    // register arguments (x2-x7) come first and the mode lands in the first stack slot, where va_arg reads it.
    shm_open: {
      parameters: platform.variadicOnStack
        ? ["buffer", "i32", "i64", "i64", "i64", "i64", "i64", "i64", "i64"]
        : ["buffer", "i32", "i32"],
      result: "i32",
    },
    // int shm_unlink(const char *name)
    shm_unlink: { parameters: ["buffer"], result: "i32" },
    // int fstat(int fd, struct stat *buf), 64-bit inode layout: st_size at byte 96
    fstat: { name: platform.fstatSymbol, parameters: ["i32", "buffer"], result: "i32" },
  };
}

const DARWIN_SYMBOLS: SymbolTable = {
  // int sysctlbyname(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
  sysctlbyname: { parameters: ["buffer", "buffer", "buffer", "usize", "usize"], result: "i32" },
  // mach_port_t mach_host_self(void)
  mach_host_self: { parameters: [], result: "u32" },
  // kern_return_t host_statistics64(host_t, host_flavor_t, host_info64_t, mach_msg_type_number_t *count)
  host_statistics64: { parameters: ["u32", "i32", "buffer", "buffer"], result: "i32" },
  // int proc_pid_rusage(int pid, int flavor, rusage_info_t *buffer)
  proc_pid_rusage: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // pid_t getpid(void)
  getpid: { parameters: [], result: "i32" },
  // uint32_t notify_register_check(const char *name, int *out_token)
  notify_register_check: { parameters: ["buffer", "buffer"], result: "u32" },
  // uint32_t notify_get_state(int token, uint64_t *state64)
  notify_get_state: { parameters: ["i32", "buffer"], result: "u32" },
  // Purgeable memory (PurgeableBuffer). mach_port_t mach_task_self(void): the function behind the macro.
  mach_task_self: { parameters: [], result: "u32" },
  // kern_return_t vm_allocate(vm_map_t target, vm_address_t *address, vm_size_t size, int flags)
  vm_allocate: { parameters: ["u32", "buffer", "usize", "i32"], result: "i32" },
  // kern_return_t vm_deallocate(vm_map_t target, vm_address_t address, vm_size_t size)
  vm_deallocate: { parameters: ["u32", "usize", "usize"], result: "i32" },
  // kern_return_t vm_purgable_control(vm_map_t target, vm_address_t address, vm_purgable_t control, int *state)
  vm_purgable_control: { parameters: ["u32", "usize", "i32", "buffer"], result: "i32" },
};

/** libmemkit (ffi/memkit.h). */
export const MEMKIT_SYMBOLS: SymbolTable = {
  // uint32_t mk_abi_version(void)
  mk_abi_version: { parameters: [], result: "u32" },
  // int32_t mk_simd_level(void)
  mk_simd_level: { parameters: [], result: "i32" },
  // int32_t mk_simd_best(void)
  mk_simd_best: { parameters: [], result: "i32" },
  // int32_t mk_simd_force(int32_t level)
  mk_simd_force: { parameters: ["i32"], result: "i32" },
  // The same kernels with uint32_t counts (memkit.h): a u32 argument is several times cheaper in Deno's FFI.
  mk_copy_u32: { parameters: ["buffer", "buffer", "u32"], result: "void" },
  mk_fill_u32: { parameters: ["buffer", "i32", "u32"], result: "void" },
  mk_compare_u32: { parameters: ["buffer", "buffer", "u32"], result: "f64" },
  mk_f32_scale_u32: { parameters: ["buffer", "u32", "f32"], result: "void" },
  mk_f32_add_u32: { parameters: ["buffer", "buffer", "u32"], result: "void" },
  mk_f32_sub_u32: { parameters: ["buffer", "buffer", "u32"], result: "void" },
  mk_f32_axpy_u32: { parameters: ["buffer", "f32", "buffer", "u32"], result: "void" },
  mk_f32_dot_u32: { parameters: ["buffer", "buffer", "u32"], result: "f64" },
  mk_f32_sum_u32: { parameters: ["buffer", "u32"], result: "f64" },
  mk_f32_magnitudes_u32: { parameters: ["buffer", "u32", "u32", "u32", "buffer"], result: "void" },
  mk_f32_dots_u32: { parameters: ["buffer", "buffer", "u32", "u32", "u32", "buffer"], result: "void" },
  mk_f32_normalize_u32: { parameters: ["buffer", "u32", "u32", "u32"], result: "void" },
  // libc's heap and madvise with doubles for addresses and sizes (memkit.h): the cheapest FFI signature in both runtimes.
  mk_malloc: { parameters: ["f64"], result: "f64" },
  mk_realloc: { parameters: ["f64", "f64"], result: "f64" },
  mk_memalign: { parameters: ["f64", "f64"], result: "f64" },
  mk_free: { parameters: ["f64"], result: "void" },
  mk_usable_size: { parameters: ["f64"], result: "f64" },
  mk_madvise: { parameters: ["f64", "f64", "i32"], result: "i32" },
  // void *mk_census_table(void)
  mk_census_table: { parameters: [], result: "usize" },
  // int32_t mk_census_claim(void)
  mk_census_claim: { parameters: [], result: "i32" },
  // int32_t mk_unlink_at_exit(const char *path, uint64_t dev, uint64_t ino): lists a NUL-terminated path to unlink
  // at the process's exit (C atexit and at_quick_exit) while it names that device and inode; its slot, or -1.
  // Optional: a library built before it (MEMKIT_LIB) still loads, and memkit keeps its JavaScript exit hook only.
  mk_unlink_at_exit: { parameters: ["buffer", "usize", "usize"], result: "i32", optional: true },
  // void mk_forget_at_exit(int32_t slot)
  mk_forget_at_exit: { parameters: ["i32"], result: "void", optional: true },
  // int32_t mk_poll_close(struct pollfd *fds, uint32_t nfds, int32_t timeout_ms), on a worker thread (Deno):
  // polls, retrying on EINTR, then closes the descriptors (duplicates made for that poll); -errno on failure.
  // An address, never a JS buffer (see poll_async).
  mk_poll_close: { parameters: ["usize", "u32", "i32"], result: "i32", nonblocking: true, optional: true },
  // void mk_copy(void *dst, const void *src, size_t bytes)
  mk_copy: { parameters: ["buffer", "buffer", "usize"], result: "void" },
  // void mk_fill(void *dst, int32_t byte, size_t bytes)
  mk_fill: { parameters: ["buffer", "i32", "usize"], result: "void" },
  // int64_t mk_compare(const void *a, const void *b, size_t bytes)
  mk_compare: { parameters: ["buffer", "buffer", "usize"], result: "i64" },
  // int32_t mk_equals(const void *a, const void *b, size_t bytes)
  mk_equals: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // void mk_f32_scale(float *x, size_t n, float k)
  mk_f32_scale: { parameters: ["buffer", "usize", "f32"], result: "void" },
  // void mk_f32_add(float *y, const float *x, size_t n)
  mk_f32_add: { parameters: ["buffer", "buffer", "usize"], result: "void" },
  // void mk_f32_sub(float *y, const float *x, size_t n)
  mk_f32_sub: { parameters: ["buffer", "buffer", "usize"], result: "void" },
  // void mk_f32_axpy(float *y, float a, const float *x, size_t n)
  mk_f32_axpy: { parameters: ["buffer", "f32", "buffer", "usize"], result: "void" },
  // double mk_f32_dot(const float *a, const float *b, size_t n)
  mk_f32_dot: { parameters: ["buffer", "buffer", "usize"], result: "f64" },
  // double mk_f32_sum(const float *x, size_t n)
  mk_f32_sum: { parameters: ["buffer", "usize"], result: "f64" },
  // void mk_f32_magnitudes(const float *v, size_t count, size_t stride, size_t dims, float *out)
  mk_f32_magnitudes: {
    parameters: ["buffer", "usize", "usize", "usize", "buffer"],
    result: "void",
  },
  // void mk_f32_dots(const float *a, const float *b, size_t count, size_t stride, size_t dims, float *out)
  mk_f32_dots: {
    parameters: ["buffer", "buffer", "usize", "usize", "usize", "buffer"],
    result: "void",
  },
  // void mk_f32_normalize(float *v, size_t count, size_t stride, size_t dims)
  mk_f32_normalize: { parameters: ["buffer", "usize", "usize", "usize"], result: "void" },
};
