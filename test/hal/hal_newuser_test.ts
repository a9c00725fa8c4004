// What a new user of MemoryInterface found: the objects it hands out that it
// also reads itself (`platform`, whose totalBytes getMemoryStats() reports)
// cannot be changed from outside, and the types say which objects are frozen.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type MemoryAllocation, MemoryInterface, type MemoryStats, type PlatformMemory } from "../../mod.ts";

test("platform: frozen, so writing to it cannot change the interface's statistics", () => {
  using memory = new MemoryInterface({ pressure: false });
  const platform = memory.platform;
  const total = memory.getMemoryStats().totalBytes;
  assert.ok(Object.isFrozen(platform) && Object.isFrozen(platform.thresholds));
  // Modules are strict: a write to a frozen object throws.
  assert.throws(() => {
    (platform as { totalBytes: number }).totalBytes = 1000;
  }, TypeError);
  assert.throws(() => {
    (platform.thresholds as { high: number }).high = 0.99;
  }, TypeError);
  assert.equal(memory.getMemoryStats().totalBytes, total);
  assert.equal(memory.platform.totalBytes, total);
});

test("stats, flags and platform are read-only in their types, as they are frozen at run time", () => {
  using memory = new MemoryInterface({ pressure: false });
  const block: MemoryAllocation = memory.allocateTyped(64, "pool", undefined, ["zero"]);
  const stats: MemoryStats = memory.getMemoryStats("pool");
  const platform: PlatformMemory = memory.platform;
  assert.ok(Object.isFrozen(stats) && Object.isFrozen(block.flags));
  // Each line below must fail type checking (Deno checks this file); at run time each throws.
  assert.throws(() => {
    // @ts-expect-error: MemoryStats fields are readonly
    stats.usedBytes = 0;
  }, TypeError);
  assert.throws(() => {
    // @ts-expect-error: the flags array is readonly
    block.flags.push("secret");
  }, TypeError);
  assert.throws(() => {
    // @ts-expect-error: PlatformMemory fields are readonly
    platform.band = "constrained";
  }, TypeError);
  assert.equal(memory.getMemoryStats("pool").usedBytes, 64);
  assert.deepEqual(block.flags, ["zero"]);
  memory.deallocate(block);
});
