// W15 one rung at a time: `deno run -A bench/debug_solo.ts <rung>` (or `bun run
// bench/debug_solo.ts <rung>`) measures only the untracked pair and that rung,
// in a fresh process. In the full ladder (debug_bench.ts) every rung shares the
// DebugAllocator's methods, so the JIT's type feedback mixes their options
// (safety on and off, detaching or not); a program uses one configuration, and
// this is what it sees.
import process from "node:process";
import { Arena, DebugAllocator, type DebugAllocatorOptions, PoolAllocator } from "../mod.ts";
import { compare, runAndReport } from "./_ratios.ts";

const RUNGS: Record<string, DebugAllocatorOptions> = {
  "counters": { safety: false },
  "checks": {}, // the default options
  "sampled": { stackTraceFrames: 8, sampleEvery: 64 },
  "detached": { detachFreed: true },
};
const rung = process.argv[2] ?? "checks";
const options = RUNGS[rung];
if (options === undefined) throw new TypeError(`Unknown rung '${rung}': one of ${Object.keys(RUNGS).join(", ")}`);

const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4096 });
const onPool = new DebugAllocator(new PoolAllocator({ blockSize: 96, blocksPerChunk: 4096 }), options);
compare(`W15 solo: 64 B alloc+free on a PoolAllocator, ${rung}`, "untracked", {
  "untracked": () => pool.free(pool.alloc(64)),
  [rung]: () => onPool.free(onPool.alloc(64)),
}, 100);
const arena = new Arena({ capacity: 1 << 20, safety: false });
const onArena = new DebugAllocator(new Arena({ capacity: 1 << 20, safety: false }), options);
compare(`W15 solo: 64 B alloc+free on an Arena, ${rung}`, "untracked", {
  "untracked": () => arena.free(arena.alloc(64)),
  [rung]: () => onArena.free(onArena.alloc(64)),
}, 100);
await runAndReport();
