/*
 * libmemkit: runtime-dispatched SIMD kernels for memkit (see memkit.h).
 *
 * Build: cc -O3 -shared -fPIC -ffp-contract=off -o libmemkit.so memkit.c
 * The element-wise float kernels are written once as plain loops and compiled
 * per instruction set with `target` attributes, so the compiler vectorizes them
 * for each level; reductions and byte comparison use intrinsics. -ffp-contract=off
 * keeps a*x+y as two roundings on every path (the TypeScript fallback does the
 * same with Math.fround), so element-wise results agree bit for bit.
 */
#include "memkit.h"

#include <errno.h>
#include <unistd.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#if defined(__APPLE__)
#include <malloc/malloc.h>
#elif defined(__linux__)
#include <malloc.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define MK_X86 1
#include <immintrin.h>
#define MK_TARGET_AVX2 __attribute__((target("avx2")))
#define MK_TARGET_SSE2 __attribute__((target("sse2")))
#elif defined(__aarch64__)
#define MK_ARM64 1
#include <arm_neon.h>
#endif

#define MK_SCALAR_ONLY __attribute__((optimize("no-tree-vectorize")))

/* ---------------------------------------------------------------- scalar */

static MK_SCALAR_ONLY int64_t compare_scalar(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  size_t i = 0;
  /* Word at a time; memcpy keeps unaligned loads defined behaviour. */
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    memcpy(&x, p + i, 8);
    memcpy(&y, q + i, 8);
    if (x != y) break;
  }
  for (; i < n; i++)
    if (p[i] != q[i]) return (int64_t)i;
  return -1;
}

#define ELEMENTWISE_KERNELS(SUFFIX, ATTR)                                        \
  static ATTR void scale_##SUFFIX(float *x, size_t n, float k) {                 \
    for (size_t i = 0; i < n; i++) x[i] = x[i] * k;                              \
  }                                                                              \
  static ATTR void add_##SUFFIX(float *restrict y, const float *restrict x,      \
                                size_t n) {                                      \
    for (size_t i = 0; i < n; i++) y[i] = y[i] + x[i];                           \
  }                                                                              \
  static ATTR void sub_##SUFFIX(float *restrict y, const float *restrict x,      \
                                size_t n) {                                      \
    for (size_t i = 0; i < n; i++) y[i] = y[i] - x[i];                           \
  }                                                                              \
  static ATTR void axpy_##SUFFIX(float *restrict y, float a,                     \
                                 const float *restrict x, size_t n) {            \
    for (size_t i = 0; i < n; i++) y[i] = y[i] + a * x[i];                       \
  }

ELEMENTWISE_KERNELS(scalar, MK_SCALAR_ONLY)

static MK_SCALAR_ONLY double dot_scalar(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
  return s;
}

static MK_SCALAR_ONLY double sum_scalar(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i];
  return s;
}

/* Per-vector kernels add components in index order, one float rounding per
 * step; every path keeps that order so results agree exactly. */
static MK_SCALAR_ONLY void magnitudes_scalar(const float *v, size_t count, size_t stride,
                                             size_t dims, float *out) {
  for (size_t i = 0; i < count; i++) {
    const float *e = v + i * stride;
    float s = e[0] * e[0];
    for (size_t j = 1; j < dims; j++) s = s + e[j] * e[j];
    out[i] = sqrtf(s);
  }
}

static MK_SCALAR_ONLY void dots_scalar(const float *a, const float *b, size_t count,
                                       size_t stride, size_t dims, float *out) {
  for (size_t i = 0; i < count; i++) {
    const float *x = a + i * stride, *y = b + i * stride;
    float s = x[0] * y[0];
    for (size_t j = 1; j < dims; j++) s = s + x[j] * y[j];
    out[i] = s;
  }
}

