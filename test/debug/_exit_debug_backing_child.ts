// A program that leaks one 100-byte block of its own DebugAllocator, over the backing its argument names; the
// leak check at exit must list that block (size and site) whatever the backing chain. Arguments: the backing.
import process from "node:process";
import {
  type Allocator,
  Arena,
  DebugAllocator,
  FreeListAllocator,
  getAllocator,
  initAllocator,
  PoolAllocator,
} from "../../mod.ts";

const [backing = "default"] = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : ((globalThis as { Deno?: { args: string[] } }).Deno?.args ?? []);
initAllocator({ leakCheckAtExit: "fail" });

const kept: unknown[] = [];
const under: Record<string, () => Allocator | undefined> = {
  default: () => undefined,
  pool: () => new PoolAllocator({ blockSize: 4096 }),
  "free-list": () => new FreeListAllocator(),
  arena: () => new Arena({ capacity: 1 << 16 }),
  debug: () => new DebugAllocator(),
  global: () => getAllocator(),
  "pool in an arena": () => new PoolAllocator({ blockSize: 4096, backing: new Arena({ capacity: 1 << 20 }) }),
};
const debug = new DebugAllocator(under[backing](), { stackTraceFrames: 4 });
kept.push(debug, debug.alloc(100)); // the leak
