import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, type Allocator, Arena, FreeListAllocator, type Handle } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

interface Block {
  view?: Uint8Array;
  handle?: Handle;
  size: number;
  byte: number;
}

const bytesOf = (b: Block): Uint8Array => b.handle ? b.handle.bytes : b.view!;

test("FreeListAllocator matches a model over 20,000 seeded steps, defragment included", () => {
  const seed = 0x71f5;
  const next = xorshift32(seed);
  const heap = new FreeListAllocator({ capacity: 256 << 10, growth: "linear" });
  const live: Block[] = [];
  let allocations = 0, frees = 0, peak = 0, defrags = 0, moved = 0;
  const where = (step: number) => `seed ${seed} step ${step}`;
  const requested = () => live.reduce((s, b) => s + b.size, 0);
  const check = (b: Block, step: number) => {
    const view = bytesOf(b);
    assert.equal(view.length, b.size, `${where(step)}: length`);
    assert.equal(view[0], b.byte, `${where(step)}: first byte`);
    assert.equal(view[b.size - 1], b.byte, `${where(step)}: last byte`);
  };
  for (let step = 0; step < 20_000; step++) {
    const op = below(next, 100);
    if (op < 40 || live.length === 0) {
      const size = 1 + below(next, below(next, 20) === 0 ? 50_000 : 1024);
      const align = 1 << below(next, 13);
      const view = heap.alloc(size, align);
      assert.equal(addressOf(view) % align, 0, `${where(step)}: alignment ${align}`);
      const block = { view, size, byte: below(next, 256) };
      view.fill(block.byte);
      live.push(block);
      allocations++;
    } else if (op < 52) {
      const size = 1 + below(next, 2048);
      const handle = heap.handle(size);
      const block = { handle, size, byte: below(next, 256) };
      handle.bytes.fill(block.byte);
      if (below(next, 4) === 0) handle.pin();
      live.push(block);
      allocations++;
    } else if (op < 85) {
      const [block] = live.splice(below(next, live.length), 1);
      check(block, step);
      if (block.handle) {
        const view = block.handle.bytes;
        block.handle.free();
        assert.equal(view.length, 0, `${where(step)}: handle view detached`);
      } else heap.free(block.view!);
      frees++;
    } else if (op < 97) {
      const candidates = live.filter((b) => b.view);
      if (candidates.length === 0) continue;
      const block = candidates[below(next, candidates.length)];
      check(block, step);
      const newSize = 1 + below(next, 4096);
      const old = block.view!;
      const fresh = heap.resize(old, newSize);
      const kept = Math.min(block.size, newSize);
      assert.equal(fresh[kept - 1], block.byte, `${where(step)}: resize kept contents`);
      assert.equal(fresh[0], block.byte, `${where(step)}: resize kept contents`);
      if (addressOf(fresh) !== addressOf(old) || fresh.buffer !== old.buffer) {
        allocations++;
        frees++;
      }
      block.view = fresh;
      block.size = newSize;
      fresh.fill(block.byte);
    } else {
      const pinned = live.filter((b) => b.handle?.pinned).map((b) => [b, addressOf(b.handle!.bytes)] as const);
      const report = heap.defragment();
      defrags++;
      moved += report.movedBlocks;
      assert.ok(report.fragmentationAfter <= report.fragmentationBefore + 1e-12, `${where(step)}: defragment helps`);
      assert.ok(report.largestFreeBlockAfter >= report.largestFreeBlockBefore, `${where(step)}: largest free block`);
      for (const [b, address] of pinned) {
        assert.equal(addressOf(b.handle!.bytes), address, `${where(step)}: pinned stays`);
      }
      for (const b of live) check(b, step);
    }
    peak = Math.max(peak, requested());
    const stats = heap.stats();
    assert.equal(stats.liveAllocations, live.length, `${where(step)}: live`);
    assert.equal(stats.allocatedBytes, requested(), `${where(step)}: bytes`);
    assert.equal(stats.totalAllocations, allocations, `${where(step)}: allocations`);
    assert.equal(stats.totalFrees, frees, `${where(step)}: frees`);
    assert.ok(stats.peakBytes >= peak, `${where(step)}: peak`);
    assert.ok(stats.overheadBytes >= 0 && stats.availableBytes >= 0, `${where(step)}: accounting`);
    if (step % 250 === 0) {
      const ranges = live.map((b) => [addressOf(bytesOf(b)), b.size]).sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < ranges.length; i++) {
        assert.ok(ranges[i - 1][0] + ranges[i - 1][1] <= ranges[i][0], `${where(step)}: overlap`);
      }
      for (const b of live) check(b, step);
    }
  }
  assert.ok(defrags > 50 && moved > 0, `defragment ran ${defrags} times and moved ${moved} handles`);
  for (const b of live) b.handle ? b.handle.free() : heap.free(b.view!);
  const end = heap.stats();
  assert.equal(end.liveAllocations, 0);
  assert.equal(end.availableBytes, end.capacityBytes, "every byte is free again and coalesced");
  heap.dispose();
});