static MK_SCALAR_ONLY void normalize_scalar(float *v, size_t count, size_t stride,
                                            size_t dims) {
  for (size_t i = 0; i < count; i++) {
    float *e = v + i * stride;
    float s = e[0] * e[0];
    for (size_t j = 1; j < dims; j++) s = s + e[j] * e[j];
    float m = sqrtf(s);
    /* A zero vector stays zero instead of turning into NaNs. */
    if (m > 0)
      for (size_t j = 0; j < dims; j++) e[j] = e[j] / m;
  }
}

/* ------------------------------------------------------------------- x86 */
#ifdef MK_X86

static MK_TARGET_SSE2 int64_t compare_sse2(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
    __m128i y = _mm_loadu_si128((const __m128i *)(q + i));
    unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) ^ 0xFFFFu;
    if (mask) return (int64_t)(i + (size_t)__builtin_ctz(mask));
  }
  int64_t r = compare_scalar(p + i, q + i, n - i);
  return r < 0 ? -1 : (int64_t)i + r;
}

static MK_TARGET_AVX2 int64_t compare_avx2(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(p + i));
    __m256i y0 = _mm256_loadu_si256((const __m256i *)(q + i));
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(p + i + 32));
    __m256i y1 = _mm256_loadu_si256((const __m256i *)(q + i + 32));
    __m256i e = _mm256_and_si256(_mm256_cmpeq_epi8(x0, y0), _mm256_cmpeq_epi8(x1, y1));
    if ((unsigned)_mm256_movemask_epi8(e) != 0xFFFFFFFFu) break;
  }
  for (; i + 32 <= n; i += 32) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(p + i));
    __m256i y = _mm256_loadu_si256((const __m256i *)(q + i));
    unsigned mask = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, y));
    if (mask) return (int64_t)(i + (size_t)__builtin_ctz(mask));
  }
  int64_t r = compare_sse2(p + i, q + i, n - i);
  return r < 0 ? -1 : (int64_t)i + r;
}

ELEMENTWISE_KERNELS(sse2, MK_TARGET_SSE2)
ELEMENTWISE_KERNELS(avx2, MK_TARGET_AVX2)

static MK_TARGET_SSE2 double dot_sse2(const float *a, const float *b, size_t n) {
  __m128d s0 = _mm_setzero_pd(), s1 = _mm_setzero_pd();
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 x = _mm_loadu_ps(a + i), y = _mm_loadu_ps(b + i);
    s0 = _mm_add_pd(s0, _mm_mul_pd(_mm_cvtps_pd(x), _mm_cvtps_pd(y)));
    s1 = _mm_add_pd(s1, _mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(x, x)),
                                   _mm_cvtps_pd(_mm_movehl_ps(y, y))));
  }
  double lanes[2];
  _mm_storeu_pd(lanes, _mm_add_pd(s0, s1));
  return lanes[0] + lanes[1] + dot_scalar(a + i, b + i, n - i);
}

static MK_TARGET_AVX2 double dot_avx2(const float *a, const float *b, size_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
    s0 = _mm256_add_pd(s0, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                                         _mm256_cvtps_pd(_mm256_castps256_ps128(y))));
    s1 = _mm256_add_pd(s1, _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1))));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + dot_scalar(a + i, b + i, n - i);
}

static MK_TARGET_SSE2 double sum_sse2(const float *x, size_t n) {
  __m128d s0 = _mm_setzero_pd(), s1 = _mm_setzero_pd();
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_loadu_ps(x + i);
    s0 = _mm_add_pd(s0, _mm_cvtps_pd(v));
    s1 = _mm_add_pd(s1, _mm_cvtps_pd(_mm_movehl_ps(v, v)));
  }
  double lanes[2];
  _mm_storeu_pd(lanes, _mm_add_pd(s0, s1));
  return lanes[0] + lanes[1] + sum_scalar(x + i, n - i);
}

static MK_TARGET_AVX2 double sum_avx2(const float *x, size_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + sum_scalar(x + i, n - i);
}

/* Four 4-float vectors at a time, transposed so each register holds one
 * component of four vectors; the sums then run in component order. */
