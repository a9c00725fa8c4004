/**
 * The native layer's single entry point. On import it detects the runtime,
 * opens libc through that runtime's adapter and finds or builds libmemkit
 * (falling back to TypeScript kernels). `src/` imports `native` from here and
 * nothing else from `ffi/`, except the engine's intrinsic view accessors
 * (`intrinsic` in boundary.ts, also re-exported here), which need no runtime.
 *
 * A missing libc (no `--allow-ffi`, an unsupported OS) does not fail the
 * import: `native.libcError` says why and every libc function throws it, so
 * pure-TypeScript parts of memkit keep working.
 *
 * @module
 */
import { AllocationError } from "../src/base/errors.ts";
import { checkedKernels } from "./boundary.ts";
import { createBunAdapter } from "./bun.ts";
import { createDenoAdapter } from "./deno.ts";
import { fallbackKernels } from "./fallback.ts";
import { detectRuntime, granted, hostArch, hostOs } from "./host.ts";

export { intrinsic, typedArrayByteLength } from "./boundary.ts";
export type { NativeHeap } from "./heap.ts";
export {
  currentExitCode,
  granted,
  onProcessExit,
  readEnv,
  requestGC,
  setExitCode,
  unrefTimer,
  workerLabel,
} from "./host.ts";
import { libcHeap, memkitHeap, type NativeHeap } from "./heap.ts";
import { findLibmemkit, holdBuilds, type LibraryLookup } from "./loader.ts";
import { type PlatformConstants, platformConstants } from "./platform.ts";
import { libcSymbols } from "./symbols.ts";
import type { FfiAdapter, KernelImpl, Kernels, Libc, MemkitLibrary } from "./types.ts";

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
  /**
   * Why the runtime's FFI cannot be used at all (Deno without `--allow-ffi`:
   * "memkit needs FFI access: run Deno with --allow-ffi"), or null. Raw
   * pointers (`addressOf`, `wrap`) need it even where libc is not needed.
   */
  readonly ffiError: string | null;
  /**
   * The largest ArrayBuffer this runtime can create over native memory, in
   * bytes, found by experiment: Deno (V8) 2^53 − 1 (`JSArrayBuffer::
   * kMaxByteLength`; one byte more aborts the process), Bun (JSC) 2^32 = 4 GiB
   * (`toArrayBuffer` of 4 GiB + 1 throws "RangeError: Out of memory").
   */
  readonly maxViewBytes: number;
  /**
   * An ArrayBuffer over `byteLength` bytes of native memory at `address` (no
   * deallocator: memkit frees it). The caller owns the memory for at least
   * that long.
   *
   * Checked before the runtime is asked, so a caller can release the memory
   * when it throws (nothing was created):
   * @throws {RangeError} For an address that is not a positive safe integer, or a
   *   length that is not a non-negative safe integer (a bug in the caller).
   * @throws {AllocationError} "unsupported" when `byteLength > maxViewBytes`
   *   (the message names the runtime's limit); "out-of-memory" when the runtime
   *   refuses anyway (its error is the cause).
   */
  wrap(address: number, byteLength: number): ArrayBuffer;
  /** Address of a non-empty view's first byte. */
  addressOf(view: ArrayBufferView): number;
  /**
   * libc's heap and madvise through the cheapest declarations loaded
   * (heap.ts): libmemkit's double-typed ones once it is loaded, libc's until
   * then. The first use looks for libmemkit, as a kernel's does.
   */
  readonly heap: NativeHeap;
  /** The calling thread's errno; read it right after the failing call. */
  errno(): number;
  /**
   * Kernels in use: libmemkit's, or the TypeScript fallback, behind the one
   * checked boundary (ffi/boundary.ts): every count is checked against the
   * real byte length of its arrays before either implementation runs.
   */
  kernels: Kernels;
  /** libmemkit itself when loaded (tests use it to force dispatch levels). */
  readonly memkit: MemkitLibrary | null;
  simd: SimdLevel;
  /**
   * Byte count below which a JS loop beats one FFI call to a kernel. With
   * 32-bit counts a Deno FFI call costs ~30 ns here and a Bun one ~20 ns
   * (bench/simd_bench.ts: a 64-byte compare takes 14 ns in a JS loop and
   * 29 ns through Deno's FFI; 256 bytes 60 ns and 30 ns).
   */
  readonly jsBelowBytes: number;
  /**
   * Largest ArrayBuffer worth wrapping over native memory in one piece. Deno's
   * wrap cost does not grow with size (1.5–3 µs from 1 to 64 MiB); Bun's does:
   * JavaScriptCore counts each new buffer's byteLength as allocated heap
   * memory (Heap::addReference), which paces its collections, so wrapping
   * runs a full collection every few MB wrapped (wrap + detach here: median
   * 0.2 µs at any size, mean 1.6 µs at 64 KiB, 25 µs at 1 MiB, 63 µs at 16 MiB).
   * In Bun an arena's safety segments past this size grow in steps of it (one
   * buffer for a scope of several MB: fewer buffers of the same total cost less).
   */
  readonly wrapChunkBytes: number;
  /**
   * Where wraps that grow with demand start (an arena's safety segments
   * double from here up to `wrapChunkBytes`): Bun 4 KiB, since its cost is
   * per byte wrapped; Deno `wrapChunkBytes`, since one large wrap costs what
   * a small one does.
   */
  readonly wrapStartBytes: number;
  readonly library: string | null;
  readonly libraryError: string | null;
}

