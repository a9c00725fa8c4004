import assert from "node:assert/strict";
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { native } from "../../ffi/native.ts";
import { addressOf, AllocationError, nativeInfo, SystemAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

interface ModelBlock {
  view: Uint8Array;
  size: number;
  byte: number;
}

function randomSize(next: () => number): number {
  const r = below(next, 100);
  if (r < 5) return 0;
  if (r < 70) return 1 + below(next, 256);
  if (r < 97) return 257 + below(next, 16_384);
  return (1 << 20) + below(next, 1 << 20); // mmap-backed
}

function checkContents(block: ModelBlock, seed: number, step: number): void {
  const { view, size, byte } = block;
  assert.equal(view.length, size, `seed ${seed} step ${step}: length`);
  if (size === 0) return;
  assert.equal(view[0], byte, `seed ${seed} step ${step}: first byte`);
  assert.equal(view[size - 1], byte, `seed ${seed} step ${step}: last byte`);
}

test("SystemAllocator stats match a model over 10,000 seeded alloc/free/resize steps", () => {
  const seed = 0x5eed2;
  const next = xorshift32(seed);
  // A low mmap threshold so the mmap path takes part too.
  const allocator = new SystemAllocator({ mmapThreshold: 1 << 20 });
  const live: ModelBlock[] = [];
  let allocs = 0, frees = 0, peak = 0, peakWithMoves = 0;
  const bytesLive = () => live.reduce((sum, b) => sum + b.size, 0);

  for (let step = 0; step < 10_000; step++) {
    const op = below(next, 10);
    if (op < 4 || live.length === 0) {
      const size = randomSize(next);
      const align = 1 << below(next, 13);
      const view = allocator.alloc(size, align);
      assert.equal(addressOf(view) % align, 0, `seed ${seed} step ${step}: alignment`);
      const byte = below(next, 256);
      view.fill(byte);
      live.push({ view, size, byte });
      if (size > 0) allocs++;
    } else if (op < 7) {
      const index = below(next, live.length);
      const [block] = live.splice(index, 1);
      checkContents(block, seed, step);
      allocator.free(block.view);
      assert.equal(block.view.length, 0, `seed ${seed} step ${step}: freed view detached`);
      if (block.size > 0) frees++;
    } else {
      const block = live[below(next, live.length)];
      checkContents(block, seed, step);
      const newSize = randomSize(next);
      const old = block.view;
      // A moving resize holds old and new block at once for a moment.
      peakWithMoves = Math.max(peakWithMoves, bytesLive() + newSize);
      block.view = allocator.resize(old, newSize);
      const kept = Math.min(block.size, newSize);
      for (const i of [0, kept - 1]) {
        if (kept > 0) assert.equal(block.view[i], block.byte, `seed ${seed} step ${step}: resize kept contents`);
      }
      if (newSize !== block.size) {
        if (block.size > 0) frees++;
        if (newSize > 0) allocs++;
        if (block.size > 0) assert.equal(old.length, 0, `seed ${seed} step ${step}: old view detached`);
      }
      block.size = newSize;
      block.view.fill(block.byte);
    }
    peak = Math.max(peak, bytesLive());
    peakWithMoves = Math.max(peakWithMoves, peak);

    const stats = allocator.stats();
    const nonEmpty = live.filter((b) => b.size > 0).length;
    assert.equal(stats.liveAllocations, nonEmpty, `seed ${seed} step ${step}: live`);
    assert.equal(stats.allocatedBytes, bytesLive(), `seed ${seed} step ${step}: bytes`);
    assert.equal(stats.totalAllocations, allocs, `seed ${seed} step ${step}: allocations`);
    assert.equal(stats.totalFrees, frees, `seed ${seed} step ${step}: frees`);
    assert.ok(stats.peakBytes >= peak && stats.peakBytes <= peakWithMoves, `seed ${seed} step ${step}: peak`);
    assert.ok(stats.capacityBytes >= stats.allocatedBytes, `seed ${seed} step ${step}: capacity`);
    assert.equal(stats.overheadBytes, stats.capacityBytes - stats.allocatedBytes);

    if (step % 500 === 0) {
      // Blocks never overlap.
      const ranges = live.filter((b) => b.size > 0).map((b) => [addressOf(b.view), b.size]).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) {
        assert.ok(ranges[i - 1][0] + ranges[i - 1][1] <= ranges[i][0], `seed ${seed} step ${step}: overlap`);
      }
      for (const block of live) assert.equal(block.view.indexOf(block.byte ^ 1), -1, `seed ${seed} step ${step}`);
    }
  }
  for (const block of live) allocator.free(block.view);
  const end = allocator.stats();
  assert.equal(end.liveAllocations, 0);
  assert.equal(end.allocatedBytes, 0);
  assert.equal(end.capacityBytes, 0);
});

