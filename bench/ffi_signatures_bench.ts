// The per-symbol table of FFI call overhead: for each hot native symbol,
// memkit's call (what `src/` runs, checks included) against the cheapest
// correct declaration of the same C function called directly, and against
// the declaration a raw-FFI user writes from the C prototype (size_t as
// `usize`). The functions do almost nothing, so the time is the call itself.
import { createBunAdapter } from "../ffi/bun.ts";
import { createDenoAdapter } from "../ffi/deno.ts";
import { detectRuntime } from "../ffi/host.ts";
import { native, nativeReady } from "../ffi/native.ts";
import { platformConstants } from "../ffi/platform.ts";
import type { SymbolTable } from "../ffi/symbols.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

await nativeReady();
// The name of each kernel's ceiling case (bench/scorecard.ts quotes it).
const REAL_LENGTHS = "cheapest declaration, direct, + each array's real byte length";
const adapter = detectRuntime() === "bun" ? createBunAdapter() : createDenoAdapter();
const platform = platformConstants(native.os)!;

// Straight from the C prototypes: every size_t and pointer as usize.
const fromPrototypes: SymbolTable = {
  malloc: { parameters: ["usize"], result: "usize" },
  free: { parameters: ["usize"], result: "void" },
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
};
type Fn = (...args: never[]) => unknown;
const libc = adapter.open(platform.libcPaths[0], fromPrototypes) as Record<string, Fn>;
const lib = native.library === null ? null : adapter.open(native.library, {
  // The cheapest correct declarations: doubles for addresses and sizes (exact
  // below 2^53), buffers for arrays, uint32_t counts where they fit.
  mk_malloc: { parameters: ["f64"], result: "f64" },
  mk_free: { parameters: ["f64"], result: "void" },
  mk_madvise: { parameters: ["f64", "f64", "i32"], result: "i32" },
  mk_f32_dot_u32: { parameters: ["buffer", "buffer", "u32"], result: "f64" },
  mk_f32_dot: { parameters: ["buffer", "buffer", "usize"], result: "f64" },
  mk_compare_u32: { parameters: ["buffer", "buffer", "u32"], result: "f64" },
  mk_compare: { parameters: ["buffer", "buffer", "usize"], result: "i64" },
  mk_f32_magnitudes_u32: { parameters: ["buffer", "u32", "u32", "u32", "buffer"], result: "void" },
  mk_f32_magnitudes: { parameters: ["buffer", "usize", "usize", "usize", "buffer"], result: "void" },
}) as Record<string, Fn> | null;

if (lib !== null) {
  const mallocDouble = lib.mk_malloc as (n: number) => number, freeDouble = lib.mk_free as (a: number) => void;
  const mallocSizeT = libc.malloc as (n: number) => number, freeSizeT = libc.free as (a: number) => void;
  const heap = native.heap;
  compare("FFI per call: malloc(64)+free", "cheapest declaration (double), direct", {
    "cheapest declaration (double), direct": () => freeDouble(mallocDouble(64)),
    "memkit (native.heap)": () => heap.free(heap.malloc(64)),
    "declared from the C prototype (size_t)": () => freeSizeT(mallocSizeT(64)),
  }, 100);

  // madvise(MADV_NORMAL) over one page of a live block: a system call that changes nothing.
  const page = heap.memalign(native.pageSize, native.pageSize);
  const madviseDouble = lib.mk_madvise as (a: number, n: number, advice: number) => number;
  const madviseSizeT = libc.madvise as (a: number, n: number, advice: number) => number;
  compare("FFI per call: madvise(page, MADV_NORMAL)", "cheapest declaration (double), direct", {
    "cheapest declaration (double), direct": () => madviseDouble(page, native.pageSize, 0),
    "memkit (native.heap)": () => heap.madvise(page, native.pageSize, 0),
    "declared from the C prototype (size_t)": () => madviseSizeT(page, native.pageSize, 0),
  }, 100);

  // Kernels on 64 floats (256 bytes): above the size where memkit answers in JavaScript.
  // Each kernel's "+ real lengths" case is the least a safe call can do (safety rule 3): the direct call after
  // reading each array's byte length through the engine's own getter and comparing it with the count (the
  // scorecard's ceiling for memkit's checked kernel).
  const byteLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), "byteLength")!
    .get! as (this: ArrayBufferView) => number;
  const a = new Float32Array(64).fill(1.5), b = new Float32Array(64).fill(2);
  const kernels = native.kernels;
  const dotU32 = lib.mk_f32_dot_u32 as (a: Float32Array, b: Float32Array, n: number) => number;
  const dotSizeT = lib.mk_f32_dot as (a: Float32Array, b: Float32Array, n: number) => number;
  compare("FFI per call: f32 dot of 64 floats", "cheapest declaration (uint32_t count), direct", {
    "cheapest declaration (uint32_t count), direct": () => do_not_optimize(dotU32(a, b, 64)),
    "memkit (checked kernel)": () => do_not_optimize(kernels.f32Dot(a, b, 64)),
    [REAL_LENGTHS]: () =>
      do_not_optimize(byteLength.call(a) >= 256 && byteLength.call(b) >= 256 ? dotU32(a, b, 64) : 0),
    "declared from the C prototype (size_t)": () => do_not_optimize(dotSizeT(a, b, 64)),
  }, 100);

  const x = new Uint8Array(256), y = new Uint8Array(256);
  const compareU32 = lib.mk_compare_u32 as (a: Uint8Array, b: Uint8Array, n: number) => number;
  const compareSizeT = lib.mk_compare as (a: Uint8Array, b: Uint8Array, n: number) => number;
  compare("FFI per call: compare 256 bytes", "cheapest declaration (uint32_t count), direct", {
    "cheapest declaration (uint32_t count), direct": () => do_not_optimize(compareU32(x, y, 256)),
    "memkit (checked kernel)": () => do_not_optimize(kernels.compare(x, y, 256)),
    [REAL_LENGTHS]: () =>
      do_not_optimize(byteLength.call(x) >= 256 && byteLength.call(y) >= 256 ? compareU32(x, y, 256) : 0),
    "declared from the C prototype (size_t)": () => do_not_optimize(compareSizeT(x, y, 256)),
  }, 100);

  // 16 f32x3 vectors (stride 4) into 16 magnitudes: five arguments, three of them counts.
  const v = new Float32Array(64).fill(1), out = new Float32Array(16);
  type Magnitudes = (v: Float32Array, count: number, stride: number, dims: number, out: Float32Array) => void;
  const magnitudesU32 = lib.mk_f32_magnitudes_u32 as Magnitudes, magnitudesSizeT = lib.mk_f32_magnitudes as Magnitudes;
  compare("FFI per call: magnitudes of 16 f32x3", "cheapest declaration (uint32_t count), direct", {
    "cheapest declaration (uint32_t count), direct": () => magnitudesU32(v, 16, 4, 3, out),
    "memkit (checked kernel)": () => kernels.f32Magnitudes(v, 16, 4, 3, out),
    [REAL_LENGTHS]: () => {
      if (byteLength.call(v) >= 256 && byteLength.call(out) >= 64) magnitudesU32(v, 16, 4, 3, out);
    },
    "declared from the C prototype (size_t)": () => magnitudesSizeT(v, 16, 4, 3, out),
  }, 100);
}
