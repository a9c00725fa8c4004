// PoolAllocator and StackAllocator against SystemAllocator, @thi.ng/malloc and
// `new Uint8Array(n)`: workloads W1 (alloc+free pairs), W3 (LIFO batches) and
// W4 (bursts of one object size).
import { Buffer } from "node:buffer";
import { MemPool } from "@thi.ng/malloc";
import { native } from "../ffi/native.ts";
import { BuddyAllocator, FreeListAllocator, PoolAllocator, StackAllocator, SystemAllocator } from "../mod.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

const system = new SystemAllocator();
const thing = new MemPool({ size: 16 << 20 });
const bunAllocUnsafe = (globalThis as { Bun?: { allocUnsafe(bytes: number): Uint8Array } }).Bun?.allocUnsafe;
// Every comparison with a @thi.ng/malloc case runs in a fresh process of its
// own: thi.ng's methods are shared by all its pools, and a pool that has
// handed out other view types runs them at about half speed in Deno.
const FRESH = { freshProcess: import.meta.url };

const pools = [16, 64, 256].map((size) => new PoolAllocator({ blockSize: size, blocksPerChunk: 4096 }));
const tlsf = new FreeListAllocator({ capacity: 1 << 20 });
const buddy = new BuddyAllocator({ capacity: 1 << 20 });
// Warm-up: without it, whichever pool runs first measured 4–5× slower (JIT tiering).
for (const pool of pools) {
  for (let i = 0; i < 100_000; i++) {
    pool.free(pool.alloc(pool.blockSize));
    tlsf.free(tlsf.alloc(pool.blockSize));
    buddy.free(buddy.alloc(pool.blockSize));
  }
}

for (const pool of pools) {
  const size = pool.blockSize;
  compare(`W1 ${size} B pair returning a view`, "SystemAllocator alloc+free", {
    "SystemAllocator alloc+free": () => system.free(system.alloc(size)),
    "new Uint8Array(n)": () => do_not_optimize(new Uint8Array(size)),
    "Buffer.allocUnsafe(n)": () => do_not_optimize(Buffer.allocUnsafe(size)),
    ...(bunAllocUnsafe === undefined ? {} : { "Bun.allocUnsafe(n)": () => do_not_optimize(bunAllocUnsafe(size)) }),
    // The floor of native allocation through FFI: an address, no view, no checks.
    "raw FFI malloc+free (no view)": () => native.libc.free(native.libc.malloc(size)),
    "@thi.ng/malloc mallocAs+free": () => thing.free(thing.mallocAs("u8", size)!),
    "PoolAllocator alloc+free": () => pool.free(pool.alloc(size)),
    "FreeListAllocator (TLSF) alloc+free": () => tlsf.free(tlsf.alloc(size)),
    "BuddyAllocator alloc+free": () => buddy.free(buddy.alloc(size)),
  }, FRESH);
}

const burstPool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 1024 });
const burst: Uint8Array[] = new Array(1000);
compare("W4 burst: 1,000 × 64 B allocated, then freed", "SystemAllocator", {
  "SystemAllocator": () => {
    for (let i = 0; i < 1000; i++) burst[i] = system.alloc(64);
    for (let i = 0; i < 1000; i++) system.free(burst[i]);
  },
  "@thi.ng/malloc mallocAs": () => {
    for (let i = 0; i < 1000; i++) burst[i] = thing.mallocAs("u8", 64)!;
    for (let i = 0; i < 1000; i++) thing.free(burst[i]);
  },
  "PoolAllocator": () => {
    for (let i = 0; i < 1000; i++) burst[i] = burstPool.alloc(64);
    for (let i = 0; i < 1000; i++) burstPool.free(burst[i]);
  },
}, FRESH);

const stack = new StackAllocator({ capacity: 1 << 20 });
const batch: Uint8Array[] = new Array(100);
compare("W3 LIFO: 100 blocks of 16–1,024 B, freed in reverse", "SystemAllocator", {
  "SystemAllocator": () => {
    for (let i = 0; i < 100; i++) batch[i] = system.alloc(16 + ((i * 37) % 1009));
    for (let i = 99; i >= 0; i--) system.free(batch[i]);
  },
  "@thi.ng/malloc mallocAs": () => {
    for (let i = 0; i < 100; i++) batch[i] = thing.mallocAs("u8", 16 + ((i * 37) % 1009))!;
    for (let i = 99; i >= 0; i--) thing.free(batch[i]);
  },
  "StackAllocator": () => {
    for (let i = 0; i < 100; i++) batch[i] = stack.alloc(16 + ((i * 37) % 1009));
    for (let i = 99; i >= 0; i--) stack.free(batch[i]);
  },
  "StackAllocator mark/rewind": () => {
    const marker = stack.mark();
    for (let i = 0; i < 100; i++) batch[i] = stack.alloc(16 + ((i * 37) % 1009));
    stack.rewind(marker);
  },
}, FRESH);
