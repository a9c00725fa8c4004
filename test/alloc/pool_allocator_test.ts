import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, nativeInfo, PoolAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

function poolModel(detachFreed: boolean, seed: number): void {
  const next = xorshift32(seed);
  const pool = new PoolAllocator({ blockSize: 100, blocksPerChunk: 64, maxBlocks: 1000, align: 32, detachFreed });
  const live: { view: Uint8Array; size: number; byte: number }[] = [];
  let allocations = 0, frees = 0, failed = 0, peak = 0;
  const where = (step: number) => `seed ${seed} detachFreed ${detachFreed} step ${step}`;
  const bytes = () => live.reduce((s, b) => s + b.size, 0);
  for (let step = 0; step < 20_000; step++) {
    const op = below(next, 100);
    if (op < 50 || live.length === 0) {
      const size = 1 + below(next, 100);
      const view = pool.tryAlloc(size);
      if (view === null) {
        assert.equal(live.length, 1000, `${where(step)}: fails only at maxBlocks`);
        failed++;
      } else {
        assert.equal(addressOf(view) % 32, 0, `${where(step)}: alignment`);
        const block = { view, size, byte: below(next, 256) };
        view.fill(block.byte);
        live.push(block);
        allocations++;
      }
    } else if (op < 90) {
      const [block] = live.splice(below(next, live.length), 1);
      assert.equal(block.view[block.size - 1], block.byte, `${where(step)}: contents`);
      pool.free(block.view);
      if (detachFreed) assert.equal(block.view.length, 0, `${where(step)}: detached`);
      frees++;
    } else {
      const block = live[below(next, live.length)];
      const newSize = 1 + below(next, 100);
      const view = pool.resize(block.view, newSize);
      assert.equal(addressOf(view), addressOf(block.view), `${where(step)}: resize in place`);
      block.view = view;
      block.size = newSize;
      view.fill(block.byte);
    }
    peak = Math.max(peak, bytes());
    const stats = pool.stats();
    assert.equal(stats.liveAllocations, live.length, `${where(step)}: live`);
    assert.equal(stats.allocatedBytes, bytes(), `${where(step)}: bytes`);
    assert.equal(stats.totalAllocations, allocations, `${where(step)}: allocations`);
    assert.equal(stats.totalFrees, frees, `${where(step)}: frees`);
    assert.equal(stats.failedAllocations, failed, `${where(step)}: failed`);
    assert.equal(stats.peakBytes, peak, `${where(step)}: peak`);
    assert.equal(stats.capacityBytes, stats.allocatedBytes + stats.availableBytes + stats.overheadBytes);
    if (step % 500 === 0) {
      const ranges = live.map((b) => addressOf(b.view)).sort((a, b) => a - b);
      for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i - 1] + 100 <= ranges[i], `${where(step)}: overlap`);
      for (const b of live) assert.equal(b.view[0], b.byte, `${where(step)}: contents`);
    }
  }
  for (const block of live) pool.free(block.view);
  assert.equal(pool.stats().liveAllocations, 0);
  const kept = pool.alloc(10);
  pool.dispose();
  assert.equal(kept.length, 0, "dispose detaches");
}

test("PoolAllocator matches a model over 20,000 seeded steps", () => poolModel(false, 0x9001));
test("PoolAllocator with detachFreed matches a model and detaches freed blocks", () => poolModel(true, 0x9002));

test("PoolAllocator reports double frees, interior views and wrong pools", () => {
  using a = new PoolAllocator({ blockSize: 64 });
  using b = new PoolAllocator({ blockSize: 64 });
  const block = a.alloc(64);
  assert.throws(
    () => b.free(block),
    (e: unknown) => e instanceof AllocationError && e.category === "mismatched-allocator",
  );
  assert.throws(
    () => a.free(block.subarray(8)),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
  a.free(block);
  assert.throws(() => a.free(block), (e: unknown) => e instanceof AllocationError && e.category === "double-free");
  assert.throws(
    () => a.resize(block, 8),
    (e: unknown) => e instanceof AllocationError && e.category === "use-after-free",
  );
});

test("PoolAllocator grows by chunks and stops at maxBlocks with limit-exceeded", () => {
  using pool = new PoolAllocator({ blockSize: 16, blocksPerChunk: 4, maxBlocks: 10 });
  const blocks = Array.from({ length: 10 }, () => pool.alloc(16));
  assert.equal(pool.stats().liveAllocations, 10);
  assert.throws(() => pool.alloc(16), (e: unknown) => e instanceof AllocationError && e.category === "limit-exceeded");
  pool.free(blocks[3]);
  const again = pool.alloc(16);
  assert.equal(addressOf(again), addressOf(blocks[3]), "the freed block is reused (LIFO)");
});

test("PoolAllocator.array() fits typed arrays in one block", () => {
  using pool = new PoolAllocator({ blockSize: 64, align: 64 });
  const v = pool.array(Float64Array, 8);
  assert.equal(v.length, 8);
  assert.equal(addressOf(v) % 64, 0);
  assert.throws(() => pool.array(Float64Array, 9), RangeError);
  pool.free(v);
});

test("a PoolAllocator whose chunk no allocation can give is refused at construction, naming the limit", () => {
  // Before: accepted, and its first alloc failed with "out-of-memory" about a size of the pool's own making.
  const limit = Math.min(2 ** 47, nativeInfo().maxViewBytes);
  const configs = [
    { blockSize: 2 ** 45 }, // 16 blocks a chunk by default
    { blockSize: 2 ** 30, blocksPerChunk: 2 ** 24 },
    { blockSize: limit / 8 + 1, blocksPerChunk: 8 }, // over the limit by the alignment's rounding
    { blockSize: limit / 2 + 1, blocksPerChunk: 2 },
  ];
  for (const options of configs) {
    assert.throws(() => new PoolAllocator(options), (e: unknown) => {
      assert.ok(e instanceof RangeError, `${JSON.stringify(options)}: ${e}`);
      assert.match(e.message, /^Cannot create PoolAllocator as its chunk/);
      assert.match(e.message, new RegExp(`must be at most ${limit} bytes`));
      assert.match(e.message, /'blockSize'/);
      return true;
    });
  }
  // The largest chunk that fits is accepted (its memory is only asked for on the first alloc).
  new PoolAllocator({ blockSize: limit / 16 }).dispose();
  new PoolAllocator({ blockSize: limit / 4, blocksPerChunk: 4 }).dispose();
});
