/**
 * What the native layer found, waiting for its native library, and raw
 * addresses of views.
 *
 * @module
 */
import { intrinsic, native, nativeReady as libraryReady } from "../../ffi/native.ts";
import { checkView } from "./_validate.ts";
import { AllocationError } from "./errors.ts";

/**
 * The runtime, platform and SIMD level memkit runs with.
 *
 * @example
 * ```ts
 * import { type NativeInfo, nativeInfo } from "@memkit/memkit";
 *
 * const info: NativeInfo = nativeInfo();
 * if (info.simd === "js") console.warn(`memkit runs its kernels in TypeScript: ${info.libraryError}`);
 * ```
 */
export interface NativeInfo {
  /** The JavaScript runtime. */
  runtime: "deno" | "bun";
  /** Operating system, e.g. "linux" or "darwin". */
  os: string;
  /** CPU architecture, e.g. "x86_64" or "aarch64". */
  arch: string;
  /** The virtual memory page size in bytes. */
  pageSize: number;
  /**
   * The most bytes one ArrayBuffer (so one block's view) can hold in this runtime: 2^32 (4 GiB) in Bun,
   * 2^53 - 1 in Deno. A larger block is refused before any memory is taken; a larger mapping is used
   * through windows (`mapping.view(offset, length)`).
   */
  maxViewBytes: number;
  /** Which kernels run `simd` functions: a libmemkit level, or "js" for the TypeScript fallback. */
  simd: "avx2" | "sse2" | "neon" | "scalar" | "js";
  /** Path of the loaded libmemkit, or null. */
  library: string | null;
  /** Why libmemkit is not loaded (every path and compiler tried), or null. */
  libraryError: string | null;
  /** Why libc could not be opened (e.g. no `--allow-ffi`), or null when it is. */
  libcError: string | null;
}

/**
 * Reports the runtime, page size and which kernels memkit uses.
 *
 * @returns A fresh object describing the native layer.
 *
 * @example
 * ```ts
 * import { nativeInfo } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const info = nativeInfo();
 * assert.ok(info.pageSize >= 4096);
 * console.log(`${info.runtime} on ${info.os}/${info.arch}, kernels: ${info.simd}`);
 * ```
 */
export function nativeInfo(): NativeInfo {
  return {
    runtime: native.runtime,
    os: native.os,
    arch: native.arch,
    pageSize: native.pageSize,
    maxViewBytes: native.maxViewBytes,
    simd: native.simd,
    library: native.library,
    libraryError: native.libraryError,
    libcError: native.libcError,
  };
}

/**
 * Waits for memkit's native library (libmemkit, the SIMD kernels): importing
 * memkit never blocks, and the first use of a kernel opens a cached build
 * or starts building one with the system C compiler in the background,
 * running the TypeScript kernels until it is ready. A program never needs to
 * wait; a benchmark or a test that measures the native kernels does. Resolves
 * (never rejects) once the library is loaded or known to be unavailable
 * (`simd` is then "js" and `libraryError` says why). `deno task build` builds
 * it ahead of time.
 *
 * @returns What {@linkcode nativeInfo} reports then.
 *
 * @example
 * ```ts
 * import { nativeReady } from "@memkit/memkit";
 *
 * const info = await nativeReady();
 * console.log(`kernels: ${info.simd}`); // "avx2", "neon", ... or "js" with info.libraryError
 * ```
 */
export async function nativeReady(): Promise<NativeInfo> {
  await libraryReady();
  return nativeInfo();
}

/**
 * The address of a view's first byte, as a number (exact: user-space
 * addresses fit in 2^53). For an empty view, the address it would start at;
 * 0 for a view over a detached or empty buffer. Addresses of memkit blocks are
 * stable; those of ordinary JS typed arrays are only valid while they live.
 * The view's range is read through the engine's intrinsic getters: an own
 * `byteOffset` or `byteLength` property, or a subclass getter, changes nothing.
 *
 * @param view Any typed array or DataView.
 * @returns The address.
 * @throws {TypeError} When `view` is not a typed array or DataView.
 * @throws {AllocationError} "unsupported" when the runtime gives memkit no FFI
 *   (Deno without `--allow-ffi`: "memkit needs FFI access: run Deno with --allow-ffi").
 *
 * @example
 * ```ts
 * import { addressOf, SystemAllocator } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const allocator = new SystemAllocator();
 * const block = allocator.alloc(256, 64);
 * assert.equal(addressOf(block) % 64, 0);
 * assert.equal(addressOf(block.subarray(10)), addressOf(block) + 10);
 * allocator.free(block);
 * ```
 */
export function addressOf(view: ArrayBufferView): number {
  checkView(view, "take the address", "view");
  if (native.ffiError) throw new AllocationError("unsupported", native.ffiError);
  // The runtime is handed a fresh view made from internal slots: its own
  // pointer code may read properties (length, buffer) a caller can redefine.
  const [buffer, byteOffset] = intrinsic.range(view);
  const bufferLength = intrinsic.bufferByteLength(buffer);
  if (bufferLength === 0) return 0;
  return native.addressOf(intrinsic.uint8Array(buffer, 0, bufferLength)) + byteOffset;
}
