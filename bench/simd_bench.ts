// simd.compare against a plain JS loop, and simd.copy against
// TypedArray.prototype.set, with libmemkit's kernels called directly to show
// where the FFI call pays off.
import { native } from "../ffi/native.ts";
import { simd } from "../mod.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

function jsCompare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

for (const [label, size] of [["64 B", 64], ["256 B", 256], ["4 KiB", 4096], ["64 MiB", 64 << 20]] as const) {
  const a = new Uint8Array(size).fill(3);
  const b = a.slice();
  b[size - 1] = 4; // differ at the very end: every byte is compared
  compare(`compare ${label}`, "JS loop", {
    "JS loop": () => do_not_optimize(jsCompare(a, b)),
    "simd.compare": () => do_not_optimize(simd.compare(a, b)),
    "libmemkit mk_compare": () => do_not_optimize(native.kernels.compare(a, b, size)),
  }, { freshProcess: import.meta.url }); // the JS loop as a program comparing only this size has it (see arrays_bench.ts)
}

for (const [label, size] of [["4 KiB", 4096], ["64 MiB", 64 << 20]] as const) {
  const src = new Uint8Array(size).fill(1);
  const dst = new Uint8Array(size);
  compare(`copy ${label}`, "TypedArray.set", {
    "TypedArray.set": () => dst.set(src),
    "simd.copy": () => simd.copy(dst, src),
    "libmemkit mk_copy": () => native.kernels.copy(dst, src),
  });
}