test("FreeListAllocator coalesces neighbours in any free order", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16, growth: "fixed" });
  const blocks = Array.from({ length: 8 }, () => heap.alloc(1000));
  for (const i of [1, 3, 5, 7, 0, 2, 6, 4]) heap.free(blocks[i]);
  const stats = heap.stats();
  assert.equal(stats.largestFreeBlock, 1 << 16);
  assert.equal(stats.fragmentation, 0);
  assert.equal(heap.alloc(1 << 16).length, 1 << 16, "the whole chunk is one block again");
});

test("FreeListAllocator.resize() grows in place into a free neighbour", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16 });
  const a = heap.alloc(100).fill(1);
  const b = heap.alloc(100);
  heap.free(b);
  const grown = heap.resize(a, 1000);
  assert.equal(addressOf(grown), addressOf(a), "in place");
  assert.equal(grown[99], 1);
  heap.free(grown);
});

test("FreeListAllocator.defragment() compacts unpinned handles and reports progress", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16, growth: "fixed" });
  const handles = Array.from({ length: 64 }, (_, i) => {
    const h = heap.handle(1000);
    h.bytes.fill(i);
    return h;
  });
  for (let i = 0; i < 64; i += 2) handles[i].free(); // every other one: 32 holes of ~1 KB
  const pinned = handles[5];
  pinned.pin();
  const pinnedAddress = addressOf(pinned.bytes);
  const staleView = handles[63].bytes;
  assert.equal(heap.tryAlloc(20_000), null, "no hole is large enough before compaction");
  const progress: number[] = [];
  const report = heap.defragment((movedBytes, totalBytes, fraction) => {
    assert.ok(movedBytes <= totalBytes);
    progress.push(fraction);
  });
  assert.ok(report.movedBlocks > 0);
  assert.equal(report.movedBytes, report.movedBlocks * 1000);
  assert.ok(report.fragmentationAfter < report.fragmentationBefore);
  assert.ok(report.largestFreeBlockAfter > report.largestFreeBlockBefore);
  assert.ok(progress.length === report.movedBlocks && progress.every((p, i) => i === 0 || p >= progress[i - 1]));
  assert.equal(addressOf(pinned.bytes), pinnedAddress, "pinned handle did not move");
  for (let i = 1; i < 64; i += 2) assert.equal(handles[i].bytes[999], i, `handle ${i} kept its bytes`);
  assert.equal(staleView.length, 0, "a moved handle's old view is detached");
  assert.ok(heap.tryAlloc(20_000) !== null, "now one block is large enough");
});

test("FreeListAllocator refuses allocation during defragment()", () => {
  using heap = new FreeListAllocator();
  const first = heap.handle(10);
  const second = heap.handle(10);
  first.free(); // a hole before `second`, so defragment moves it and calls back
  let caught: unknown = null;
  heap.defragment(() => {
    try {
      heap.alloc(8);
    } catch (error) {
      caught = error;
    }
  });
  assert.ok(caught instanceof AllocationError && caught.category === "unsupported", String(caught));
  second.free();
});

