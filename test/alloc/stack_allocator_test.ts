import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, StackAllocator, type StackMarker } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

test("StackAllocator matches a model over 20,000 seeded alloc/free/resize/mark/rewind steps", () => {
  const seed = 0x57ac4;
  const next = xorshift32(seed);
  const stack = new StackAllocator({ capacity: 1 << 20 });
  const blocks: { view: Uint8Array; size: number; byte: number }[] = [];
  const markers: { marker: StackMarker; depth: number; below: unknown }[] = [];
  let allocations = 0, frees = 0, failed = 0, peak = 0;
  const where = (step: number) => `seed ${seed} step ${step}`;
  const bytes = () => blocks.reduce((s, b) => s + b.size, 0);
  for (let step = 0; step < 20_000; step++) {
    const op = below(next, 100);
    if (op < 50 || blocks.length === 0) {
      const size = 1 + below(next, below(next, 10) === 0 ? 60_000 : 300);
      const align = 1 << below(next, 13);
      const view = stack.tryAlloc(size, align);
      if (view === null) {
        failed++;
      } else {
        assert.equal(addressOf(view) % align, 0, `${where(step)}: alignment`);
        const block = { view, size, byte: below(next, 256) };
        view.fill(block.byte);
        blocks.push(block);
        allocations++;
      }
    } else if (op < 80) {
      const top = blocks.pop()!;
      assert.equal(top.view[top.size - 1], top.byte, `${where(step)}: contents`);
      stack.free(top.view);
      frees++;
    } else if (op < 88) {
      const top = blocks[blocks.length - 1];
      const newSize = 1 + below(next, 2000);
      try {
        const view = stack.resize(top.view, newSize);
        for (let i = 0; i < Math.min(top.size, newSize); i += 97) assert.equal(view[i], top.byte);
        top.view = view;
        top.size = newSize;
        view.fill(top.byte);
      } catch (error) {
        assert.ok(error instanceof AllocationError && error.category === "out-of-memory", String(error));
        failed++;
      }
    } else if (op < 94) {
      markers.push({ marker: stack.mark(), depth: blocks.length, below: blocks[blocks.length - 1] });
    } else if (markers.length > 0) {
      const { marker, depth, below: under } = markers.pop()!;
      // Valid while the block under the marker is still the same block.
      if (depth <= blocks.length && blocks[depth - 1] === under) {
        stack.rewind(marker);
        frees += blocks.length - depth;
        blocks.length = depth;
      } else {
        assert.throws(
          () => stack.rewind(marker),
          (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
        );
      }
    }
    peak = Math.max(peak, bytes());
    const stats = stack.stats();
    assert.equal(stats.liveAllocations, blocks.length, `${where(step)}: live`);
    assert.equal(stats.allocatedBytes, bytes(), `${where(step)}: bytes`);
    assert.equal(stats.totalAllocations, allocations, `${where(step)}: allocations`);
    assert.equal(stats.totalFrees, frees, `${where(step)}: frees`);
    assert.equal(stats.failedAllocations, failed, `${where(step)}: failed`);
    assert.equal(stats.peakBytes, peak, `${where(step)}: peak`);
    assert.equal(stats.capacityBytes, stats.allocatedBytes + stats.availableBytes + stats.overheadBytes);
    if (step % 500 === 0) {
      for (let i = 1; i < blocks.length; i++) {
        assert.ok(
          addressOf(blocks[i - 1].view) + blocks[i - 1].size <= addressOf(blocks[i].view),
          `${where(step)}: overlap`,
        );
      }
      for (const b of blocks) assert.equal(b.view[0], b.byte, `${where(step)}: contents`);
    }
  }
  while (blocks.length) stack.free(blocks.pop()!.view);
  assert.equal(stack.stats().allocatedBytes, 0);
  const view = stack.alloc(8);
  stack.dispose();
  assert.equal(view.length, 0, "dispose detaches");
  assert.equal(stack.stats().capacityBytes, 0);
});

test("StackAllocator.free() out of order throws invalid-free and changes nothing", () => {
  using stack = new StackAllocator({ capacity: 4096 });
  const a = stack.alloc(10);
  const b = stack.alloc(10);
  assert.throws(
    () => stack.free(a),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free" && /out of order/.test(e.message),
  );
  stack.free(b);
  assert.throws(() => stack.free(b), (e: unknown) => e instanceof AllocationError && e.category === "double-free");
  assert.throws(
    () => stack.free(a.subarray(1)),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
  stack.free(a);
  assert.equal(stack.stats().liveAllocations, 0);
});

test("StackAllocator rewind frees everything after a marker; a stale marker is refused", () => {
  using stack = new StackAllocator({ capacity: 4096 });
  stack.alloc(100);
  const marker = stack.mark();
  stack.alloc(100);
  stack.alloc(100);
  stack.rewind(marker);
  assert.equal(stack.stats().liveAllocations, 1);
  const inner = stack.mark();
  stack.rewind(marker);
  const top = stack.alloc(50);
  stack.free(top);
  stack.reset();
  assert.throws(
    () => stack.rewind(inner),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
  using other = new StackAllocator({ capacity: 4096 });
  assert.throws(
    () => other.rewind(marker),
    (e: unknown) => e instanceof AllocationError && e.category === "mismatched-allocator",
  );
});

test("StackAllocator fails with out-of-memory when full and works after a free", () => {
  using stack = new StackAllocator({ capacity: 4096 });
  const all = stack.alloc(4096);
  assert.equal(stack.tryAlloc(1), null);
  assert.throws(() => stack.alloc(1), (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory");
  stack.free(all);
  assert.equal(stack.alloc(1).length, 1);
  assert.equal(stack.stats().failedAllocations, 2);
});