test("SystemAllocator maps blocks from mmapThreshold up: page-aligned, zero-filled", () => {
  const allocator = new SystemAllocator({ mmapThreshold: 1 << 16 });
  for (let round = 0; round < 3; round++) {
    const block = allocator.alloc((1 << 16) + 1);
    assert.equal(addressOf(block) % nativeInfo().pageSize, 0);
    assert.equal(block.indexOf(1), -1);
    block.fill(1);
    const stats = allocator.stats();
    // The mapping is rounded up to whole pages: that rounding is overhead.
    assert.equal(stats.capacityBytes, (1 << 16) + nativeInfo().pageSize);
    assert.equal(stats.overheadBytes, nativeInfo().pageSize - 1);
    allocator.free(block);
  }
});

test("SystemAllocator.alloc(0) returns an empty view that free() accepts", () => {
  const allocator = new SystemAllocator();
  const empty = allocator.alloc(0);
  assert.equal(empty.length, 0);
  allocator.free(empty);
  assert.equal(allocator.stats().totalAllocations, 0);
  const grown = allocator.resize(allocator.alloc(0), 10);
  assert.equal(grown.length, 10);
  allocator.free(grown);
});

test("SystemAllocator.tryAlloc() returns null when the system refuses", () => {
  const allocator = new SystemAllocator();
  // 2^47 bytes passes validation but is the whole user address space: no
  // system can map it, whatever its overcommit policy. (Bun views at most
  // 4 GiB at once: there it is refused before the system is asked.)
  assert.equal(allocator.tryAlloc(2 ** 47), null);
  assert.equal(allocator.stats().failedAllocations, 1);
  const reason = native.maxViewBytes < 2 ** 47 ? /bytes per ArrayBuffer/ : /ENOMEM/;
  assert.throws(
    () => allocator.alloc(2 ** 47),
    (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory" && reason.test(e.message),
  );
  assert.equal(allocator.stats().failedAllocations, 2);
  const small = allocator.alloc(64);
  allocator.free(small);
});

test("SystemAllocator.owns() knows its own live blocks only", () => {
  const a = new SystemAllocator();
  const b = new SystemAllocator();
  const block = a.alloc(64);
  assert.equal(a.owns(block), true);
  assert.equal(a.owns(block.subarray(8)), true);
  assert.equal(b.owns(block), false);
  assert.equal(a.owns(new Uint8Array(64)), false);
  a.free(block);
  assert.equal(a.owns(block), false);
});

test("SystemAllocator.free() accepts any view starting at the block's first byte", () => {
  const allocator = new SystemAllocator();
  const block = allocator.alloc(64);
  const asFloats = new Float32Array(block.buffer, 0, 4);
  allocator.free(asFloats);
  assert.equal(block.length, 0);
  const other = allocator.alloc(64);
  allocator.free(new DataView(other.buffer));
  assert.equal(allocator.stats().liveAllocations, 0);
});

test("a block larger than one ArrayBuffer can hold goes straight back (Bun: 4 GiB), and VmSize returns to its baseline", () => {
  const vmSize = () => Number(/VmSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
  const allocator = new SystemAllocator();
  const size = 2 ** 32 + 4096;
  const before = vmSize();
  for (let i = 0; i < 3; i++) {
    if (native.maxViewBytes >= size) {
      // Deno: one ArrayBuffer holds it; the pages are only reserved, never touched.
      const block = allocator.tryAlloc(size);
      assert.ok(block !== null);
      assert.equal(block.length, size);
      allocator.free(block);
    } else {
      assert.equal(allocator.tryAlloc(size), null);
      assert.throws(
        () => allocator.alloc(size),
        (error) =>
          error instanceof AllocationError && error.category === "out-of-memory" &&
          /4294967296 bytes per ArrayBuffer \(nativeInfo\(\)\.maxViewBytes\); .*mapPages\(size\)/.test(error.message),
      );
    }
  }
  assert.ok(vmSize() - before < 64 << 20, `VmSize grew by ${vmSize() - before} bytes`);
  assert.equal(allocator.stats().liveAllocations, 0);
  allocator.dispose();
});

test("a resize past what one ArrayBuffer can hold changes nothing (Bun: 4 GiB); below it, contents carry over", () => {
  // Before, in Bun: realloc moved the block, the old record was let go, the view of the new memory failed, and
  // the block was gone though resize threw "out-of-memory (the old block stays valid)".
  const allocator = new SystemAllocator();
  const size = 2 ** 32 + 16;
  for (const start of [1000, 300_000, 64 << 20]) { // malloc'ed (realloc path), malloc'ed larger, mmap'ed
    const block = allocator.alloc(start).fill(0x42);
    const before = allocator.stats();
    if (native.maxViewBytes >= size) {
      const grown = allocator.resize(block, size); // Deno: reserved, never touched past the old bytes
      assert.equal(grown.length, size);
      assert.equal(grown[start - 1], 0x42);
      allocator.free(grown);
      continue;
    }
    assert.throws(
      () => allocator.resize(block, size),
      (error) =>
        error instanceof AllocationError && error.category === "out-of-memory" &&
        /4294967296 bytes per ArrayBuffer/.test(error.message),
    );
    assert.equal(block.length, start);
    assert.ok(block.every((byte) => byte === 0x42));
    assert.ok(allocator.owns(block));
    const after = allocator.stats();
    assert.equal(after.liveAllocations, before.liveAllocations);
    assert.equal(after.totalFrees, before.totalFrees);
    assert.equal(after.failedAllocations, before.failedAllocations + 1);
    allocator.free(block);
  }
  assert.equal(allocator.stats().liveAllocations, 0);
  allocator.dispose();
});

test("zero: true keeps a block's contents across resize and zero-fills only the new bytes", () => {
  using allocator = new SystemAllocator({ zero: true });
  for (const [from, to] of [[100, 200], [100, 50], [300 << 10, 700 << 10], [64, 1 << 20]]) {
    let block = allocator.alloc(from).fill(5);
    block = allocator.resize(block, to);
    const kept = Math.min(from, to);
    assert.ok(block.subarray(0, kept).every((b) => b === 5), `${from} -> ${to}: the old bytes stay`);
    assert.ok(block.subarray(kept).every((b) => b === 0), `${from} -> ${to}: the new bytes are zero`);
    allocator.free(block);
  }
});

test("SystemAllocator: after a same-size resize the old view is released storage, and the block stays the new view's", () => {
  const allocator = new SystemAllocator();
  const old = allocator.alloc(64);
  const fresh = allocator.resize(old, 64); // same place, same size: only the old view is detached
  const address = addressOf(fresh);
  // As after a resize that moved the block: freeing the old view is a double free, resizing it a use after free.
  assert.throws(() => allocator.free(old), (e) => e instanceof AllocationError && e.category === "double-free");
  assert.throws(
    () => allocator.resize(old, 32),
    (e) => e instanceof AllocationError && e.category === "use-after-free",
  );
  assert.equal(allocator.owns(old), false);
  // Nothing above changed the live block: it is still the new view's, and its address is not handed out again.
  assert.equal(fresh.length, 64);
  assert.equal(allocator.owns(fresh), true);
  assert.equal(allocator.stats().liveAllocations, 1);
  const others = Array.from({ length: 64 }, () => allocator.alloc(64));
  assert.equal(others.some((view) => addressOf(view) === address), false);
  for (const view of others) allocator.free(view);
  allocator.free(fresh);
  assert.equal(allocator.stats().liveAllocations, 0);
  allocator.dispose();
});
