/**
 * The TypeScript implementation of every libmemkit kernel, used when no
 * compiler or library is available (or `MEMKIT_NATIVE=0`). Element-wise float
 * results match the C kernels bit for bit: each step is rounded to float32
 * with Math.fround, as C rounds each float operation.
 *
 * @module
 */
import type { KernelImpl } from "./types.ts";

const fround = Math.fround;
// The intrinsic methods: a subclass overriding set or fill changes nothing.
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as Uint8Array;
const set = TypedArrayPrototype.set;
const fill = TypedArrayPrototype.fill;

/**
 * Kernels in plain TypeScript. Like libmemkit's, they trust their arguments:
 * `native.kernels` checks every call first (ffi/boundary.ts).
 */
export const fallbackKernels: KernelImpl = {
  copy(dst, src, bytes) {
    // The boundary passes all of src (bytes is its real length); set copies as memmove.
    if (bytes > 0) set.call(dst, src);
  },
  fill(dst, byte, bytes) {
    fill.call(dst, byte, 0, bytes);
  },
  compare(a, b, bytes) {
    for (let i = 0; i < bytes; i++) if (a[i] !== b[i]) return i;
    return -1;
  },
  f32Scale(x, n, k) {
    const kf = fround(k);
    for (let i = 0; i < n; i++) x[i] = x[i] * kf;
  },
  f32Add(y, x, n) {
    for (let i = 0; i < n; i++) y[i] = y[i] + x[i];
  },
  f32Sub(y, x, n) {
    for (let i = 0; i < n; i++) y[i] = y[i] - x[i];
  },
  f32Axpy(y, a, x, n) {
    const af = fround(a);
    for (let i = 0; i < n; i++) y[i] = y[i] + fround(af * x[i]);
  },
  f32Dot(a, b, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    return s;
  },
  f32Sum(x, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i];
    return s;
  },
  f32Magnitudes(v, count, stride, dims, out) {
    for (let i = 0, e = 0; i < count; i++, e += stride) {
      let s = fround(v[e] * v[e]);
      for (let j = 1; j < dims; j++) s = fround(s + fround(v[e + j] * v[e + j]));
      out[i] = Math.sqrt(s);
    }
  },
  f32Dots(a, b, count, stride, dims, out) {
    for (let i = 0, e = 0; i < count; i++, e += stride) {
      let s = fround(a[e] * b[e]);
      for (let j = 1; j < dims; j++) s = fround(s + fround(a[e + j] * b[e + j]));
      out[i] = s;
    }
  },
  f32Normalize(v, count, stride, dims) {
    for (let i = 0, e = 0; i < count; i++, e += stride) {
      let s = fround(v[e] * v[e]);
      for (let j = 1; j < dims; j++) s = fround(s + fround(v[e + j] * v[e + j]));
      const m = fround(Math.sqrt(s));
      if (m > 0) { for (let j = 0; j < dims; j++) v[e + j] = v[e + j] / m; }
    }
  },
};
