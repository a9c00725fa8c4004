// The profiler's cost (issue 18): one snapshot of 10 sources holding 100k
// live blocks in total (target < 1 ms), against reading the same sources'
// statistics by hand; and what a timed snapshot adds, with the collection
// it asks for first (its cost divided by the interval is the overhead on a
// workload: at 1 s intervals, 1 ms would be 0.1 %; target < 2 %).
import {
  type Allocator,
  Arena,
  DynamicArray,
  FreeListAllocator,
  MemoryProfiler,
  PoolAllocator,
  PressureMonitor,
} from "../mod.ts";
import { compare, do_not_optimize } from "./_ratios.ts";

const pools = Array.from({ length: 4 }, () => new PoolAllocator({ blockSize: 64 }));
const heaps = Array.from({ length: 4 }, () => new FreeListAllocator({ capacity: 4 << 20 }));
const arena = new Arena({ capacity: 1 << 20 });
const values = new DynamicArray("f32", { capacity: 1 << 16 });
const held: Uint8Array[] = [];
for (const pool of pools) for (let i = 0; i < 15_000; i++) held.push(pool.alloc(64));
// Free lists with every third block freed: their free space is scattered, as after real use.
for (const heap of heaps) {
  const blocks = Array.from({ length: 15_000 }, (_, i) => heap.alloc(32 + (i % 7) * 16));
  for (let i = 0; i < blocks.length; i += 3) heap.free(blocks[i]);
}
for (let i = 0; i < 100; i++) arena.alloc(1000);
values.pushMany(new Float32Array(10_000));
const sources: Record<string, Allocator | DynamicArray> = { arena, values };
pools.forEach((p, i) => (sources[`pool${i}`] = p));
heaps.forEach((h, i) => (sources[`heap${i}`] = h));
const live = [...pools, ...heaps].reduce((sum, a) => sum + a.stats().liveAllocations, 0) + 100 + 1;

const monitor = new PressureMonitor({ intervalMs: 1000 });
const profiler = new MemoryProfiler({ sources, history: 16 });
const withMonitor = new MemoryProfiler({ sources, history: 16, pressure: monitor });
const allocators = [...pools, ...heaps, arena];

compare(`profiler snapshot: 10 sources, ${live} live blocks`, "stats() of each source by hand", {
  "stats() of each source by hand": () => {
    let bytes = 0;
    for (const a of allocators) bytes += a.stats().allocatedBytes;
    return do_not_optimize(bytes + values.metrics().memoryUsage);
  },
  "capture() (pressure from a PressureMonitor)": () => do_not_optimize(withMonitor.capture()),
  "capture() (pressure read from the system each time)": () => do_not_optimize(profiler.capture()),
  "capture({ gc: true }) (a timed snapshot: a full collection first)": () =>
    do_not_optimize(withMonitor.capture({ gc: true })),
}, 200);
