// MemoryInterface's methods: the two forms of allocate, requests and
// fallback (which type and allocator served), deallocate by allocation, view
// or address, pointer validation for its own, foreign and freed memory,
// allocator access, defragmentation, gcHint and dispose.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  MemoryAlignment,
  MemoryInterface,
  nativeInfo,
  PoolAllocator,
  SystemAllocator,
} from "../../mod.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
const fresh = (budgets = {}) => new MemoryInterface({ budgets, pressure: false });

test("allocate(size, alignment): system memory at the alignment; every field of the allocation", () => {
  using memory = fresh();
  for (const alignment of Object.values(MemoryAlignment)) {
    const block = memory.allocate(1000, alignment);
    assert.equal(block.address % alignment, 0, `alignment ${alignment}`);
    assert.equal(block.alignment, Math.max(16, alignment));
    assert.deepEqual(
      [block.size, block.bytes.length, block.type, block.allocator, block.flags, block.name],
      [1000, 1000, "system", "system", [], undefined],
    );
    memory.deallocate(block);
  }
  const block = memory.allocate(10);
  assert.equal(
    JSON.stringify(block),
    JSON.stringify({ address: block.address, size: 10, alignment: 16, type: "system", allocator: "system", flags: [] }),
  );
  assert.throws(() => ((block as { size: number }).size = 5), TypeError, "fields cannot be changed");
  assert.ok(Object.isFrozen(block.flags));
  memory.deallocate(block);
});

test("allocate(request): the preferred allocator serves the system type; fallback records who served", () => {
  using memory = fresh({ pool: 128 });
  const pooled = memory.allocate({ size: 200, preferredAllocator: "pool" });
  assert.deepEqual([pooled.type, pooled.allocator, pooled.alignment], ["system", "pool", 256]);
  const linear = memory.allocate({ size: 256 << 10, preferredAllocator: "arena" });
  assert.deepEqual([linear.type, linear.allocator], ["system", "arena"]);
  const buddy = memory.allocate({ size: 3000, preferredAllocator: "buddy" });
  assert.deepEqual([buddy.allocator, buddy.address % 4096], ["buddy", 0], "a buddy block is aligned to its size");
  const heap = memory.allocate({ size: 3000, preferredAllocator: "free-list" });
  assert.equal(heap.allocator, "free-list");
  // A pool class cannot hold 8 KiB: without fallback that is a RangeError, with it the system allocator serves.
  assert.throws(() => memory.allocate({ size: 8192, preferredAllocator: "pool" }), RangeError);
  const fell = memory.allocate({ size: 8192, preferredAllocator: "pool", allowFallback: true });
  assert.deepEqual([fell.type, fell.allocator], ["system", "system"]);
  // The pool type's budget is full: its own allocator is not tried again, the system type serves.
  const first = memory.allocateTyped(128, "pool");
  assert.throws(() => memory.allocateTyped(64, "pool"), isCategory("limit-exceeded"));
  const over = memory.allocate({ size: 64, type: "pool", allowFallback: true });
  assert.deepEqual([over.type, over.allocator], ["system", "system"]);
  assert.equal(memory.getMemoryStats("pool").usedBytes, 128);
  assert.equal(memory.getMemoryStats("system").usedBytes, 200 + (256 << 10) + 3000 + 3000 + 8192 + 64);
  for (const a of [pooled, linear, buddy, heap, fell, first, over]) memory.deallocate(a);
  // Locked and shared memory has no stand-in.
  assert.throws(
    () => memory.allocate({ size: 100, type: "audio", preferredAllocator: "pool", allowFallback: true }),
    TypeError,
  );
});

test("deallocate: the allocation, its bytes, or its address; errors for twice, foreign, interior, another interface's", () => {
  using memory = fresh();
  using other = fresh();
  const byView = memory.allocateTyped(100, "pool");
  const byAddress = memory.allocate(100);
  const byRecord = memory.allocateTyped(100, "video");
  memory.deallocate(byView.bytes);
  memory.deallocate(byAddress.address);
  memory.deallocate(byRecord);
  assert.equal(memory.getMemoryStats().allocationCount, 0);
  assert.throws(() => memory.deallocate(byRecord), isCategory("double-free"));
  assert.throws(() => memory.deallocate(byView.bytes), isCategory("double-free"));
  assert.throws(() => memory.deallocate(byAddress.address), isCategory("double-free"));
  assert.throws(() => memory.deallocate(byAddress.bytes), isCategory("double-free"), "a detached view");
  const live = memory.allocateTyped(100, "pool");
  assert.throws(() => memory.deallocate(live.bytes.subarray(10)), isCategory("invalid-free"));
  assert.throws(() => memory.deallocate(live.address + 10), isCategory("invalid-free"));
  assert.throws(() => other.deallocate(live), isCategory("mismatched-allocator"));
  assert.throws(() => memory.deallocate(new Uint8Array(100)), isCategory("invalid-free"));
  const system = new SystemAllocator();
  const foreign = system.alloc(64);
  assert.throws(() => memory.deallocate(foreign), isCategory("invalid-free"));
  system.free(foreign);
  assert.equal(memory.getMemoryStats("pool").allocationCount, 1, "failed deallocations changed nothing");
  memory.deallocate(live);
});

