import assert from "node:assert/strict";
import { test } from "node:test";
import { fallbackKernels } from "../../ffi/fallback.ts";
import { native, type SimdLevel } from "../../ffi/native.ts";
import { spyOnNativeCalls, useKernels } from "../_native_hooks.ts";
import { nativeInfo, simd, SystemAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const LEVELS: SimdLevel[] = ["avx2", "sse2", "scalar"];
const OFFSETS = [0, 1, 2, 3, 5, 7];

function withLevel(level: SimdLevel, body: () => void): void {
  const before = native.simd;
  const got = useKernels(level);
  try {
    if (got === level) body();
  } finally {
    useKernels(before);
  }
}

function randomFloats(next: () => number, n: number, offset: number): Float32Array {
  const buffer = new Float32Array(n + offset + 1);
  for (let i = 0; i < buffer.length; i++) buffer[i] = ((next() % 2001) - 1000) / 37;
  return buffer.subarray(offset, offset + n);
}

test("native kernels are in use on this machine", () => {
  assert.equal(nativeInfo().simd, "avx2");
  assert.ok(native.memkit !== null);
});

for (const level of LEVELS) {
  test(`${level} byte kernels agree with the fallback on sizes 1..257 at unaligned offsets`, () => {
    withLevel(level, () => {
      const next = xorshift32(0xb17e5);
      for (const offset of OFFSETS) {
        for (let n = 1; n <= 257; n++) {
          const a = new Uint8Array(n + offset + 8).subarray(offset, offset + n);
          for (let i = 0; i < n; i++) a[i] = next();
          const b = a.slice();
          assert.equal(native.kernels.compare(a, b, n), -1);
          const at = below(next, n);
          b[at] ^= 1 + below(next, 255);
          assert.equal(native.kernels.compare(a, b, n), fallbackKernels.compare(a, b, n), `n ${n} offset ${offset}`);
          assert.equal(native.kernels.compare(a, b, n), at);

          const dst = new Uint8Array(n + offset + 8);
          native.kernels.copy(dst.subarray(offset, offset + n), a);
          assert.equal(fallbackKernels.compare(dst.subarray(offset, offset + n), a, n), -1);
          assert.equal(dst[offset + n], 0, "copy stays in bounds");
          native.kernels.fill(dst.subarray(offset, offset + n), 0x5a);
          assert.equal(dst.subarray(offset, offset + n).every((x) => x === 0x5a), true);
          assert.equal(dst[offset + n], 0, "fill stays in bounds");
        }
      }
    });
  });

  test(`${level} float kernels match the fallback bit for bit (reductions within 1e-12)`, () => {
    withLevel(level, () => {
      const next = xorshift32(0xf10a7);
      for (const offset of [0, 1, 3]) {
        for (let n = 1; n <= 257; n += n < 40 ? 1 : 7) {
          const x = randomFloats(next, n, offset);
          const y1 = randomFloats(next, n, offset);
          const y2 = y1.slice();
          const k = ((next() % 2001) - 1000) / 37;
          const ops: [string, (y: Float32Array, kernels: typeof fallbackKernels) => void][] = [
            ["axpy", (y, kn) => kn.f32Axpy(y, k, x, n)],
            ["scale", (y, kn) => kn.f32Scale(y, n, k)],
            ["add", (y, kn) => kn.f32Add(y, x, n)],
            ["sub", (y, kn) => kn.f32Sub(y, x, n)],
          ];
          for (const [name, op] of ops) {
            op(y1, native.kernels);
            op(y2, fallbackKernels);
            assert.deepEqual(y1, y2, `${name} n ${n} offset ${offset}`);
          }
          const dot = native.kernels.f32Dot(x, y1, n);
          const dotRef = fallbackKernels.f32Dot(x, y1, n);
          assert.ok(Math.abs(dot - dotRef) <= 1e-12 * (1 + Math.abs(dotRef)), `dot n ${n}`);
          const sum = native.kernels.f32Sum(x, n);
          assert.ok(Math.abs(sum - fallbackKernels.f32Sum(x, n)) <= 1e-12 * (1 + Math.abs(sum)), `sum n ${n}`);
        }
      }
      for (const [dims, stride] of [[1, 1], [2, 2], [3, 4], [4, 4], [3, 3]]) {
        for (let count = 1; count <= 37; count++) {
          const v1 = randomFloats(next, count * stride, 0);
          const w = randomFloats(next, count * stride, 0);
          if (count > 2) v1.fill(0, 2 * stride, 2 * stride + dims); // a zero vector
          const v2 = v1.slice();
          const out1 = new Float32Array(count), out2 = new Float32Array(count);
          native.kernels.f32Magnitudes(v1, count, stride, dims, out1);
          fallbackKernels.f32Magnitudes(v2, count, stride, dims, out2);
          assert.deepEqual(out1, out2, `magnitudes dims ${dims} count ${count}`);
          native.kernels.f32Dots(v1, w, count, stride, dims, out1);
          fallbackKernels.f32Dots(v2, w, count, stride, dims, out2);
          assert.deepEqual(out1, out2, `dots dims ${dims} count ${count}`);
          native.kernels.f32Normalize(v1, count, stride, dims);
          fallbackKernels.f32Normalize(v2, count, stride, dims);
          assert.deepEqual(v1, v2, `normalize dims ${dims} count ${count}`);
        }
      }
    });
  });
}

test("simd functions give the same answers on native and fallback paths, sizes 0..257 and unaligned", () => {
  const allocator = new SystemAllocator();
  const results: Record<string, unknown[]> = { native: [], js: [] };
  for (const path of ["avx2", "js"] as const) {
    const seen = results[path === "js" ? "js" : "native"];
    withLevel(path, () => {
      const rng = xorshift32(0x51d);
      const sizes = [...Array(258).keys(), 511, 512, 513, 1000, 4095, 4097];
      for (const offset of OFFSETS) {
        for (const n of sizes) {
          // One native block, one JS array: simd works on both.
          const block = allocator.alloc(n + offset + 1);
          const a = block.subarray(offset, offset + n);
          block[offset + n] = 0xee; // a guard byte just past the view
          for (let i = 0; i < n; i++) a[i] = rng();
          const b = new Uint8Array(n + 3).subarray(3);
          simd.copy(b, a);
          seen.push(simd.compare(a, b), simd.equals(a, b));
          if (n > 0) b[rng() % n] ^= 0x80;
          seen.push(simd.compare(a, b), simd.equals(a, b), simd.compare(a, b.subarray(0, n >> 1)));
          simd.fill(a, n & 0xff);
          seen.push(a.every((x) => x === (n & 0xff)), block[offset + n]);
          allocator.free(block);
        }
      }
    });
  }
  assert.deepEqual(results.native, results.js);
  assert.ok(results.native.length > 1000);
});

test("simd.compare() calls libmemkit for large inputs and stays in JS for small ones", () => {
  const spy = spyOnNativeCalls();
  try {
    simd.compare(new Uint8Array(8), new Uint8Array(8));
    assert.deepEqual(spy.calls, []);
    simd.compare(new Uint8Array(1 << 16), new Uint8Array(1 << 16));
    assert.deepEqual(spy.calls, ["kernel.compare"]);
  } finally {
    spy.restore();
  }
});

test("simd.compare() handles different lengths and views of any type", () => {
  assert.equal(simd.compare(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2])), 2);
  assert.equal(simd.compare(new Uint8Array(0), new Uint8Array(0)), -1);
  assert.equal(simd.compare(new Uint16Array([1]), new Uint8Array([1, 0])), -1);
  assert.equal(simd.equals(new Float64Array([1.5]), new Float64Array([1.5])), true);
  assert.equal(simd.equals(new Uint8Array(3), new Uint8Array(4)), false);
  const big = new Uint8Array(1 << 20);
  const other = big.slice();
  other[(1 << 20) - 1] = 1;
  assert.equal(simd.compare(big, other), (1 << 20) - 1);
  assert.equal(simd.equals(big, other), false);
});

test("simd.copy() handles overlapping views like memmove", () => {
  const data = new Uint8Array(600).map((_, i) => i & 0xff);
  const expected = data.slice();
  expected.copyWithin(100, 0, 500);
  simd.copy(data.subarray(100), data.subarray(0, 500));
  assert.deepEqual(data, expected);
});
