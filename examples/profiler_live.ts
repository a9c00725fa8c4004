// `deno task profile` (or `bun examples/profiler_live.ts`): a demo workload
// (an arena reset each frame, a pool of entities that rises and falls, a
// cache that leaks slowly, a free-list heap that churns) profiled every
// 250 ms and served as a live view on 127.0.0.1. Prints the URL, token
// included; runs until interrupted, or for --seconds.
//
//   --port <n>      the port (default: any free one)
//   --seconds <n>   stop after n seconds (default: run until interrupted)
import process from "node:process";
import { Arena, FreeListAllocator, MemoryProfiler, PoolAllocator, serveLiveView } from "../mod.ts";

function flag(name: string, max: number): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    console.error(`--${name} needs a whole number from 0 to ${max}, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return value;
}

const frame = new Arena({ capacity: 256 << 10 });
const entities = new PoolAllocator({ blockSize: 256 });
const cache = new PoolAllocator({ blockSize: 1024 });
const heap = new FreeListAllocator({ capacity: 1 << 20 });
const profiler = new MemoryProfiler({ intervalMs: 250, sources: { frame, entities, cache, heap } });
const view = await serveLiveView(profiler, { port: flag("port", 65_535) ?? 0 });
console.log(`live view: ${view.url}`);

const alive: Uint8Array[] = [];
const heapBlocks: Uint8Array[] = [];
let tick = 0;
const work = setInterval(() => {
  tick++;
  frame.reset("retain-capacity");
  frame.alloc(20_000 + Math.floor(Math.random() * 100_000));
  const target = Math.round(300 + 250 * Math.sin(tick / 20));
  while (alive.length < target) alive.push(entities.alloc(256));
  while (alive.length > target) entities.free(alive.pop()!);
  if (tick % 4 === 0) cache.alloc(1024); // the slow leak
  heapBlocks.push(heap.alloc(256 + Math.floor(Math.random() * 8000)));
  if (heapBlocks.length > 40) heap.free(heapBlocks.splice(Math.floor(Math.random() * heapBlocks.length), 1)[0]);
}, 50);

async function stop(): Promise<void> {
  clearInterval(work);
  await view.close();
  profiler.dispose();
  process.exit(0);
}
// Ctrl-C, and `kill` (SIGTERM): open event streams end cleanly before the process exits.
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
// A timer longer than 2^31 - 1 ms fires at once in both runtimes: a month would stop the demo straight away.
const seconds = flag("seconds", Math.floor((2 ** 31 - 1) / 1000));
if (seconds !== undefined) setTimeout(() => void stop(), seconds * 1000);
