// A program that leaks blocks of many DebugAllocators, for the caps of the leak check's report at exit.
// Arguments: where the DebugAllocators' memory lies ("pool": all over one PoolAllocator, so under one census owner;
// "global": all over getAllocator(), each under a heading of its own; "pools": each over its own PoolAllocator, 60
// owners, so the DebugAllocators of the owners past the 50 listed get headings of their own), and how many.
// DebugAllocator i leaks a 16-byte block, and a 32-byte one as well when i is odd.
import process from "node:process";
import { type Allocator, DebugAllocator, getAllocator, initAllocator, PoolAllocator } from "../../mod.ts";

const args = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? []);
const [placement = "pool", count = "300"] = args;
initAllocator({ leakCheckAtExit: "fail" });

const kept: unknown[] = [];
const pool = new PoolAllocator({ blockSize: 256 });
const backingOf: Record<string, () => Allocator> = {
  pool: () => pool,
  global: () => getAllocator(),
  pools: () => new PoolAllocator({ blockSize: 256 }),
};
for (let i = 0; i < Number(count); i++) {
  const debug = new DebugAllocator(backingOf[placement]());
  kept.push(debug, debug.alloc(16));
  if (i % 2 === 1) kept.push(debug.alloc(32));
}
(globalThis as { kept?: unknown }).kept = kept;
