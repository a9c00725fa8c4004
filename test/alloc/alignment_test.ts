import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, nativeInfo, SystemAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const SIZES = [1, 2, 3, 7, 8, 15, 16, 17, 31, 63, 64, 100, 255, 256, 1000, 4095, 4096, 4097, 65536, 1 << 20, 3 << 20];

test("SystemAllocator.alloc() honours every power-of-two alignment up to the page size", () => {
  // Threshold 1 MiB: the largest sizes go through mmap, the rest through malloc/posix_memalign.
  const allocator = new SystemAllocator({ mmapThreshold: 1 << 20 });
  const next = xorshift32(0xa11a);
  const live: { view: Uint8Array; fill: number }[] = [];
  for (let align = 1; align <= nativeInfo().pageSize; align *= 2) {
    for (const size of SIZES) {
      const view = allocator.alloc(size, align);
      assert.equal(view.length, size);
      assert.equal(addressOf(view) % align, 0, `size ${size} align ${align}`);
      const fill = below(next, 256);
      view.fill(fill);
      live.push({ view, fill });
    }
  }
  // No block overwrote another: every block still holds its own byte.
  for (const { view, fill } of live) {
    assert.equal(view[0], fill);
    assert.equal(view[view.length - 1], fill);
    assert.equal(view.indexOf(fill ^ 0xff), -1);
  }
  for (const { view } of live) allocator.free(view);
  assert.equal(allocator.stats().liveAllocations, 0);
});

test("SystemAllocator.resize() keeps the alignment and the contents", () => {
  const allocator = new SystemAllocator({ mmapThreshold: 1 << 20 });
  for (let align = 1; align <= nativeInfo().pageSize; align *= 4) {
    let view = allocator.alloc(100, align);
    for (let i = 0; i < 100; i++) view[i] = i;
    for (const size of [5000, 50, 2 << 20, 300]) {
      view = allocator.resize(view, size);
      assert.equal(addressOf(view) % align, 0, `align ${align} size ${size}`);
      for (let i = 0; i < Math.min(50, size); i++) assert.equal(view[i], i);
    }
    allocator.free(view);
  }
});

test("SystemAllocator.array() aligns to the element size and at least 16", () => {
  const allocator = new SystemAllocator();
  const doubles = allocator.array(Float64Array, 1000);
  assert.equal(doubles.length, 1000);
  assert.equal(addressOf(doubles) % 16, 0);
  const wide = allocator.array(BigInt64Array, 3, 4096);
  assert.equal(addressOf(wide) % 4096, 0);
  wide[2] = -5n;
  assert.equal(wide[2], -5n);
  allocator.free(doubles);
  allocator.free(wide);
  assert.equal(doubles.length, 0);
});

test("SystemAllocator with zero: true returns zero-filled blocks", () => {
  const allocator = new SystemAllocator({ zero: true });
  for (let round = 0; round < 20; round++) {
    const dirty = allocator.alloc(512);
    dirty.fill(0xee);
    allocator.free(dirty);
    const clean = allocator.alloc(512);
    assert.equal(clean.indexOf(0xee), -1);
    const grown = allocator.resize(clean, 4096);
    assert.equal(grown.indexOf(0xee), -1);
    allocator.free(grown);
  }
});
