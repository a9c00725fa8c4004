// W15, the debug-overhead ladder: the same workload on the same backing,
// untracked, then through a DebugAllocator with counters only (safety off),
// with the safety checks on views of the backing's memory (canaries, frees
// checked: the default options), with 1-in-64 sampled stack traces and with a
// trace per allocation on top of them, and with a detachable ArrayBuffer per
// block instead (detachFreed: true).
import { Arena, DebugAllocator, FreeListAllocator, PoolAllocator } from "../mod.ts";
import { AddressRecords } from "./_address_records.ts";
import { compare } from "./_ratios.ts";

/** The rungs' options, in ladder order; the mitata case names are the keys (bench/scorecard.ts quotes them). */
const RUNGS = {
  "counters only": { safety: false },
  "+ safety checks (the default)": {},
  "+ sampled traces (1/64)": { stackTraceFrames: 8, sampleEvery: 64 },
  "+ full traces": { stackTraceFrames: 8 },
  "+ detached views (detachFreed: true)": { detachFreed: true },
};

const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 });
// Debug blocks carry 16-byte canaries on both sides: 96 bytes from the pool.
const debugPool = new PoolAllocator({ blockSize: 96, blocksPerChunk: 4096 });
// One closure per rung from one site: their calls all go to DebugAllocator (the untracked case has its own).
const pairs = (backing: PoolAllocator | Arena) =>
  Object.fromEntries(
    Object.entries(RUNGS).map(([name, options]) => {
      const debug = new DebugAllocator(backing, options);
      return [name, () => debug.free(debug.alloc(64))];
    }),
  );
// The floor under counters only: a wrapper that does nothing but keep the record of every block by address
// that counters only needs (bench/_address_records.ts); the scorecard's ceiling for that rung.
const floor = new AddressRecords(new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 }));
compare("W15 ladder: 64 B alloc+free on a PoolAllocator", "untracked", {
  "untracked": () => pool.free(pool.alloc(64)),
  "floor: a record of every block by address": () => floor.free(floor.alloc(64)),
  ...pairs(debugPool),
}, 100);

const arena = new Arena({ capacity: 1 << 20, safety: false });
const debugArena = new Arena({ capacity: 1 << 20, safety: false });
compare("W15 ladder: 64 B alloc+free on an Arena", "untracked", {
  "untracked": () => arena.free(arena.alloc(64)),
  ...pairs(debugArena),
}, 100);

// W2 churn (1,000 live blocks of 16–1,024 B) through each rung over TLSF. Each rung gets its own alloc and free
// closures, so the untracked heap's call sites never see a DebugAllocator (and stay monomorphic).
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
const heap = new FreeListAllocator({ capacity: 4 << 20 });
const ladder = Object.values(RUNGS).map((options) =>
  new DebugAllocator(new FreeListAllocator({ capacity: 4 << 20 }), options)
);
const names = Object.keys(RUNGS);
compare("W15 ladder: W2 churn on a FreeListAllocator (100 steps)", "untracked", {
  "untracked": churn((n) => heap.alloc(n), (v) => heap.free(v)),
  [names[0]]: churn((n) => ladder[0].alloc(n), (v) => ladder[0].free(v)),
  [names[1]]: churn((n) => ladder[1].alloc(n), (v) => ladder[1].free(v)),
  [names[2]]: churn((n) => ladder[2].alloc(n), (v) => ladder[2].free(v)),
  [names[3]]: churn((n) => ladder[3].alloc(n), (v) => ladder[3].free(v)),
  [names[4]]: churn((n) => ladder[4].alloc(n), (v) => ladder[4].free(v)),
}, 100);
