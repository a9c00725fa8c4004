// What the frame() / beginFrame() and allowFallback JSDoc warn about, shown:
// frames are one LIFO stack per interface, so two async tasks that each open
// a frame and await inside it end each other's frames; and a temporary
// request that falls back is served by a long-lived allocator that endFrame()
// does not release.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryInterface } from "../../mod.ts";

test("two async tasks with a frame each: the earlier frame's end ends the later one too", async () => {
  using memory = new MemoryInterface({ pressure: false });
  let laterScratch: Uint8Array | null = null;
  let laterSawAfterEarlierEnded = -1;
  // The tasks take turns by promises, not timers (a loaded machine fires timers out of order).
  const earlierOpened = Promise.withResolvers<void>(), laterOpened = Promise.withResolvers<void>();
  const earlier = (async () => {
    using _frame = memory.frame();
    memory.allocateTyped(64, "temporary");
    earlierOpened.resolve();
    await laterOpened.promise; // the later task opens its frame meanwhile, on top of this one
  })();
  const later = (async () => {
    await earlierOpened.promise; // opens after the earlier task's frame
    using _frame = memory.frame();
    laterScratch = memory.allocateTyped(64, "temporary").bytes;
    laterScratch.fill(7);
    laterOpened.resolve();
    await earlier; // still inside its own frame
    laterSawAfterEarlierEnded = laterScratch.length;
  })();
  await Promise.all([earlier, later]);
  assert.equal(laterSawAfterEarlierEnded, 0, "the later task's temporary view read length 0 inside its own frame");
  assert.equal(memory.getMemoryStats("temporary").allocationCount, 0);
});

test("a temporary request that falls back is served by the system allocator and survives endFrame()", () => {
  using memory = new MemoryInterface({ budgets: { temporary: 4096 }, pressure: false });
  memory.beginFrame();
  const inFrame = memory.allocateTyped(4096, "temporary");
  const fellBack = memory.allocate({ size: 1024, type: "temporary", allowFallback: true });
  assert.deepEqual([fellBack.type, fellBack.allocator], ["system", "system"]);
  fellBack.bytes.fill(9);
  memory.endFrame();
  assert.equal(inFrame.bytes.length, 0, "the frame's own temporary memory went");
  assert.equal(fellBack.bytes.length, 1024, "the fallback did not");
  assert.equal(fellBack.bytes[1023], 9);
  assert.equal(memory.getMemoryStats("system").usedBytes, 1024, "still counted until deallocated");
  memory.deallocate(fellBack);
  assert.equal(memory.getMemoryStats("system").usedBytes, 0);
});
