// The profiler's pictures, from a small workload: an arena reset every
// frame, a pool of entities that grows and shrinks, a cache that leaks
// slowly, and a free-list heap left fragmented. Writes the heatmap and the
// heap's block map as SVG into the directory given (the current directory by
// default; the README's pictures are `... examples/profiler_pictures.ts docs`),
// and prints the leak verdict.
//
//   deno run -A examples/profiler_pictures.ts [outDir]   |   bun examples/profiler_pictures.ts [outDir]
import { writeFileSync } from "node:fs";
import process from "node:process";
import { Arena, blockMap, FreeListAllocator, heatmap, MemoryProfiler, PoolAllocator } from "../mod.ts";

const outDir = process.argv[2] ?? process.cwd();

// A seeded generator, so the pictures are the same on every run.
let seed = 2024;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

using frame = new Arena({ capacity: 256 << 10 });
using entities = new PoolAllocator({ blockSize: 256 });
using cache = new PoolAllocator({ blockSize: 1024 });
using heap = new FreeListAllocator({ capacity: 160 << 10, growth: "fixed" });
using profiler = new MemoryProfiler({ sources: { frame, entities, cache, heap } });

const alive: Uint8Array[] = [];
const leaked: Uint8Array[] = [];
const heapBlocks: Uint8Array[] = [];
for (let tick = 0; tick < 60; tick++) {
  frame.reset("retain-capacity");
  frame.alloc(20_000 + Math.floor(random() * 120_000)); // this frame's scratch
  // Entities: a wave that peaks around tick 30.
  const target = Math.round(200 + 600 * Math.sin((tick / 60) * Math.PI) + random() * 50);
  while (alive.length < target) alive.push(entities.alloc(256));
  while (alive.length > target) entities.free(alive.pop()!);
  leaked.push(cache.alloc(1024)); // never freed: a slow leak
  // The heap: blocks of random sizes, a random half freed, so its free space splinters.
  if (tick < 40) heapBlocks.push(heap.alloc(512 + Math.floor(random() * 5_000)));
  if (tick === 40) {
    for (let i = heapBlocks.length - 1; i >= 0; i--) {
      if (random() < 0.5) heap.free(heapBlocks.splice(i, 1)[0]);
    }
  }
  profiler.capture({ gc: true });
}

writeFileSync(`${outDir}/profiler-heatmap.svg`, heatmap(profiler.snapshots, { title: "60 frames: bytes by owner" }));
writeFileSync(`${outDir}/profiler-block-map.svg`, blockMap(heap.dump(), { title: "free-list heap after frees" }));
const verdict = profiler.leakSuspicion();
console.log(
  `leak suspected: ${verdict.suspected} (${verdict.owners.filter((o) => o.monotonic).map((o) => o.name).join(", ")})`,
);
console.log(`heap fragmentation: ${heap.stats().fragmentation.toFixed(2)}`);
for (const block of [...alive]) entities.free(block);
for (const block of leaked) cache.free(block);
for (const block of heapBlocks) heap.free(block);