static MK_TARGET_SSE2 void magnitudes_sse2(const float *v, size_t count, size_t stride,
                                           size_t dims, float *out) {
  size_t i = 0;
  if (stride == 4) {
    for (; i + 4 <= count; i += 4) {
      __m128 r0 = _mm_loadu_ps(v + i * 4), r1 = _mm_loadu_ps(v + i * 4 + 4);
      __m128 r2 = _mm_loadu_ps(v + i * 4 + 8), r3 = _mm_loadu_ps(v + i * 4 + 12);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      __m128 s = _mm_mul_ps(r0, r0);
      if (dims > 1) s = _mm_add_ps(s, _mm_mul_ps(r1, r1));
      if (dims > 2) s = _mm_add_ps(s, _mm_mul_ps(r2, r2));
      if (dims > 3) s = _mm_add_ps(s, _mm_mul_ps(r3, r3));
      _mm_storeu_ps(out + i, _mm_sqrt_ps(s));
    }
  }
  magnitudes_scalar(v + i * stride, count - i, stride, dims, out + i);
}

static MK_TARGET_SSE2 void dots_sse2(const float *a, const float *b, size_t count,
                                     size_t stride, size_t dims, float *out) {
  size_t i = 0;
  if (stride == 4) {
    for (; i + 4 <= count; i += 4) {
      __m128 a0 = _mm_loadu_ps(a + i * 4), a1 = _mm_loadu_ps(a + i * 4 + 4);
      __m128 a2 = _mm_loadu_ps(a + i * 4 + 8), a3 = _mm_loadu_ps(a + i * 4 + 12);
      __m128 b0 = _mm_loadu_ps(b + i * 4), b1 = _mm_loadu_ps(b + i * 4 + 4);
      __m128 b2 = _mm_loadu_ps(b + i * 4 + 8), b3 = _mm_loadu_ps(b + i * 4 + 12);
      _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
      _MM_TRANSPOSE4_PS(b0, b1, b2, b3);
      __m128 s = _mm_mul_ps(a0, b0);
      if (dims > 1) s = _mm_add_ps(s, _mm_mul_ps(a1, b1));
      if (dims > 2) s = _mm_add_ps(s, _mm_mul_ps(a2, b2));
      if (dims > 3) s = _mm_add_ps(s, _mm_mul_ps(a3, b3));
      _mm_storeu_ps(out + i, s);
    }
  }
  dots_scalar(a + i * stride, b + i * stride, count - i, stride, dims, out + i);
}

/* Eight 4-float vectors at a time: each 256-bit register holds two vectors,
 * one per 128-bit lane, and the in-lane transpose of four registers leaves
 * each register holding one component of four vectors per lane. Sums run in
 * component order, as in the scalar path, so results are bit-identical. */
#define MK_TRANSPOSE_LANES(r0, r1, r2, r3)                                   \
  do {                                                                       \
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpacklo_ps(r2, r3); \
    __m256 t2 = _mm256_unpackhi_ps(r0, r1), t3 = _mm256_unpackhi_ps(r2, r3); \
    r0 = _mm256_castpd_ps(                                                   \
        _mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t1)));     \
    r1 = _mm256_castpd_ps(                                                   \
        _mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t1)));     \
    r2 = _mm256_castpd_ps(                                                   \
        _mm256_unpacklo_pd(_mm256_castps_pd(t2), _mm256_castps_pd(t3)));     \
    r3 = _mm256_castpd_ps(                                                   \
        _mm256_unpackhi_pd(_mm256_castps_pd(t2), _mm256_castps_pd(t3)));     \
  } while (0)

/* Lane 0 holds vectors 0, 2, 4, 6 and lane 1 vectors 1, 3, 5, 7: interleave. */
static MK_TARGET_AVX2 void store_lanes(float *out, __m256 s) {
  __m128 even = _mm256_castps256_ps128(s), odd = _mm256_extractf128_ps(s, 1);
  _mm_storeu_ps(out, _mm_unpacklo_ps(even, odd));
  _mm_storeu_ps(out + 4, _mm_unpackhi_ps(even, odd));
}

