/**
 * The native layer's single entry point. On import it detects the runtime,
 * opens libc through that runtime's adapter and finds or builds libmemkit
 * (falling back to TypeScript kernels). `src/` imports `native` from here and
 * nothing else from `ffi/`.
 *
 * A missing libc (no `--allow-ffi`, an unsupported OS) does not fail the
 * import: `native.libcError` says why and every libc function throws it, so
 * pure-TypeScript parts of memkit keep working.
 *
 * @module
 */
import { createBunAdapter } from "./bun.ts";
import { createDenoAdapter } from "./deno.ts";
import { fallbackKernels } from "./fallback.ts";
import { detectRuntime, granted, hostArch, hostOs } from "./host.ts";

export { onProcessExit, requestGC, setExitCode, unrefTimer } from "./host.ts";
import { loadLibmemkit } from "./loader.ts";
import { type PlatformConstants, platformConstants } from "./platform.ts";
import { libcSymbols } from "./symbols.ts";
import type { FfiAdapter, Kernels, Libc, MemkitLibrary } from "./types.ts";

/** SIMD levels as libmemkit numbers them (MK_SIMD_* in memkit.h). */
export const SIMD_LEVELS = ["scalar", "sse2", "avx2", "neon"] as const;

/** The kernel implementation in use. */
export type SimdLevel = "avx2" | "sse2" | "neon" | "scalar" | "js";

/** Everything `src/` needs from the native side. */
export interface NativeLayer {
  readonly runtime: "deno" | "bun";
  readonly os: string;
  readonly arch: string;
  readonly platform: PlatformConstants;
  readonly pageSize: number;
  /** libc; its functions throw `libcError` when it could not be opened. */
  readonly libc: Libc;
  readonly libcError: string | null;
  /** An ArrayBuffer over native memory (no deallocator: memkit frees it). */
  wrap(address: number, byteLength: number): ArrayBuffer;
  /** Address of a non-empty view's first byte. */
  addressOf(view: ArrayBufferView): number;
  /** The calling thread's errno; read it right after the failing call. */
  errno(): number;
  /** Kernels in use: libmemkit's, or the TypeScript fallback. */
  kernels: Kernels;
  /** libmemkit itself when loaded (tests use it to force dispatch levels). */
  readonly memkit: MemkitLibrary | null;
  simd: SimdLevel;
  /**
   * Byte count below which a JS loop beats one FFI call to a kernel. A Deno
   * FFI call costs ~100 ns here and a Bun one ~20 ns (bench/simd_bench.ts:
   * a 256-byte compare takes 75 ns in a JS loop, 156 ns through Deno's FFI,
   * 23 ns through Bun's).
   */
  readonly jsBelowBytes: number;
  /**
   * Largest ArrayBuffer worth wrapping over native memory in one piece. Deno's
   * wrap cost does not grow with size (1.5–3 µs from 1 to 64 MiB); Bun's does
   * (~3 µs at 1 MiB, ~80 µs at 64 MiB, from its external-memory accounting).
   */
  readonly wrapChunkBytes: number;
  readonly library: string | null;
  readonly libraryError: string | null;
}

function unavailableLibc(reason: string): Libc {
  const fail = (): never => {
    throw new Error(reason);
  };
  return new Proxy({} as Libc, { get: (_target, key) => (key === "malloc_usable_size" ? undefined : fail) });
}

function openLibc(adapter: FfiAdapter, platform: PlatformConstants | null, os: string) {
  if (!platform) return { libc: null, error: `memkit has no native support for the OS "${os}"` };
  if (!granted({ name: "ffi" })) {
    return { libc: null, error: "memkit needs FFI access: run Deno with --allow-ffi" };
  }
  const reasons: string[] = [];
  for (const path of platform.libcPaths) {
    try {
      return { libc: adapter.open(path, libcSymbols(platform)) as unknown as Libc, error: null };
    } catch (error) {
      reasons.push(`  - ${path}: ${error instanceof Error ? error.message : error}`);
    }
  }
  return { libc: null, error: `memkit could not open the C library; tried:\n${reasons.join("\n")}` };
}

