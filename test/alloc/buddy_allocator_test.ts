import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, BuddyAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

function blockFor(size: number, align: number): number {
  let block = 16;
  while (block < size || block < align) block *= 2;
  return block;
}

test("BuddyAllocator matches a model over 20,000 seeded steps and merges back to one block", () => {
  const seed = 0xb0dd7;
  const next = xorshift32(seed);
  const capacity = 1 << 20;
  const buddy = new BuddyAllocator({ capacity });
  const live: { view: Uint8Array; size: number; block: number; byte: number }[] = [];
  let allocations = 0, frees = 0, failed = 0, peak = 0;
  const where = (step: number) => `seed ${seed} step ${step}`;
  const bytes = () => live.reduce((s, b) => s + b.size, 0);
  for (let step = 0; step < 20_000; step++) {
    const op = below(next, 100);
    if (op < 50 || live.length === 0) {
      const size = 1 + below(next, below(next, 8) === 0 ? 100_000 : 2000);
      const align = 1 << below(next, 13);
      const view = buddy.tryAlloc(size, align);
      if (view === null) {
        failed++;
      } else {
        assert.equal(addressOf(view) % align, 0, `${where(step)}: alignment`);
        const block = blockFor(size, align);
        // Blocks sit at multiples of their size from the page-aligned chunk start.
        assert.equal(addressOf(view) % Math.min(block, 4096), 0, `${where(step)}: block alignment`);
        const entry = { view, size, block, byte: below(next, 256) };
        view.fill(entry.byte);
        live.push(entry);
        allocations++;
      }
    } else if (op < 85) {
      const [entry] = live.splice(below(next, live.length), 1);
      assert.equal(entry.view[entry.size - 1], entry.byte, `${where(step)}: contents`);
      buddy.free(entry.view);
      frees++;
    } else {
      const entry = live[below(next, live.length)];
      const newSize = 1 + below(next, 4000);
      try {
        const view = buddy.resize(entry.view, newSize);
        const kept = Math.min(entry.size, newSize);
        assert.equal(view[kept - 1], entry.byte, `${where(step)}: resize kept contents`);
        if (addressOf(view) !== addressOf(entry.view)) {
          allocations++;
          frees++;
          entry.block = blockFor(newSize, 16);
        }
        entry.view = view;
        entry.size = newSize;
        view.fill(entry.byte);
      } catch (error) {
        assert.ok(error instanceof AllocationError && error.category === "out-of-memory", String(error));
        failed++;
      }
    }
    peak = Math.max(peak, bytes());
    const stats = buddy.stats();
    assert.equal(stats.liveAllocations, live.length, `${where(step)}: live`);
    assert.equal(stats.allocatedBytes, bytes(), `${where(step)}: bytes`);
    assert.equal(stats.totalAllocations, allocations, `${where(step)}: allocations`);
    assert.equal(stats.totalFrees, frees, `${where(step)}: frees`);
    assert.equal(stats.failedAllocations, failed, `${where(step)}: failed`);
    assert.equal(stats.availableBytes, capacity - live.reduce((s, b) => s + b.block, 0), `${where(step)}: free bytes`);
    assert.ok(stats.peakBytes >= peak, `${where(step)}: peak`);
    if (step % 500 === 0) {
      const ranges = live.map((b) => [addressOf(b.view), b.block]).sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < ranges.length; i++) {
        assert.ok(ranges[i - 1][0] + ranges[i - 1][1] <= ranges[i][0], `${where(step)}: overlap`);
      }
      for (const b of live) assert.equal(b.view[0], b.byte, `${where(step)}: contents`);
    }
  }
  for (const entry of live) buddy.free(entry.view);
  const end = buddy.stats();
  assert.equal(end.largestFreeBlock, capacity, "everything merged back");
  assert.equal(end.fragmentation, 0);
  buddy.dispose();
});

test("BuddyAllocator splits and merges buddies", () => {
  using buddy = new BuddyAllocator({ capacity: 4096, minBlockSize: 16 });
  const a = buddy.alloc(16);
  const b = buddy.alloc(16);
  assert.equal(addressOf(b) - addressOf(a), 16, "buddies are adjacent");
  assert.equal(buddy.stats().largestFreeBlock, 2048);
  buddy.free(a);
  buddy.free(b);
  assert.equal(buddy.stats().largestFreeBlock, 4096);
  assert.throws(() => buddy.free(a), (e: unknown) => e instanceof AllocationError && e.category === "double-free");
  const big = buddy.alloc(4096);
  assert.equal(buddy.tryAlloc(1), null);
  assert.throws(
    () => buddy.free(big.subarray(16)),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
  buddy.free(big);
});

test("BuddyAllocator reports internal fragmentation as overhead", () => {
  using buddy = new BuddyAllocator({ capacity: 4096 });
  const v = buddy.alloc(65);
  const stats = buddy.stats();
  assert.equal(stats.allocatedBytes, 65);
  assert.equal(stats.overheadBytes, 128 - 65);
  buddy.free(v);
});
