// SystemAllocator alloc+free against what a user would otherwise write: raw
// FFI malloc+free (pointer only, and with an ArrayBuffer view over it, which
// is what makes native memory usable from JS) and `new Uint8Array(n)`.
import { native } from "../ffi/native.ts";
import { SystemAllocator } from "../mod.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

const allocator = new SystemAllocator();
const libc = native.libc;

for (const [label, size] of [["64 B", 64], ["4 KiB", 4096], ["64 KiB", 65536], ["1 MiB", 1 << 20]] as const) {
  compare(`alloc+free ${label}`, "new Uint8Array(n)", {
    "new Uint8Array(n)": () => do_not_optimize(new Uint8Array(size)),
    "FFI malloc+free (pointer only)": () => {
      const p = libc.malloc(size);
      libc.free(p);
    },
    "FFI malloc+view+free": () => {
      const p = libc.malloc(size);
      const view = new Uint8Array(native.wrap(p, size));
      do_not_optimize(view);
      (view.buffer as ArrayBuffer).transfer(0);
      libc.free(p);
    },
    "SystemAllocator alloc+free": () => {
      const view = allocator.alloc(size);
      allocator.free(view);
    },
  });
}