function nativeKernels(lib: MemkitLibrary): Kernels {
  return {
    copy: (dst, src) => lib.mk_copy(dst, src, src.length),
    fill: (dst, byte) => lib.mk_fill(dst, byte, dst.length),
    compare: (a, b, bytes) => lib.mk_compare(a, b, bytes),
    f32Scale: (x, n, k) => lib.mk_f32_scale(x, n, k),
    f32Add: (y, x, n) => lib.mk_f32_add(y, x, n),
    f32Sub: (y, x, n) => lib.mk_f32_sub(y, x, n),
    f32Axpy: (y, a, x, n) => lib.mk_f32_axpy(y, a, x, n),
    f32Dot: (a, b, n) => lib.mk_f32_dot(a, b, n),
    f32Sum: (x, n) => lib.mk_f32_sum(x, n),
    f32Magnitudes: (v, count, stride, dims, out) => lib.mk_f32_magnitudes(v, count, stride, dims, out),
    f32Dots: (a, b, count, stride, dims, out) => lib.mk_f32_dots(a, b, count, stride, dims, out),
    f32Normalize: (v, count, stride, dims) => lib.mk_f32_normalize(v, count, stride, dims),
  };
}

async function initialize(): Promise<NativeLayer> {
  const runtime = detectRuntime();
  if (runtime === null) throw new Error("memkit runs on Deno 2 or Bun 1");
  const adapter = runtime === "deno" ? createDenoAdapter() : createBunAdapter();
  const os = hostOs();
  const arch = hostArch();
  const platform = platformConstants(os);
  const opened = openLibc(adapter, platform, os);
  const libc = opened.libc ?? unavailableLibc(opened.error!);

  let errnoView: Int32Array | null = null;
  const pageSize = opened.libc && platform ? libc.sysconf(platform._SC_PAGESIZE) : 4096;

  const load = opened.libc && platform
    ? await loadLibmemkit(adapter, platform, arch)
    : { library: null, path: null, error: opened.error };
  const memkit = load.library;
  return {
    runtime,
    os,
    arch,
    platform: platform ?? platformConstants("linux")!,
    pageSize: pageSize > 0 ? pageSize : 4096,
    libc,
    libcError: opened.error,
    wrap: adapter.wrap,
    addressOf: adapter.addressOf,
    errno() {
      // errno lives in thread-local storage; this module instance belongs to
      // one JS thread, so the location is fixed after the first read.
      errnoView ??= new Int32Array(adapter.wrap(libc.errno_location(), 4));
      return errnoView[0];
    },
    kernels: memkit ? nativeKernels(memkit) : fallbackKernels,
    memkit,
    simd: memkit ? SIMD_LEVELS[memkit.mk_simd_level()] ?? "scalar" : "js",
    jsBelowBytes: runtime === "deno" ? 512 : 32,
    wrapChunkBytes: runtime === "deno" ? 64 << 20 : 1 << 20,
    library: load.path,
    libraryError: load.error,
  };
}

/** The native layer of this JS thread. */
export const native: NativeLayer = await initialize();

/** Records every libc and kernel call until `restore()`; for tests that prove bad input makes none. */
export function spyOnNativeCalls(): { readonly calls: string[]; restore(): void } {
  const calls: string[] = [];
  const libc = native.libc as unknown as Record<string, unknown>;
  const originalLibc = { ...libc };
  for (const [key, f] of Object.entries(originalLibc)) {
    if (typeof f !== "function") continue;
    libc[key] = (...args: unknown[]) => {
      calls.push(key);
      return (f as (...a: unknown[]) => unknown)(...args);
    };
  }
  const originalKernels = native.kernels;
  const spied: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(originalKernels)) {
    spied[key] = (...args: unknown[]) => {
      calls.push(`kernel.${key}`);
      return (f as (...a: unknown[]) => unknown)(...args);
    };
  }
  native.kernels = spied as unknown as Kernels;
  return {
    calls,
    restore() {
      Object.assign(libc, originalLibc);
      native.kernels = originalKernels;
    },
  };
}

/** Switches kernels between libmemkit (at a given level) and the fallback; for tests and benchmarks. */
export function useKernels(level: SimdLevel): SimdLevel {
  if (level === "js" || !native.memkit) {
    native.kernels = fallbackKernels;
    native.simd = "js";
    return "js";
  }
  const got = native.memkit.mk_simd_force(SIMD_LEVELS.indexOf(level as typeof SIMD_LEVELS[number]));
  native.kernels = nativeKernels(native.memkit);
  native.simd = SIMD_LEVELS[got] ?? "scalar";
  return native.simd;
}
