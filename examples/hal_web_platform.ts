// The "web platform" pattern of the Flight HAL design: on a memory-constrained
// platform, ask for temporary memory with a short timeout, use it at once and
// give it back quickly. allocateAsync waits for headroom (here another task's
// scratch memory, released by its endFrame()) and gives up after timeoutMs.
// Run: `deno run -A examples/hal_web_platform.ts` or `bun examples/hal_web_platform.ts`.
import { AllocationError, MemoryInterface } from "../mod.ts"; // "@memkit/memkit" in your project

using memory = new MemoryInterface({ budgets: { temporary: 2 << 20 } }); // a small tab: 2 MiB of scratch
const { band, totalBytes } = memory.platform;
console.log(`platform: ${band} (${Math.round(totalBytes / 2 ** 20)} MiB usable)`);
if (memory.getMemoryStats().totalBytes < 128 << 20) console.log("memory-constrained platform: aggressive management");

// Another task holds 1.5 MiB of scratch memory until its frame ends, 100 ms from now.
memory.allocateTyped(1536 << 10, "temporary");
let released = false;
setTimeout(() => {
  memory.endFrame();
  released = true;
}, 100);

// 1 MiB of temporary memory, waiting at most 1 s for room.
const block = await memory.allocateAsync({ size: 1 << 20, flags: ["temporary"], timeoutMs: 1000 });
console.log(
  `got ${block.size >> 10} KiB of ${block.type} memory ${released ? "once the other task's frame ended" : "at once"}`,
);
block.bytes.fill(1); // use it immediately...
memory.deallocate(block); // ...and free it quickly

// When nothing frees room in time, the wait ends with AllocationError("timeout").
memory.allocateTyped(2 << 20, "temporary");
try {
  await memory.allocateAsync({ size: 1 << 20, flags: ["temporary"], timeoutMs: 50 });
} catch (error) {
  if (!(error instanceof AllocationError)) throw error;
  console.log(`gave up: AllocationError("${error.category}")`);
}
memory.endFrame();