static MK_TARGET_AVX2 void dots_avx2(const float *a, const float *b, size_t count,
                                     size_t stride, size_t dims, float *out) {
  size_t i = 0;
  if (stride == 4) {
    for (; i + 8 <= count; i += 8) {
      const float *x = a + i * 4, *y = b + i * 4;
      __m256 a0 = _mm256_loadu_ps(x), a1 = _mm256_loadu_ps(x + 8);
      __m256 a2 = _mm256_loadu_ps(x + 16), a3 = _mm256_loadu_ps(x + 24);
      __m256 b0 = _mm256_loadu_ps(y), b1 = _mm256_loadu_ps(y + 8);
      __m256 b2 = _mm256_loadu_ps(y + 16), b3 = _mm256_loadu_ps(y + 24);
      MK_TRANSPOSE_LANES(a0, a1, a2, a3);
      MK_TRANSPOSE_LANES(b0, b1, b2, b3);
      __m256 s = _mm256_mul_ps(a0, b0);
      if (dims > 1) s = _mm256_add_ps(s, _mm256_mul_ps(a1, b1));
      if (dims > 2) s = _mm256_add_ps(s, _mm256_mul_ps(a2, b2));
      if (dims > 3) s = _mm256_add_ps(s, _mm256_mul_ps(a3, b3));
      store_lanes(out + i, s);
    }
  }
  dots_sse2(a + i * stride, b + i * stride, count - i, stride, dims, out + i);
}

static MK_TARGET_AVX2 void magnitudes_avx2(const float *v, size_t count, size_t stride,
                                           size_t dims, float *out) {
  size_t i = 0;
  if (stride == 4) {
    for (; i + 8 <= count; i += 8) {
      const float *e = v + i * 4;
      __m256 c0 = _mm256_loadu_ps(e), c1 = _mm256_loadu_ps(e + 8);
      __m256 c2 = _mm256_loadu_ps(e + 16), c3 = _mm256_loadu_ps(e + 24);
      MK_TRANSPOSE_LANES(c0, c1, c2, c3);
      __m256 s = _mm256_mul_ps(c0, c0);
      if (dims > 1) s = _mm256_add_ps(s, _mm256_mul_ps(c1, c1));
      if (dims > 2) s = _mm256_add_ps(s, _mm256_mul_ps(c2, c2));
      if (dims > 3) s = _mm256_add_ps(s, _mm256_mul_ps(c3, c3));
      store_lanes(out + i, _mm256_sqrt_ps(s));
    }
  }
  magnitudes_sse2(v + i * stride, count - i, stride, dims, out + i);
}

static MK_TARGET_SSE2 void normalize_sse2(float *v, size_t count, size_t stride,
                                          size_t dims) {
  size_t i = 0;
  if (stride == 4) {
    for (; i + 4 <= count; i += 4) {
      float *e = v + i * 4;
      __m128 c0 = _mm_loadu_ps(e), c1 = _mm_loadu_ps(e + 4);
      __m128 c2 = _mm_loadu_ps(e + 8), c3 = _mm_loadu_ps(e + 12);
      _MM_TRANSPOSE4_PS(c0, c1, c2, c3);
      __m128 s = _mm_mul_ps(c0, c0);
      if (dims > 1) s = _mm_add_ps(s, _mm_mul_ps(c1, c1));
      if (dims > 2) s = _mm_add_ps(s, _mm_mul_ps(c2, c2));
      if (dims > 3) s = _mm_add_ps(s, _mm_mul_ps(c3, c3));
      float m[4];
      _mm_storeu_ps(m, _mm_sqrt_ps(s));
      /* Same rule as the scalar path: zero-length vectors stay as they are. */
      for (size_t k = 0; k < 4; k++)
        if (m[k] > 0)
          for (size_t j = 0; j < dims; j++) e[k * 4 + j] = e[k * 4 + j] / m[k];
    }
  }
  normalize_scalar(v + i * stride, count - i, stride, dims);
}

