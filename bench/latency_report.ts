// W13 (fragmentation and defragmentation) and W14 (per-operation latency under
// pathological patterns): one-shot measurements printed as tables, run after
// the mitata benchmarks by bench/mod.ts.
import process from "node:process";
import { native } from "../ffi/native.ts";
import { BuddyAllocator, FreeListAllocator, nativeInfo, PoolAllocator } from "../mod.ts";

function percentiles(samples: Float64Array): string {
  samples.sort();
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  const f = (ns: number) => (ns < 1000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(1)} µs`);
  return `${f(at(0.5))} | ${f(at(0.99))} | ${f(at(0.999))} | ${f(samples[samples.length - 1])}`;
}

// Time `n` runs of `op` one by one; the timer's own cost (measured on an empty
// op) is subtracted, so small values are estimates within ~±20 ns.
function sample(n: number, op: (i: number) => void): Float64Array {
  const now = process.hrtime.bigint;
  const overhead = new Float64Array(1000);
  for (let i = 0; i < overhead.length; i++) {
    const t = now();
    overhead[i] = Number(now() - t);
  }
  overhead.sort();
  const base = overhead[500];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = now();
    op(i);
    out[i] = Math.max(0, Number(now() - t) - base);
  }
  return out;
}

/** Prints the W14 latency table. */
export function latencyReport(): void {
  const N = 100_000;
  const libc = native.libc;
  const rows: [string, Float64Array][] = [];

  // Pattern 1: one huge free block and a tiny request (split), then its free (merge back).
  const tlsf = new FreeListAllocator({ capacity: 64 << 20, growth: "fixed" });
  const buddy = new BuddyAllocator({ capacity: 64 << 20 });
  const pool = new PoolAllocator({ blockSize: 16, blocksPerChunk: 1 << 16 });
  let held: Uint8Array = new Uint8Array(0);
  let pointer = 0;
  rows.push(["tiny alloc from one huge free block: TLSF", sample(N, () => (held = tlsf.alloc(16)))]);
  tlsf.free(held);
  const t1 = sample(N, () => {
    held = tlsf.alloc(16);
    tlsf.free(held);
  });
  rows.push(["… alloc+free pair: TLSF", t1]);
  rows.push(["… alloc+free pair: BuddyAllocator", sample(N, () => buddy.free(buddy.alloc(16)))]);
  rows.push(["… alloc+free pair: PoolAllocator", sample(N, () => pool.free(pool.alloc(16)))]);
  rows.push(["… alloc+free pair: FFI malloc (pointer only)", sample(N, () => libc.free(libc.malloc(16)))]);

  // Pattern 2: free a block between two free neighbours (a double merge), then re-split.
  const a = tlsf.alloc(1024), b = tlsf.alloc(1024), c = tlsf.alloc(1024), guard = tlsf.alloc(1024);
  tlsf.free(a);
  tlsf.free(c);
  let middle = b;
  rows.push([
    "free between two free neighbours, then alloc: TLSF",
    sample(N, () => {
      tlsf.free(middle);
      middle = tlsf.alloc(1024);
    }),
  ]);
  const pa = libc.malloc(1024), pb = libc.malloc(1024), pc = libc.malloc(1024), pg = libc.malloc(1024);
  libc.free(pa);
  libc.free(pc);
  pointer = pb;
  rows.push([
    "free between two free neighbours, then alloc: FFI malloc",
    sample(N, () => {
      libc.free(pointer);
      pointer = libc.malloc(1024);
    }),
  ]);
  libc.free(pointer);
  libc.free(pg);
  tlsf.free(middle);
  tlsf.free(guard);
  tlsf.dispose();
  buddy.dispose();
  pool.dispose();

  const info = nativeInfo();
  console.log(`\n### W14 latency per operation on ${info.runtime} (100,000 samples; p50 | p99 | p99.9 | max)\n`);
  console.log("| pattern | p50 | p99 | p99.9 | max |");
  console.log("|---|---|---|---|---|");
  for (const [name, samples] of rows) console.log(`| ${name} | ${percentiles(samples)} |`);
}

/** Prints the W13 fragmentation and defragmentation table. */
export function fragmentationReport(): void {
  const heap = new FreeListAllocator({ capacity: 16 << 20, growth: "fixed" });
  // Power-of-two rounding needs up to twice the bytes: the buddy gets 32 MiB.
  const buddy = new BuddyAllocator({ capacity: 32 << 20 });
  let state = 0x13579bdf;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>>= 0);
  };
  const handles = [];
  const blocks = [];
  // Fill both to ~90 % with mixed sizes, then free a random half.
  for (let used = 0; used < (14 << 20);) {
    const size = 64 + (next() % 8129);
    handles.push(heap.handle(size));
    blocks.push(buddy.alloc(size));
    used += size;
  }
  for (let i = 0; i < handles.length; i++) {
    if (next() % 2 === 0) {
      handles[i].free();
      buddy.free(blocks[i]);
    }
  }
  const big = 4 << 20;
  const heapBefore = heap.stats();
  const buddyStats = buddy.stats();
  const fitsBefore = heap.tryAlloc(big);
  if (fitsBefore) heap.free(fitsBefore);
  const report = heap.defragment();
  const fitsAfter = heap.tryAlloc(big);
  if (fitsAfter) heap.free(fitsAfter);
  console.log(
    `\n### W13 fragmentation on ${nativeInfo().runtime}: 14 MiB of 64 B–8 KiB blocks (in 16 MiB; 32 MiB for the buddy), half freed\n`,
  );
  console.log("| | fragmentation | largest free block | 4 MiB allocation |");
  console.log("|---|---|---|---|");
  console.log(
    `| BuddyAllocator | ${buddyStats.fragmentation.toFixed(3)} | ${buddyStats.largestFreeBlock} B | ${
      buddy.tryAlloc(big) ? "fits" : "fails"
    } |`,
  );
  console.log(
    `| FreeListAllocator before defragment() | ${
      heapBefore.fragmentation.toFixed(3)
    } | ${heapBefore.largestFreeBlock} B | ${fitsBefore ? "fits" : "fails"} |`,
  );
  console.log(
    `| FreeListAllocator after defragment() | ${
      report.fragmentationAfter.toFixed(3)
    } | ${report.largestFreeBlockAfter} B | ${fitsAfter ? "fits" : "fails"} |`,
  );
  console.log(
    `\ndefragment(): moved ${report.movedBlocks} handles, ${(report.movedBytes / 2 ** 20).toFixed(2)} MiB, in ${
      report.durationMs.toFixed(2)
    } ms`,
  );
  heap.dispose();
  buddy.dispose();
}
