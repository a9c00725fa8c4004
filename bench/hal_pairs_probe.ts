// The HAL's 64-byte pairs outside mitata, for A/B between two trees of this
// repository: one process prints, for the tree at the path given (default:
// this one), the median over five rounds of each pair's time over its
// allocator's, in one line: pool allocateTyped / pool allocate(request) /
// temporary allocateTyped / temporary allocate(request). Each round times
// 5 × 10⁵ pairs of every case in turn after two warm-up rounds, the pool and
// temporary cases in one process as a program would mix them. Run it
// alternately on two trees (for example an old one from
// `git archive <rev> mod.ts src ffi deno.json | tar -x -C /tmp/old`) to see a
// change of a few percent that mitata's run-to-run spread hides:
//   npx deno run -A bench/hal_pairs_probe.ts /tmp/old; npx deno run -A bench/hal_pairs_probe.ts .
import process from "node:process";
import { pathToFileURL } from "node:url";

const root = pathToFileURL(`${process.argv[2] ?? new URL("..", import.meta.url).pathname}/`).href;
const { MemoryInterface } = await import(`${root}mod.ts`);
const { ownedAllocatorOf } = await import(`${root}src/hal/_owned_allocators.ts`);

const memory = new MemoryInterface({ pressure: false });
const classPool = ownedAllocatorOf(memory.getAllocator("pool")).pool(2);
const arena = ownedAllocatorOf(memory.getAllocator("arena"));
const poolRequest = { size: 64, type: "pool" } as const, temporaryRequest = { size: 64, type: "temporary" } as const;
const cases: (() => void)[] = [
  () => classPool.free(classPool.alloc(64)),
  () => memory.deallocate(memory.allocateTyped(64, "pool")),
  () => memory.deallocate(memory.allocate(poolRequest)),
  () => arena.free(arena.alloc(64)),
  () => memory.deallocate(memory.allocateTyped(64, "temporary")),
  () => memory.deallocate(memory.allocate(temporaryRequest)),
];

function time(f: () => void, n: number): number {
  const started = performance.now();
  for (let i = 0; i < n; i++) f();
  return (performance.now() - started) * 1e6 / n;
}

const ratios: number[][] = [[], [], [], []];
for (let round = 0; round < 7; round++) {
  const t = cases.map((f) => time(f, 5e5));
  if (round < 2) continue; // warm-up
  ratios[0].push(t[1] / t[0]);
  ratios[1].push(t[2] / t[0]);
  ratios[2].push(t[4] / t[3]);
  ratios[3].push(t[5] / t[3]);
}
console.log(
  `${ratios.map((r) => r.sort((a, b) => a - b)[2].toFixed(2)).join(" / ")}` +
    "  (pool allocateTyped / pool allocate(request) / temporary allocateTyped / temporary allocate(request), " +
    "× the allocator's pair, median of 5 rounds)",
);
memory.dispose();
