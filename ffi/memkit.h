/*
 * libmemkit: the small native kernel library behind memkit's `simd` functions
 * and SIMD arrays. Every kernel dispatches at run time to the best code path the
 * CPU offers (AVX2, SSE2, NEON or portable scalar C).
 *
 * Conventions: sizes and counts are in elements unless named `bytes`; pointers
 * may be unaligned; kernels never allocate. Float kernels follow IEEE-754 single
 * precision operation by operation (no FMA contraction), so the TypeScript
 * fallback reproduces them bit for bit; only reductions (`dot`, `sum`) use a
 * different summation order per path and are accumulated in double precision.
 */
#ifndef MEMKIT_H
#define MEMKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMKIT_ABI_VERSION 5

/* Dispatch levels, as returned by mk_simd_level(). */
#define MK_SIMD_SCALAR 0
#define MK_SIMD_SSE2 1
#define MK_SIMD_AVX2 2
#define MK_SIMD_NEON 3

uint32_t mk_abi_version(void);
/* The level in use. */
int32_t mk_simd_level(void);
/* Best level this CPU supports. */
int32_t mk_simd_best(void);
/* Forces a level (for tests); returns the level now in use, which is the
 * requested one if this CPU supports it, otherwise unchanged. */
int32_t mk_simd_force(int32_t level);

/* Bytes. Regions of copy may overlap (memmove semantics). */
void mk_copy(void *dst, const void *src, size_t bytes);
void mk_fill(void *dst, int32_t byte, size_t bytes);
/* Index of the first differing byte, or -1 when equal. */
int64_t mk_compare(const void *a, const void *b, size_t bytes);
int32_t mk_equals(const void *a, const void *b, size_t bytes);

/* Float32, element-wise, in place on the first argument. */
void mk_f32_scale(float *x, size_t n, float k);
void mk_f32_add(float *y, const float *x, size_t n);      /* y += x   */
void mk_f32_sub(float *y, const float *x, size_t n);      /* y -= x   */
void mk_f32_axpy(float *y, float a, const float *x, size_t n); /* y += a*x */

/* Float32 reductions, accumulated in double. */
double mk_f32_dot(const float *a, const float *b, size_t n);
double mk_f32_sum(const float *x, size_t n);

/* Float32 vectors of `dims` components stored every `stride` floats
 * (f32x3 is dims 3, stride 4). */
void mk_f32_magnitudes(const float *v, size_t count, size_t stride, size_t dims, float *out);
void mk_f32_dots(const float *a, const float *b, size_t count, size_t stride, size_t dims, float *out);
void mk_f32_normalize(float *v, size_t count, size_t stride, size_t dims);

/* The same kernels with 32-bit counts, for calls whose counts fit: Deno's
 * FFI passes a u32 argument several times faster than a 64-bit one (measured
 * here: a no-op with three size_t arguments 108 ns a call, with uint32_t 17 ns).
 * mk_compare_u32 returns the index as a double (exact below 2^53). */
void mk_copy_u32(void *dst, const void *src, uint32_t bytes);
void mk_fill_u32(void *dst, int32_t byte, uint32_t bytes);
double mk_compare_u32(const void *a, const void *b, uint32_t bytes);
void mk_f32_scale_u32(float *x, uint32_t n, float k);
void mk_f32_add_u32(float *y, const float *x, uint32_t n);
void mk_f32_sub_u32(float *y, const float *x, uint32_t n);
void mk_f32_axpy_u32(float *y, float a, const float *x, uint32_t n);
double mk_f32_dot_u32(const float *a, const float *b, uint32_t n);
double mk_f32_sum_u32(const float *x, uint32_t n);
void mk_f32_magnitudes_u32(const float *v, uint32_t count, uint32_t stride, uint32_t dims, float *out);
void mk_f32_dots_u32(const float *a, const float *b, uint32_t count, uint32_t stride, uint32_t dims, float *out);
void mk_f32_normalize_u32(float *v, uint32_t count, uint32_t stride, uint32_t dims);

/* The census of native memory per thread, for the leak check at exit: one
 * table per process (every thread's memkit loads this same library, so they
 * share its static data). A thread that holds memory claims a slot and keeps
 * its counts in it; the main thread reads the others' slots at exit, also of
 * Workers that were terminated. Slot layout (MK_CENSUS_SLOT_BYTES bytes):
 * int32 state (0 free, 1 claimed), int32 unused, double blocks, double bytes,
 * then a zero-terminated UTF-8 name. */
#define MK_CENSUS_SLOTS 64
#define MK_CENSUS_SLOT_BYTES 128
void *mk_census_table(void);
/* Claims a free slot atomically: its index, or -1 when all are taken. */
int32_t mk_census_claim(void);

/* Paths to unlink when the process exits: the names memkit made up for shared
 * memory, which must not outlive the process also where no JavaScript runs at
 * its end (a Worker that is terminated, or that still runs when the process
 * exits). One table per process, as the census: every thread's memkit lists
 * its names here. The first listing registers one handler with atexit (Deno
 * ends its process with exit()) and, except on macOS, at_quick_exit (Bun ends
 * with quick_exit()); it runs once, whichever comes, and unlinks every path
 * still listed that names the object listed: on Linux a path whose lstat()
 * device and inode are `dev` and `ino` (a name that another object has now is
 * left alone); on macOS the POSIX shared memory name, with shm_unlink()
 * (`dev` and `ino` unused). Only the process that listed a path unlinks it
 * (not a child forked from it). Nothing runs at SIGKILL or another fatal signal.
 *
 * mk_unlink_at_exit lists `path` (NUL-terminated, 1 to MK_EXIT_PATH_BYTES - 1
 * bytes) and returns its slot, or -1 when the path is empty or too long, the
 * handler cannot be registered or all MK_EXIT_NAMES slots are taken.
 * mk_forget_at_exit takes a slot off the list (the name was unlinked or handed
 * over): call it once per slot; -1 and slots out of range are ignored. Both are
 * lock-free (compare-and-swap) and may be called from any thread. */
#define MK_EXIT_NAMES 4096
#define MK_EXIT_PATH_BYTES 104
int32_t mk_unlink_at_exit(const char *path, uint64_t dev, uint64_t ino);
void mk_forget_at_exit(int32_t slot);

/* libc's heap and madvise with addresses and sizes as doubles (exact below
 * 2^53, which every user-space address and size is): a double is the cheapest
 * argument and result type of both runtimes' FFI (measured here: malloc+free
 * declared with size_t 10x slower in Deno, 2x in Bun), so the system allocator
 * calls these instead of libc's own declarations whenever libmemkit is loaded.
 * Each returns what the libc function returns; mk_memalign returns 0 on
 * failure with errno set to posix_memalign's error code. */
double mk_malloc(double size);
double mk_realloc(double address, double size);
double mk_memalign(double alignment, double size);
void mk_free(double address);
double mk_usable_size(double address);
int32_t mk_madvise(double address, double length, int32_t advice);

/* poll(2) over `nfds` pollfds at `fds` (retried when a signal interrupts it), then close(2) of every
 * fds[i].fd: they are duplicates made for this one poll (PsiTrigger's waits), closed on the thread that
 * polled, so none is left open when the JavaScript realm that asked has ended meanwhile. Returns poll's
 * result, or -errno when it failed. */
int32_t mk_poll_close(void *fds, uint32_t nfds, int32_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