#endif /* MK_X86 */

/* ----------------------------------------------------------------- arm64 */
#ifdef MK_ARM64

static int64_t compare_neon(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint8x16_t e = vceqq_u8(vld1q_u8(p + i), vld1q_u8(q + i));
    if (vminvq_u8(e) != 0xFF) break;
  }
  int64_t r = compare_scalar(p + i, q + i, n - i);
  return r < 0 ? -1 : (int64_t)i + r;
}

ELEMENTWISE_KERNELS(neon, )

static double dot_neon(const float *a, const float *b, size_t n) {
  float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t x = vld1q_f32(a + i), y = vld1q_f32(b + i);
    s0 = vaddq_f64(s0, vmulq_f64(vcvt_f64_f32(vget_low_f32(x)), vcvt_f64_f32(vget_low_f32(y))));
    s1 = vaddq_f64(s1, vmulq_f64(vcvt_high_f64_f32(x), vcvt_high_f64_f32(y)));
  }
  float64x2_t s = vaddq_f64(s0, s1);
  return vgetq_lane_f64(s, 0) + vgetq_lane_f64(s, 1) + dot_scalar(a + i, b + i, n - i);
}

static double sum_neon(const float *x, size_t n) {
  float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vld1q_f32(x + i);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(v)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(v));
  }
  float64x2_t s = vaddq_f64(s0, s1);
  return vgetq_lane_f64(s, 0) + vgetq_lane_f64(s, 1) + sum_scalar(x + i, n - i);
}

#endif /* MK_ARM64 */

/* -------------------------------------------------------------- dispatch */

typedef struct {
  int64_t (*compare)(const void *, const void *, size_t);
  void (*scale)(float *, size_t, float);
  void (*add)(float *restrict, const float *restrict, size_t);
  void (*sub)(float *restrict, const float *restrict, size_t);
  void (*axpy)(float *restrict, float, const float *restrict, size_t);
  double (*dot)(const float *, const float *, size_t);
  double (*sum)(const float *, size_t);
  void (*magnitudes)(const float *, size_t, size_t, size_t, float *);
  void (*dots)(const float *, const float *, size_t, size_t, size_t, float *);
  void (*normalize)(float *, size_t, size_t, size_t);
} kernels;

static const kernels KERNELS_SCALAR = {compare_scalar, scale_scalar, add_scalar,
                                       sub_scalar,     axpy_scalar,  dot_scalar,
                                       sum_scalar,     magnitudes_scalar, dots_scalar,
                                       normalize_scalar};
#ifdef MK_X86
static const kernels KERNELS_SSE2 = {compare_sse2, scale_sse2, add_sse2,
                                     sub_sse2,     axpy_sse2,  dot_sse2,
                                     sum_sse2,     magnitudes_sse2, dots_sse2,
                                     normalize_sse2};
static const kernels KERNELS_AVX2 = {compare_avx2, scale_avx2, add_avx2,
                                     sub_avx2,     axpy_avx2,  dot_avx2,
                                     sum_avx2,     magnitudes_avx2, dots_avx2,
                                     normalize_sse2};
#endif
#ifdef MK_ARM64
static const kernels KERNELS_NEON = {compare_neon, scale_neon, add_neon,
                                     sub_neon,     axpy_neon,  dot_neon,
                                     sum_neon,     magnitudes_scalar, dots_scalar,
                                     normalize_scalar};
#endif

static const kernels *active = &KERNELS_SCALAR;
static int32_t active_level = MK_SIMD_SCALAR;
static int32_t best_level = -1;

static int32_t detect_best(void) {
#if defined(MK_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return MK_SIMD_AVX2;
  if (__builtin_cpu_supports("sse2")) return MK_SIMD_SSE2;
  return MK_SIMD_SCALAR;
#elif defined(MK_ARM64)
  return MK_SIMD_NEON; /* Advanced SIMD is mandatory on AArch64. */
#else
  return MK_SIMD_SCALAR;
#endif
}

