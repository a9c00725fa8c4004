// VirtualAllocator: memkit's TLSF placement over offsets it does not own,
// checked against a model (no overlap, alignment, stats, everything merged
// back), and the linear strategy. No GPU needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type VirtualAllocation, VirtualAllocator } from "../../src/gpu/virtual_allocator.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

test("VirtualAllocator tlsf: 5000 seeded operations keep blocks apart, aligned, inside the range", () => {
  const capacity = 1 << 20;
  const range = new VirtualAllocator({ capacity });
  const random = lcg(17);
  const live: { a: VirtualAllocation; align: number }[] = [];
  let failures = 0;
  for (let step = 0; step < 5000; step++) {
    if (live.length > 0 && random() < 0.45) {
      const [{ a }] = live.splice(Math.floor(random() * live.length), 1);
      range.free(a);
    } else {
      const size = 1 + Math.floor(random() ** 3 * 20000);
      const align = 2 ** Math.floor(random() * 10);
      const a = range.allocate(size, align);
      if (a === null) {
        failures++;
        assert.ok(range.stats().largestFreeBlock < size + Math.max(16, align), "null only when nothing fits");
        continue;
      }
      assert.equal(a.size, size);
      assert.equal(a.offset % align, 0);
      assert.ok(a.offset + size <= capacity);
      live.push({ a, align });
    }
    if (step % 97 === 0) {
      const sorted = live.map(({ a }) => a).sort((x, y) => x.offset - y.offset);
      for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1].offset + sorted[i - 1].size <= sorted[i].offset);
      assert.equal(range.stats().allocations, live.length);
    }
  }
  assert.ok(failures < 5000);
  for (const { a } of live) range.free(a);
  const stats = range.stats();
  assert.deepEqual(stats, {
    capacity,
    allocatedBytes: 0,
    allocations: 0,
    largestFreeBlock: capacity,
    fragmentation: 0,
  });
});

test("VirtualAllocator tlsf: a freed block's space is reused; null when full", () => {
  const range = new VirtualAllocator({ capacity: 4096 });
  const a = range.allocate(2048)!;
  const b = range.allocate(2048)!;
  assert.equal(range.allocate(16), null);
  range.free(a);
  const c = range.allocate(1000, 256)!;
  assert.equal(c.offset, 0);
  assert.ok(range.owns(b) && !range.owns(a));
});

test("VirtualAllocator linear: bump placement, the newest block rolls back, reset frees all", () => {
  const range = new VirtualAllocator({ capacity: 1024, strategy: "linear" });
  const a = range.allocate(100)!;
  const b = range.allocate(100, 256)!;
  assert.deepEqual([a.offset, b.offset], [0, 256]);
  range.free(b);
  assert.equal(range.allocate(10)!.offset, 112); // rolled back to a's end (granule 16)
  range.free(a); // not the newest: its bytes stay placed until reset
  assert.equal(range.stats().allocations, 1);
  range.reset();
  assert.equal(range.allocate(1024)!.offset, 0);
});

test("VirtualAllocator bad input: each row its error, the allocator unchanged", () => {
  const range = new VirtualAllocator({ capacity: 4096 });
  const kept = range.allocate(64)!;
  const other = new VirtualAllocator({ capacity: 4096 });
  const foreign = other.allocate(64)!;
  const freed = range.allocate(64)!;
  range.free(freed);
  const rows: [string, () => unknown, object][] = [
    ["no options", () => new VirtualAllocator(undefined as never), { name: "TypeError" }],
    ["capacity a string", () => new VirtualAllocator({ capacity: "1" as never }), { name: "TypeError" }],
    ["capacity 8", () => new VirtualAllocator({ capacity: 8 }), { name: "RangeError" }],
    ["unknown strategy", () => new VirtualAllocator({ capacity: 64, strategy: "buddy" as never }), {
      name: "TypeError",
    }],
    ["size 0", () => range.allocate(0), { name: "RangeError" }],
    ["size past capacity", () => range.allocate(4097), { name: "RangeError" }],
    ["size NaN", () => range.allocate(NaN), { name: "RangeError" }],
    ["alignment 3", () => range.allocate(16, 3), { name: "RangeError" }],
    ["alignment a string", () => range.allocate(16, "4" as never), { name: "TypeError" }],
    ["free twice", () => range.free(freed), { name: "AllocationError", category: "double-free" }],
    ["free another's block", () => range.free(foreign), { name: "AllocationError", category: "invalid-free" }],
    ["free a look-alike", () => range.free({ offset: 0, size: 64 }), {
      name: "AllocationError",
      category: "invalid-free",
    }],
  ];
  const before = range.stats();
  for (const [name, run, expected] of rows) {
    assert.throws(run, expected, name);
    assert.deepEqual(range.stats(), before, name);
  }
  assert.ok(range.owns(kept));
});