const FFI_ERROR = "memkit needs FFI access: run Deno with --allow-ffi";

function unavailableLibc(reason: string): Libc {
  const fail = (): never => {
    throw new Error(reason);
  };
  return new Proxy({} as Libc, { get: (_target, key) => (key === "malloc_usable_size" ? undefined : fail) });
}

function openLibc(adapter: FfiAdapter, platform: PlatformConstants | null, os: string) {
  if (!platform) return { libc: null, error: `memkit has no native support for the OS "${os}"` };
  if (!granted({ name: "ffi" })) {
    return { libc: null, error: FFI_ERROR };
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

// libmemkit's functions take the kernels' arguments in the same order: the
// checked layer calls them directly, with no wrapper in between.
/** libmemkit's kernels as the checked boundary takes them. */
export function nativeKernels(lib: MemkitLibrary): KernelImpl {
  // Counts that fit 32 bits (all but the largest arrays) go through the
  // uint32_t entry points: Deno passes them several times faster (memkit.h),
  // Bun somewhat faster (a 1 KiB compare: 32 -> 24 ns). Each function is taken
  // out of the library's table once: a property load from that table (tens of
  // symbols added one by one) costs several ns a call.
  const U32 = 0xffff_ffff;
  const {
    mk_copy_u32,
    mk_copy,
    mk_fill_u32,
    mk_fill,
    mk_compare_u32,
    mk_compare,
    mk_f32_scale_u32,
    mk_f32_scale,
    mk_f32_add_u32,
    mk_f32_add,
    mk_f32_sub_u32,
    mk_f32_sub,
    mk_f32_axpy_u32,
    mk_f32_axpy,
    mk_f32_dot_u32,
    mk_f32_dot,
    mk_f32_sum_u32,
    mk_f32_sum,
    mk_f32_magnitudes_u32,
    mk_f32_magnitudes,
    mk_f32_dots_u32,
    mk_f32_dots,
    mk_f32_normalize_u32,
    mk_f32_normalize,
  } = lib;
  return {
    copy: (dst, src, bytes) => bytes <= U32 ? mk_copy_u32(dst, src, bytes) : mk_copy(dst, src, bytes),
    fill: (dst, byte, bytes) => bytes <= U32 ? mk_fill_u32(dst, byte, bytes) : mk_fill(dst, byte, bytes),
    compare: (a, b, bytes) => bytes <= U32 ? mk_compare_u32(a, b, bytes) : mk_compare(a, b, bytes),
    f32Scale: (x, n, k) => n <= U32 ? mk_f32_scale_u32(x, n, k) : mk_f32_scale(x, n, k),
    f32Add: (y, x, n) => n <= U32 ? mk_f32_add_u32(y, x, n) : mk_f32_add(y, x, n),
    f32Sub: (y, x, n) => n <= U32 ? mk_f32_sub_u32(y, x, n) : mk_f32_sub(y, x, n),
    f32Axpy: (y, a, x, n) => n <= U32 ? mk_f32_axpy_u32(y, a, x, n) : mk_f32_axpy(y, a, x, n),
    f32Dot: (a, b, n) => n <= U32 ? mk_f32_dot_u32(a, b, n) : mk_f32_dot(a, b, n),
    f32Sum: (x, n) => n <= U32 ? mk_f32_sum_u32(x, n) : mk_f32_sum(x, n),
    f32Magnitudes: (v, count, stride, dims, out) =>
      count * stride <= U32
        ? mk_f32_magnitudes_u32(v, count, stride, dims, out)
        : mk_f32_magnitudes(v, count, stride, dims, out),
    f32Dots: (a, b, count, stride, dims, out) =>
      count * stride <= U32
        ? mk_f32_dots_u32(a, b, count, stride, dims, out)
        : mk_f32_dots(a, b, count, stride, dims, out),
    f32Normalize: (v, count, stride, dims) =>
      count * stride <= U32 ? mk_f32_normalize_u32(v, count, stride, dims) : mk_f32_normalize(v, count, stride, dims),
  };
}

// Per-ArrayBuffer limits measured on this machine's Deno 2.9.6 and Bun 1.4.5 (see NativeLayer.maxViewBytes).
const MAX_VIEW_BYTES = { deno: Number.MAX_SAFE_INTEGER, bun: 2 ** 32 } as const;

// Built only on failure: wrap runs on every allocation that makes a buffer.
function wrapTarget(address: number, byteLength: number): string {
  return `${byteLength} bytes at 0x${address.toString(16)}`;
}

function checkedWrap(adapter: FfiAdapter, maxViewBytes: number): (address: number, byteLength: number) => ArrayBuffer {
  const runtime = adapter.runtime === "deno" ? "Deno" : "Bun";
  return (address, byteLength) => {
    if (!Number.isSafeInteger(address) || address <= 0) {
      throw new RangeError(
        `Cannot wrap native memory as 'address' must be a positive integer: current value is ${address}`,
      );
    }
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) {
      throw new RangeError(
        `Cannot wrap native memory as 'byteLength' must be a non-negative integer: current value is ${byteLength}`,
      );
    }
    if (byteLength > maxViewBytes) {
      throw new AllocationError(
        "unsupported",
        `Cannot wrap ${
          wrapTarget(address, byteLength)
        } in one ArrayBuffer: ${runtime} allows at most ${maxViewBytes} bytes per ArrayBuffer ` +
          `(nativeInfo().maxViewBytes); use views of at most that size`,
      );
    }
    try {
      return adapter.wrap(address, byteLength);
    } catch (error) {
      throw new AllocationError(
        "out-of-memory",
        `Cannot wrap ${wrapTarget(address, byteLength)}: ${runtime} refused (${error})`,
        {
          cause: error,
        },
      );
    }
  };
}

// One checked table per implementation, made once.
let fallbackChecked: Kernels = checkedKernels(fallbackKernels);
let nativeChecked: Kernels | null = null;
let jsBelow = 0;

// libmemkit's state in this thread. Nothing is looked up at import: the first
// use of a kernel (or of `memkit`, `simd`, `library`) opens a cached build
// synchronously, or starts an asynchronous build and runs the TypeScript
// kernels until it is done, so importing memkit never blocks on a compiler
// and never delays a Worker's message handlers.
interface LibraryState {
  memkit: MemkitLibrary | null;
  path: string | null;
  error: string | null;
  /** The build in flight, or null. */
  building: Promise<void> | null;
  /** Set when MEMKIT_LIB names an unusable library: what every kernel use throws. */
  fatal: AllocationError | null;
  looked: boolean;
}

function initialize(): NativeLayer {
  const runtime = detectRuntime();
  if (runtime === null) throw new Error("memkit runs on Deno 2 or Bun 1");
  const adapter = runtime === "deno" ? createDenoAdapter() : createBunAdapter();
  const os = hostOs();
  const arch = hostArch();
  const platform = platformConstants(os, arch);
  const opened = openLibc(adapter, platform, os);
  const libc = opened.libc ?? unavailableLibc(opened.error!);

  let errnoView: Int32Array | null = null;
  const errno = () => {
    // errno lives in thread-local storage; this module instance belongs to
    // one JS thread, so the location is fixed after the first read.
    errnoView ??= new Int32Array(adapter.wrap(libc.errno_location(), 4));
    return errnoView[0];
  };
  const pageSize = opened.libc && platform ? libc.sysconf(platform._SC_PAGESIZE) : 4096;
  const ffiError = granted({ name: "ffi" }) ? null : FFI_ERROR;
  const maxViewBytes = MAX_VIEW_BYTES[runtime];
  jsBelow = runtime === "deno" ? 128 : 32;
  fallbackChecked = checkedKernels(fallbackKernels, jsBelow);

  const state: LibraryState = { memkit: null, path: null, error: null, building: null, looked: false, fatal: null };
  let kernels: Kernels | null = null; // set by useKernels/spyOnNativeCalls, else follows the library
  let heap: NativeHeap | null = null; // set on first use, replaced when libmemkit is installed
  let simd: SimdLevel | null = null;

  const install = (memkit: MemkitLibrary, path: string) => {
    state.memkit = memkit;
    state.path = path;
    state.error = null;
    nativeChecked = checkedKernels(nativeKernels(memkit), jsBelow);
    heap = memkitHeap(memkit, errno);
    // Never unloaded: Deno unloads a library when the last thread that opened it
    // ends, which would lose the census table Workers keep in it (memkit.h).
    if (libc.dlopen !== undefined && platform) {
      try {
        libc.dlopen(new TextEncoder().encode(`${path}\0`), platform.RTLD_NOW_NODELETE);
      } catch {
        // Pinning is best effort: without it only the Workers' totals can be lost.
      }
    }
    for (const waiter of memkitWaiters.splice(0)) {
      try {
        waiter(memkit);
      } catch {
        // One waiter's failure must not keep the library from the others.
      }
    }
  };
  const look = () => {
    if (state.looked) return;
    state.looked = true;
    if (!opened.libc || !platform) {
      state.error = opened.error;
      return;
    }
    let found: LibraryLookup;
    try {
      found = findLibmemkit(adapter, platform, arch);
    } catch (error) {
      // MEMKIT_LIB names a library that cannot be used: the user asked for it,
      // so every use of a kernel says so (never a silent fallback).
      state.error = (error as Error).message;
      state.fatal = new AllocationError("unsupported", state.error, { cause: error });
      return;
    }
    if (found.library !== null) {
      install(found.library, found.path!);
      return;
    }
    state.error = found.error;
    if (found.build === null) return;
    state.error = `${found.error}\n  - building it in the background; TypeScript kernels until it is ready`;
    state.building = found.build().then((built) => {
      if (built.library !== null) install(built.library, built.path!);
      else state.error = built.error;
    }, (error) => {
      state.error = `libmemkit could not be built: ${error}`;
    }).finally(() => {
      state.building = null;
    });
  };
  ready = async () => {
    look();
    if (state.building === null) return;
    holdBuilds(true); // a build waited for keeps the process alive
    try {
      await state.building;
    } finally {
      holdBuilds(false);
    }
  };

  return {
    runtime,
    os,
    arch,
    platform: platform ?? platformConstants("linux", arch)!,
    pageSize: pageSize > 0 ? pageSize : 4096,
    libc,
    libcError: opened.error,
    ffiError,
    maxViewBytes,
    wrap: checkedWrap(adapter, maxViewBytes),
    addressOf: adapter.addressOf,
    errno,
    get heap(): NativeHeap {
      if (heap !== null) return heap;
      look();
      return heap ??= libcHeap(libc);
    },
    get kernels(): Kernels {
      if (kernels !== null) return kernels;
      look();
      if (state.fatal !== null) throw state.fatal;
      return nativeChecked ?? fallbackChecked;
    },
    set kernels(value: Kernels) {
      kernels = value;
    },
    get memkit(): MemkitLibrary | null {
      look();
      return state.memkit;
    },
    get simd(): SimdLevel {
      if (simd !== null) return simd;
      look();
      return state.memkit ? SIMD_LEVELS[state.memkit.mk_simd_level()] ?? "scalar" : "js";
    },
    set simd(value: SimdLevel) {
      simd = value;
    },
    jsBelowBytes: jsBelow,
    wrapChunkBytes: runtime === "deno" ? 64 << 20 : 1 << 20,
    wrapStartBytes: runtime === "deno" ? 64 << 20 : 4 << 10,
    get library(): string | null {
      look();
      return state.path;
    },
    get libraryError(): string | null {
      look();
      return state.error;
    },
  };
}

let ready: () => Promise<void> = () => Promise.resolve();
// Callbacks of whenMemkitLoaded waiting for a build in flight.
const memkitWaiters: ((memkit: MemkitLibrary) => void)[] = [];

/** The native layer of this JS thread. */
export const native: NativeLayer = initialize();

/**
 * Waits until libmemkit is loaded or known to be unavailable: opens a cached
 * build, or waits for the build the first use started. Programs never need it
 * (memkit runs the TypeScript kernels meanwhile); benchmarks and tests that
 * must measure the native kernels do.
 */
export function nativeReady(): Promise<void> {
  return ready();
}

/**
 * Runs `callback` with libmemkit once it is loaded in this thread: at once when
 * it is (looking for it first, as a kernel's first use does), or when the
 * build in flight installs it. Never when libmemkit is unavailable. Unlike
 * {@linkcode nativeReady}, waiting keeps nothing alive: a program that ends
 * before the build does simply never runs `callback`.
 */
export function whenMemkitLoaded(callback: (memkit: MemkitLibrary) => void): void {
  const memkit = native.memkit;
  if (memkit !== null) callback(memkit);
  else memkitWaiters.push(callback);
}
