// W15, the debug-overhead ladder: the same workload on the same backing,
// untracked, then through a DebugAllocator with counters only (safety off),
// with safety checks (canaries, frees checked, a detachable ArrayBuffer per
// block), with 1-in-64 sampled stack traces, and with a trace per allocation.
import { Arena, DebugAllocator, FreeListAllocator, PoolAllocator } from "../mod.ts";
import { compare } from "./_ratios.ts";

const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 });
// Debug blocks carry 16-byte canaries on both sides: 96 bytes from the pool.
const debugPool = new PoolAllocator({ blockSize: 96, blocksPerChunk: 4096 });
const rungs = (backing: PoolAllocator | Arena) => ({
  counters: new DebugAllocator(backing, { safety: false }),
  checks: new DebugAllocator(backing, { detachFreed: false }),
  safety: new DebugAllocator(backing),
  sampled: new DebugAllocator(backing, { stackTraceFrames: 8, sampleEvery: 64 }),
  traced: new DebugAllocator(backing, { stackTraceFrames: 8 }),
});
const onPool = rungs(debugPool);
compare("W15 ladder: 64 B alloc+free on a PoolAllocator", "untracked", {
  "untracked": () => pool.free(pool.alloc(64)),
  "counters only": () => onPool.counters.free(onPool.counters.alloc(64)),
  "+ safety checks (detachFreed: false)": () => onPool.checks.free(onPool.checks.alloc(64)),
  "+ detached views (the default)": () => onPool.safety.free(onPool.safety.alloc(64)),
  "+ sampled traces (1/64)": () => onPool.sampled.free(onPool.sampled.alloc(64)),
  "+ full traces": () => onPool.traced.free(onPool.traced.alloc(64)),
}, 100);

const arena = new Arena({ capacity: 1 << 20, safety: false });
const debugArena = new Arena({ capacity: 1 << 20, safety: false });
const onArena = rungs(debugArena);
compare("W15 ladder: 64 B alloc+free on an Arena", "untracked", {
  "untracked": () => arena.free(arena.alloc(64)),
  "counters only": () => onArena.counters.free(onArena.counters.alloc(64)),
  "+ safety checks (detachFreed: false)": () => onArena.checks.free(onArena.checks.alloc(64)),
  "+ detached views (the default)": () => onArena.safety.free(onArena.safety.alloc(64)),
  "+ sampled traces (1/64)": () => onArena.sampled.free(onArena.sampled.alloc(64)),
  "+ full traces": () => onArena.traced.free(onArena.traced.alloc(64)),
}, 100);

// W2 churn (1,000 live blocks of 16–1,024 B) through each rung over TLSF.
const sizes = Array.from({ length: 4096 }, (_, i) => 16 + ((i * 7919) % 1009));
const slots = Array.from({ length: 4096 }, (_, i) => (i * 104729) % 1000);
function churn(alloc: (n: number) => Uint8Array, free: (v: Uint8Array) => void): () => void {
  const live = sizes.slice(0, 1000).map((n) => alloc(n));
  let at = 0;
  return () => {
    for (let k = 0; k < 100; k++) {
      free(live[slots[at]]);
      live[slots[at]] = alloc(sizes[at]);
      at = (at + 1) & 4095;
    }
  };
}
const heaps = Array.from({ length: 6 }, () => new FreeListAllocator({ capacity: 4 << 20 }));
const ladder = [
  null,
  new DebugAllocator(heaps[1], { safety: false }),
  new DebugAllocator(heaps[2], { detachFreed: false }),
  new DebugAllocator(heaps[3]),
  new DebugAllocator(heaps[4], { stackTraceFrames: 8, sampleEvery: 64 }),
  new DebugAllocator(heaps[5], { stackTraceFrames: 8 }),
];
compare("W15 ladder: W2 churn on a FreeListAllocator (100 steps)", "untracked", {
  "untracked": churn((n) => heaps[0].alloc(n), (v) => heaps[0].free(v)),
  "counters only": churn((n) => ladder[1]!.alloc(n), (v) => ladder[1]!.free(v)),
  "+ safety checks (detachFreed: false)": churn((n) => ladder[2]!.alloc(n), (v) => ladder[2]!.free(v)),
  "+ detached views (the default)": churn((n) => ladder[3]!.alloc(n), (v) => ladder[3]!.free(v)),
  "+ sampled traces (1/64)": churn((n) => ladder[4]!.alloc(n), (v) => ladder[4]!.free(v)),
  "+ full traces": churn((n) => ladder[5]!.alloc(n), (v) => ladder[5]!.free(v)),
}, 100);