static int32_t use_level(int32_t level) {
  switch (level) {
  case MK_SIMD_SCALAR: active = &KERNELS_SCALAR; break;
#ifdef MK_X86
  case MK_SIMD_SSE2: active = &KERNELS_SSE2; break;
  case MK_SIMD_AVX2: active = &KERNELS_AVX2; break;
#endif
#ifdef MK_ARM64
  case MK_SIMD_NEON: active = &KERNELS_NEON; break;
#endif
  default: return active_level;
  }
  active_level = level;
  return level;
}

__attribute__((constructor)) static void mk_init(void) {
  best_level = detect_best();
  use_level(best_level);
}

uint32_t mk_abi_version(void) { return MEMKIT_ABI_VERSION; }
int32_t mk_simd_level(void) { return active_level; }
int32_t mk_simd_best(void) { return best_level; }

int32_t mk_simd_force(int32_t level) {
  /* Levels above what the CPU has would crash with SIGILL, so refuse them. */
  if (level == MK_SIMD_SCALAR) return use_level(level);
#ifdef MK_X86
  if (level == MK_SIMD_SSE2 && best_level >= MK_SIMD_SSE2) return use_level(level);
  if (level == MK_SIMD_AVX2 && best_level >= MK_SIMD_AVX2) return use_level(level);
#endif
#ifdef MK_ARM64
  if (level == MK_SIMD_NEON) return use_level(level);
#endif
  return active_level;
}

/* Copy and fill already run at memory bandwidth in libc; the kernels exist so
 * callers have one entry point for raw addresses. */
void mk_copy(void *dst, const void *src, size_t bytes) {
  if (bytes) memmove(dst, src, bytes);
}
void mk_fill(void *dst, int32_t byte, size_t bytes) {
  if (bytes) memset(dst, byte, bytes);
}
int64_t mk_compare(const void *a, const void *b, size_t bytes) {
  return active->compare(a, b, bytes);
}
int32_t mk_equals(const void *a, const void *b, size_t bytes) {
  return active->compare(a, b, bytes) < 0;
}
void mk_f32_scale(float *x, size_t n, float k) { active->scale(x, n, k); }
void mk_f32_add(float *y, const float *x, size_t n) { active->add(y, x, n); }
void mk_f32_sub(float *y, const float *x, size_t n) { active->sub(y, x, n); }
void mk_f32_axpy(float *y, float a, const float *x, size_t n) { active->axpy(y, a, x, n); }
double mk_f32_dot(const float *a, const float *b, size_t n) { return active->dot(a, b, n); }
double mk_f32_sum(const float *x, size_t n) { return active->sum(x, n); }
void mk_f32_magnitudes(const float *v, size_t count, size_t stride, size_t dims, float *out) {
  if (count && dims) active->magnitudes(v, count, stride, dims, out);
}
void mk_f32_dots(const float *a, const float *b, size_t count, size_t stride, size_t dims,
                 float *out) {
  if (count && dims) active->dots(a, b, count, stride, dims, out);
}
void mk_f32_normalize(float *v, size_t count, size_t stride, size_t dims) {
  if (count && dims) active->normalize(v, count, stride, dims);
}

/* ------------------------------------------------------ 32-bit counts */

