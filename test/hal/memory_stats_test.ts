// getMemoryStats: per type and overall, budgets as totals, peaks, the
// allocators' fragmentation and efficiency, the largest block a type can
// get, and the cache (the same frozen object until something changes).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryInterface } from "../../mod.ts";

test("getMemoryStats(type): used, free, peak and count per type; the budget is the total", () => {
  using memory = new MemoryInterface({ budgets: { pool: 1 << 20, stack: 64 << 10 }, pressure: false });
  const a = memory.allocateTyped(100, "pool");
  const b = memory.allocateTyped(300, "pool");
  const c = memory.allocate(5000);
  let pool = memory.getMemoryStats("pool");
  assert.deepEqual(
    [pool.totalBytes, pool.usedBytes, pool.freeBytes, pool.peakUsedBytes, pool.allocationCount],
    [1 << 20, 400, (1 << 20) - 400, 400, 2],
  );
  memory.deallocate(b);
  pool = memory.getMemoryStats("pool");
  assert.deepEqual([pool.usedBytes, pool.peakUsedBytes, pool.allocationCount], [100, 400, 1]);
  assert.equal(pool.largestFreeBlock, 4096, "the largest size class");
  const system = memory.getMemoryStats("system");
  assert.equal(system.totalBytes, memory.platform.totalBytes, "no budget: the memory the process may use");
  assert.equal(system.usedBytes, 5000);
  const stack = memory.getMemoryStats("stack");
  assert.deepEqual([stack.totalBytes, stack.largestFreeBlock], [64 << 10, 64 << 10], "an unused stack, all room");
  const all = memory.getMemoryStats();
  assert.deepEqual([all.usedBytes, all.peakUsedBytes, all.allocationCount], [5100, 5400, 2]);
  assert.equal(all.totalBytes, memory.platform.totalBytes);
  memory.deallocate(a);
  memory.deallocate(c);
});

test("getMemoryStats: efficiency and fragmentation come from the allocators that serve the type", () => {
  using memory = new MemoryInterface({ pressure: false });
  const blocks = Array.from({ length: 64 }, () => memory.allocateTyped(4096, "video"));
  const dense = memory.getMemoryStats("video");
  assert.ok(dense.allocationEfficiency > 0.2 && dense.allocationEfficiency <= 1, `${dense.allocationEfficiency}`);
  for (let i = 0; i < blocks.length; i += 2) memory.deallocate(blocks[i]); // holes between live blocks
  const holes = memory.getMemoryStats("video");
  assert.ok(holes.fragmentation > dense.fragmentation, `${holes.fragmentation} > ${dense.fragmentation}`);
  assert.ok(holes.allocationEfficiency < dense.allocationEfficiency);
  for (let i = 1; i < blocks.length; i += 2) memory.deallocate(blocks[i]);
  const empty = memory.getMemoryStats("audio");
  assert.deepEqual([empty.allocationEfficiency, empty.fragmentation], [1, 0], "nothing held: efficient, whole");
});

test("getMemoryStats is cached: the same frozen object until an allocation or deallocation", () => {
  using memory = new MemoryInterface({ pressure: false });
  const first = memory.getMemoryStats("pool");
  assert.ok(Object.isFrozen(first));
  assert.equal(memory.getMemoryStats("pool"), first);
  const block = memory.allocateTyped(64, "pool");
  const after = memory.getMemoryStats("pool");
  assert.notEqual(after, first);
  assert.equal(after.usedBytes, 64);
  assert.equal(memory.getMemoryStats("pool"), after);
  memory.deallocate(block);
  assert.equal(memory.getMemoryStats("pool").usedBytes, 0);
});

test("getMemoryStats: shared memory counts its mappings; endFrame() empties temporary", () => {
  using memory = new MemoryInterface({ pressure: false });
  const shared = memory.allocateTyped(10_000, "shared");
  const stats = memory.getMemoryStats("shared");
  assert.deepEqual([stats.usedBytes, stats.allocationCount, stats.allocationEfficiency], [10_000, 1, 1]);
  for (let i = 0; i < 10; i++) memory.allocateTyped(1000, "temporary");
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 10_000);
  memory.endFrame();
  const temporary = memory.getMemoryStats("temporary");
  assert.deepEqual([temporary.usedBytes, temporary.allocationCount, temporary.peakUsedBytes], [0, 0, 10_000]);
  memory.deallocate(shared);
});