test("isValidPointer / getAllocationInfo: own live memory (start, inside, view); false / null for freed or foreign", () => {
  using memory = fresh();
  const blocks = [memory.allocateTyped(100, "pool"), memory.allocate(5000), memory.allocateTyped(64, "temporary")];
  for (const block of blocks) {
    assert.equal(memory.isValidPointer(block.address), true);
    assert.equal(memory.isValidPointer(block.address + block.size - 1), true, "its last byte");
    assert.equal(memory.isValidPointer(block.bytes), true);
    assert.equal(memory.getAllocationInfo(block.bytes.subarray(7)), block, "a view inside it");
    assert.equal(memory.getAllocationInfo(block.address), block);
  }
  const pool = new PoolAllocator({ blockSize: 64 });
  const foreign = pool.alloc(64);
  assert.equal(memory.isValidPointer(foreign), false);
  assert.equal(memory.getAllocationInfo(new Uint8Array(8)), null);
  assert.equal(memory.isValidPointer(0), false);
  assert.equal(memory.isValidPointer(-5), false);
  assert.equal(memory.isValidPointer(NaN), false);
  pool.dispose();
  memory.deallocate(blocks[0]);
  memory.deallocate(blocks[1]);
  memory.endFrame();
  for (const block of blocks) {
    assert.equal(memory.isValidPointer(block.address), false, `${block.type} after it went`);
    assert.equal(memory.getAllocationInfo(block.address), null);
  }
  assert.equal(memory.isValidPointer(blocks[0].bytes), false, "a pool view stays readable but is not valid");
});

test("lookups stay right over many allocations and reused addresses", () => {
  using memory = fresh();
  const live = new Set<ReturnType<MemoryInterface["allocateTyped"]>>();
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3000; i++) live.add(memory.allocateTyped(48, "pool"));
    let n = 0;
    for (const a of live) {
      if (n++ % 3 !== 0) continue;
      memory.deallocate(a);
      live.delete(a);
    }
    for (const a of live) assert.equal(memory.getAllocationInfo(a.address), a);
  }
  assert.equal(memory.getMemoryStats("pool").allocationCount, live.size);
  for (const a of live) memory.deallocate(a.address);
  assert.equal(memory.getMemoryStats().allocationCount, 0);
});

test("getAllocator / availableAllocators: the interface's own allocators, made on first use", () => {
  using memory = fresh();
  assert.deepEqual(memory.availableAllocators(), ["system", "arena", "stack", "pool", "buddy", "free-list"]);
  for (const kind of memory.availableAllocators()) {
    const allocator = memory.getAllocator(kind);
    assert.equal(allocator.kind, kind);
    assert.equal(memory.getAllocator(kind), allocator, "the same one each time");
    allocator.free(allocator.alloc(64));
  }
  const pooled = memory.allocateTyped(64, "pool");
  assert.ok(memory.getAllocator("pool").owns(pooled.bytes));
  memory.deallocate(pooled);
  assert.throws(() => memory.getAllocator("debug"), isCategory("unsupported"));
});

test("defragment: the free-list heap's handles slide down, with progress; other kinds cannot move blocks", () => {
  using memory = fresh();
  assert.equal(memory.defragment().movedBlocks, 0, "no heap yet: nothing to move");
  const heap = memory.getAllocator("free-list") as import("../../mod.ts").FreeListAllocator;
  const handles = Array.from({ length: 20 }, () => heap.handle(4000));
  for (let i = 0; i < 20; i += 2) handles[i].free();
  const progress: number[] = [];
  const report = memory.defragment((_moved, _total, fraction) => progress.push(fraction));
  assert.equal(report.movedBlocks, 10);
  assert.ok(report.largestFreeBlockAfter > report.largestFreeBlockBefore);
  assert.equal(progress.at(-1), 1);
  assert.equal(memory.defragmentAllocator("free-list").movedBlocks, 0, "already compact");
  for (const kind of ["pool", "buddy", "arena", "stack", "system"] as const) {
    assert.throws(() => memory.defragmentAllocator(kind), isCategory("unsupported"));
  }
  for (let i = 1; i < 20; i += 2) handles[i].free();
});

test("gcHint asks for a collection where the runtime allows it", () => {
  using memory = fresh();
  const ran = memory.gcHint();
  assert.equal(typeof ran, "boolean");
  if (nativeInfo().runtime === "bun" || typeof (globalThis as { gc?: unknown }).gc === "function") {
    assert.equal(ran, true);
  }
});

test("dispose: every view reads as length 0, later calls throw use-after-free, lookups say no", () => {
  const memory = fresh();
  const blocks = (["system", "pool", "temporary", "stack", "network", "video"] as const).map((t) =>
    memory.allocateTyped(100, t)
  );
  const shared = memory.allocateTyped(100, "shared");
  memory.dispose();
  for (const block of [...blocks, shared]) assert.equal(block.bytes.length, 0, block.type);
  assert.throws(() => memory.allocate(1), isCategory("use-after-free"));
  assert.throws(() => memory.allocateTyped(64, "pool"), isCategory("use-after-free"));
  assert.throws(() => memory.deallocate(blocks[0]), isCategory("use-after-free"));
  assert.throws(() => memory.getMemoryStats(), isCategory("use-after-free"));
  assert.throws(() => memory.endFrame(), isCategory("use-after-free"));
  assert.equal(memory.isValidPointer(blocks[1].address), false);
  assert.equal(memory.getAllocationInfo(blocks[1].bytes), null);
  memory.dispose(); // twice: nothing
});