void mk_copy_u32(void *dst, const void *src, uint32_t bytes) { mk_copy(dst, src, bytes); }
void mk_fill_u32(void *dst, int32_t byte, uint32_t bytes) { mk_fill(dst, byte, bytes); }
double mk_compare_u32(const void *a, const void *b, uint32_t bytes) { return (double)mk_compare(a, b, bytes); }
void mk_f32_scale_u32(float *x, uint32_t n, float k) { mk_f32_scale(x, n, k); }
void mk_f32_add_u32(float *y, const float *x, uint32_t n) { mk_f32_add(y, x, n); }
void mk_f32_sub_u32(float *y, const float *x, uint32_t n) { mk_f32_sub(y, x, n); }
void mk_f32_axpy_u32(float *y, float a, const float *x, uint32_t n) { mk_f32_axpy(y, a, x, n); }
double mk_f32_dot_u32(const float *a, const float *b, uint32_t n) { return mk_f32_dot(a, b, n); }
double mk_f32_sum_u32(const float *x, uint32_t n) { return mk_f32_sum(x, n); }
void mk_f32_magnitudes_u32(const float *v, uint32_t count, uint32_t stride, uint32_t dims, float *out) {
  mk_f32_magnitudes(v, count, stride, dims, out);
}
void mk_f32_dots_u32(const float *a, const float *b, uint32_t count, uint32_t stride, uint32_t dims, float *out) {
  mk_f32_dots(a, b, count, stride, dims, out);
}
void mk_f32_normalize_u32(float *v, uint32_t count, uint32_t stride, uint32_t dims) {
  mk_f32_normalize(v, count, stride, dims);
}

/* ---------------------------------------------------------------- census */

static _Alignas(64) unsigned char census_table[MK_CENSUS_SLOTS * MK_CENSUS_SLOT_BYTES];

void *mk_census_table(void) { return census_table; }