test("Handle misuse: double free, unpin without pin, bytes after free", () => {
  using heap = new FreeListAllocator();
  const h = heap.handle(16);
  assert.throws(() => h.unpin(), RangeError);
  assert.throws(
    () => heap.free(h.bytes),
    (e: unknown) => e instanceof AllocationError && e.category === "invalid-free",
  );
  h.free();
  assert.equal(h.freed, true);
  assert.throws(() => h.free(), (e: unknown) => e instanceof AllocationError && e.category === "double-free");
  assert.throws(() => h.bytes, (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
});

test("a Handle's view: another heap calls it mismatched-allocator; its own heap's advice fits free and resize", () => {
  using a = new FreeListAllocator({ capacity: 1 << 16 });
  using b = new FreeListAllocator({ capacity: 1 << 16 });
  const h = a.handle(100);
  const before = { a: a.stats(), b: b.stats() };
  // Into another heap: the same category as a plain block of `a` or a pool's block (it was "invalid-free").
  for (const op of ["free", "resize"] as const) {
    assert.throws(() => (op === "free" ? b.free(h.bytes) : b.resize(h.bytes, 200)), (e: unknown) => {
      assert.ok(e instanceof AllocationError, String(e));
      assert.equal(e.category, "mismatched-allocator", e.message);
      assert.match(
        e.message,
        new RegExp(`^Cannot ${op} .* in this FreeListAllocator: it belongs to a free-list allocator`),
      );
      assert.doesNotMatch(e.message, /handle\.free\(\)/);
      return true;
    });
  }
  // Into its own heap: free is pointed at handle.free(); resize is not (a Handle has no resize).
  assert.throws(() => a.free(h.bytes), (e: unknown) => {
    assert.ok(e instanceof AllocationError && e.category === "invalid-free", String(e));
    assert.match(e.message, /it is a Handle's view; free it with handle\.free\(\)/);
    return true;
  });
  assert.throws(() => a.resize(h.bytes, 200), (e: unknown) => {
    assert.ok(e instanceof AllocationError && e.category === "invalid-free", String(e));
    assert.doesNotMatch(e.message, /use handle\.free\(\)/);
    assert.match(e.message, /a Handle cannot be resized/);
    return true;
  });
  // Nothing changed: the handle and both heaps are as they were.
  assert.deepEqual({ a: a.stats(), b: b.stats() }, before);
  assert.equal(h.bytes.length, 100);
  h.free();
});

test("FreeListAllocator grows by chunks and respects maxCapacity", () => {
  using heap = new FreeListAllocator({ capacity: 64 << 10, growth: "exponential", maxCapacity: 256 << 10 });
  heap.alloc(60 << 10);
  heap.alloc(100 << 10); // a second, larger chunk
  assert.ok(heap.stats().capacityBytes > 64 << 10);
  assert.throws(
    () => heap.alloc(200 << 10),
    (e: unknown) => e instanceof AllocationError && e.category === "limit-exceeded",
  );
  using fixed = new FreeListAllocator({ capacity: 4096, growth: "fixed" });
  assert.equal(fixed.tryAlloc(8192), null);
});

/** An Arena over the bytes of `handle`, passed on by an Allocator written in JavaScript (once). */
function arenaOverHandle(handle: Handle, heap: Allocator, safety = true): Arena {
  let given = false;
  const tryAlloc = (size: number) => {
    if (given || size > handle.size) return null;
    given = true;
    return handle.bytes;
  };
  const backing = {
    kind: "system",
    alloc(size: number) {
      const view = tryAlloc(size);
      if (view === null) throw new RangeError("no");
      return view;
    },
    tryAlloc,
    array: () => {
      throw new Error("unused");
    },
    free: () => {},
    resize: () => {
      throw new Error("unused");
    },
    owns: () => false,
    stats: () => heap.stats(),
  } as unknown as Allocator;
  return new Arena({ capacity: 65536, growth: "fixed", backing, safety });
}

// A chain over a Handle's bytes (an Allocator written in JavaScript passing them on) is ended when defragment()
// moves the handle, as when the handle is freed: its views read as length 0 and it refuses use naming
// defragment(). Before, the arena's views went on reading the handle's old place, which the heap had handed to
// other blocks ("after defragment: arena view length 1000 v[0] = 153", another block's bytes), and it went on
// allocating there.
test("FreeListAllocator.defragment() ends a chain over a Handle it moves, as the handle's free does", () => {
  const heap = new FreeListAllocator({ capacity: 1 << 20, growth: "fixed" });
  const holes = Array.from({ length: 8 }, () => heap.handle(16384));
  const handle = heap.handle(65536);
  const arena = arenaOverHandle(handle, heap);
  const view = arena.alloc(1000).fill(0x11);
  for (const hole of holes) hole.free();
  const report = heap.defragment();
  assert.equal(report.movedBlocks, 1);
  assert.equal(view.length, 0, "the arena's view still reads the handle's old place");
  assert.throws(() => arena.alloc(10), (e: unknown) => {
    assert.ok(e instanceof AllocationError && e.category === "use-after-free", String(e));
    assert.match(e.message, /FreeListAllocator\.defragment\(\) moved it/);
    return true;
  });
  // The handle lives on, moved, with its bytes; the old place serves other blocks.
  assert.equal(handle.bytes[0], 0x11);
  for (let i = 0; i < 12; i++) heap.tryAlloc(65536)?.fill(0x99);
  assert.equal(handle.bytes[0], 0x11);
  heap.dispose();
});

// A holder of a handle's bytes whose buffer was transferred away: the memory it reaches is kept, so defragment()
// leaves that handle where it is (as a handle whose own view was transferred).
test("FreeListAllocator.defragment() keeps a Handle whose chain's buffer was transferred away where it is", () => {
  const heap = new FreeListAllocator({ capacity: 1 << 20, growth: "fixed" });
  const holes = Array.from({ length: 4 }, () => heap.handle(16384));
  const handle = heap.handle(65536);
  const arena = arenaOverHandle(handle, heap, false);
  const view = arena.alloc(16);
  const at = addressOf(handle.bytes);
  structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
  for (const hole of holes) hole.free();
  heap.defragment();
  assert.equal(addressOf(handle.bytes), at, "the handle moved off memory a transferred buffer reaches");
  const lo = at, hi = at + 65536;
  for (let i = 0; i < 16; i++) {
    const other = heap.tryAlloc(16384);
    if (other === null) break;
    assert.ok(addressOf(other) + 16384 <= lo || addressOf(other) >= hi, "the heap handed out that memory");
  }
  heap.dispose();
});
