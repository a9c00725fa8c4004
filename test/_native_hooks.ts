// Test hooks on the native layer, kept out of the published files: switching
// the kernels between libmemkit's levels and the TypeScript fallback, and
// recording every call that reaches libc or a kernel implementation (past the
// checked boundary), to prove that bad input makes none.
import { checkedKernels } from "../ffi/boundary.ts";
import { fallbackKernels } from "../ffi/fallback.ts";
import { native, nativeKernels, SIMD_LEVELS, type SimdLevel } from "../ffi/native.ts";
import type { KernelImpl } from "../ffi/types.ts";

// The implementation useKernels() chose; null: the one the native layer chose.
let chosen: KernelImpl | null = null;

function activeImpl(): KernelImpl {
  if (chosen !== null) return chosen;
  const memkit = native.memkit;
  return memkit !== null && native.simd !== "js" ? nativeKernels(memkit) : fallbackKernels;
}

/** Switches the kernels to libmemkit at `level` (as far as the CPU has it) or to the fallback ("js"). */
export function useKernels(level: SimdLevel): SimdLevel {
  const memkit = native.memkit;
  if (level === "js" || memkit === null) {
    chosen = fallbackKernels;
    native.kernels = checkedKernels(fallbackKernels, native.jsBelowBytes);
    native.simd = "js";
    return "js";
  }
  const got = memkit.mk_simd_force(SIMD_LEVELS.indexOf(level as typeof SIMD_LEVELS[number]));
  chosen = nativeKernels(memkit);
  native.kernels = checkedKernels(chosen, native.jsBelowBytes);
  native.simd = SIMD_LEVELS[got] ?? "scalar";
  return native.simd;
}

/** Records every libc call and every call that reaches a kernel implementation until `restore()`. */
export function spyOnNativeCalls(): { readonly calls: string[]; restore(): void } {
  void native.memkit; // look for libmemkit now: its lookup is no call of the code under test
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
  for (const [key, f] of Object.entries(activeImpl())) {
    spied[key] = (...args: unknown[]) => {
      calls.push(`kernel.${key}`);
      return (f as (...a: unknown[]) => unknown)(...args);
    };
  }
  native.kernels = checkedKernels(spied as unknown as KernelImpl, native.jsBelowBytes);
  return {
    calls,
    restore() {
      Object.assign(libc, originalLibc);
      native.kernels = originalKernels;
    },
  };
}