int32_t mk_census_claim(void) {
  for (int32_t i = 0; i < MK_CENSUS_SLOTS; i++) {
    int32_t *state = (int32_t *)(census_table + (size_t)i * MK_CENSUS_SLOT_BYTES);
    int32_t expected = 0;
    if (__atomic_compare_exchange_n(state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return i;
  }
  return -1;
}

/* ------------------------------------------------- names unlinked at exit */

/* A slot's state: free, being filled by mk_unlink_at_exit, listed, or taken by the exit handler (which then
 * owns it for good: the process is ending). Every change is a compare-and-swap, so the handler never reads a
 * slot that a listing or a forgetting thread is writing. */
enum { NAME_FREE = 0, NAME_FILLING = 1, NAME_LISTED = 2, NAME_EXITING = 3 };

typedef struct {
  int32_t state;
  int32_t pid; /* the process that listed it */
  uint64_t dev, ino;
  char path[MK_EXIT_PATH_BYTES];
} exit_name;

static exit_name exit_names[MK_EXIT_NAMES];
static int32_t exit_names_used; /* slots at or past it were never listed: the handler looks no further */
static int32_t exit_hook;       /* 0 not registered, 1 being registered, 2 registered, 3 registration failed */
static int32_t exit_ran;

static void unlink_listed(void) {
  if (__atomic_exchange_n(&exit_ran, 1, __ATOMIC_ACQ_REL)) return; /* atexit and at_quick_exit both, or twice */
  int saved = errno;
  int32_t self = (int32_t)getpid();
  int32_t used = __atomic_load_n(&exit_names_used, __ATOMIC_ACQUIRE);
  for (int32_t i = 0; i < used; i++) {
    exit_name *n = &exit_names[i];
    int32_t listed = NAME_LISTED;
    if (!__atomic_compare_exchange_n(&n->state, &listed, NAME_EXITING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      continue;
    if (n->pid != self) continue; /* listed by the process this one was forked from: its name, not ours */
#if defined(__APPLE__)
    shm_unlink(n->path);
#else
    struct stat now;
    if (lstat(n->path, &now) == 0 && (uint64_t)now.st_dev == n->dev && (uint64_t)now.st_ino == n->ino)
      unlink(n->path);
#endif
  }
  errno = saved;
}

/* Registers unlink_listed once per process; 1 when it is registered. */
static int hook_exit(void) {
  int32_t state = __atomic_load_n(&exit_hook, __ATOMIC_ACQUIRE);
  if (state == 0) {
    int32_t expected = 0;
    if (__atomic_compare_exchange_n(&exit_hook, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      int registered = atexit(unlink_listed) == 0;
#if !defined(__APPLE__)
      registered |= at_quick_exit(unlink_listed) == 0;
#endif
      __atomic_store_n(&exit_hook, registered ? 2 : 3, __ATOMIC_RELEASE);
      return registered;
    }
  }
  while ((state = __atomic_load_n(&exit_hook, __ATOMIC_ACQUIRE)) == 1) sched_yield(); /* another thread registers */
  return state == 2;
}

int32_t mk_unlink_at_exit(const char *path, uint64_t dev, uint64_t ino) {
  if (path == NULL) return -1;
  size_t length = strnlen(path, MK_EXIT_PATH_BYTES);
  if (length == 0 || length == MK_EXIT_PATH_BYTES) return -1;
  if (!hook_exit()) return -1;
  for (int32_t i = 0; i < MK_EXIT_NAMES; i++) {
    exit_name *n = &exit_names[i];
    int32_t free_state = NAME_FREE;
    if (__atomic_load_n(&n->state, __ATOMIC_RELAXED) != NAME_FREE ||
        !__atomic_compare_exchange_n(&n->state, &free_state, NAME_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      continue;
    memcpy(n->path, path, length + 1);
    n->dev = dev;
    n->ino = ino;
    n->pid = (int32_t)getpid();
    int32_t used = __atomic_load_n(&exit_names_used, __ATOMIC_RELAXED);
    while (used < i + 1 &&
           !__atomic_compare_exchange_n(&exit_names_used, &used, i + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
    }
    __atomic_store_n(&n->state, NAME_LISTED, __ATOMIC_RELEASE);
    return i;
  }
  return -1;
}

void mk_forget_at_exit(int32_t slot) {
  if (slot < 0 || slot >= MK_EXIT_NAMES) return;
  int32_t listed = NAME_LISTED;
  /* Fails when the slot is free already, or the exit handler has it (the process is ending). */
  __atomic_compare_exchange_n(&exit_names[slot].state, &listed, NAME_FREE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ libc's heap */

double mk_malloc(double size) { return (double)(uintptr_t)malloc((size_t)size); }

double mk_realloc(double address, double size) {
  return (double)(uintptr_t)realloc((void *)(uintptr_t)address, (size_t)size);
}

double mk_memalign(double alignment, double size) {
  void *p = NULL;
  int code = posix_memalign(&p, (size_t)alignment, (size_t)size);
  if (code != 0) {
    errno = code;
    return 0;
  }
  return (double)(uintptr_t)p;
}

void mk_free(double address) { free((void *)(uintptr_t)address); }

double mk_usable_size(double address) {
#if defined(__APPLE__)
  return (double)malloc_size((const void *)(uintptr_t)address);
#elif defined(__GLIBC__) || defined(__linux__)
  return (double)malloc_usable_size((void *)(uintptr_t)address);
#else
  (void)address;
  return 0;
#endif
}

int32_t mk_madvise(double address, double length, int32_t advice) {
  return madvise((void *)(uintptr_t)address, (size_t)length, advice);
}

/* ------------------------------------------------------------ PSI polls */

#if defined(__unix__) || defined(__APPLE__)
#include <poll.h>
#include <time.h>

static int64_t monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int32_t mk_poll_close(void *fds, uint32_t nfds, int32_t timeout_ms) {
  struct pollfd *p = (struct pollfd *)fds;
  /* A signal ends the poll early: poll again for the time left only, so a stream of signals cannot hold
   * the slice (and the duplicates) open past its timeout. */
  int64_t until = monotonic_ms() + timeout_ms;
  int r, left = timeout_ms;
  for (;;) {
    r = poll(p, (nfds_t)nfds, left);
    if (r >= 0 || errno != EINTR) break;
    int64_t remaining = until - monotonic_ms();
    if (remaining <= 0) {
      r = 0;
      break;
    }
    left = (int)remaining;
  }
  int failure = r < 0 ? errno : 0;
  for (uint32_t i = 0; i < nfds; i++) close(p[i].fd);
  return r < 0 ? -failure : r;
}
#endif
