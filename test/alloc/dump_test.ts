// dump() on every allocator (issue 18 part 3): the versioned format, chunks
// covered exactly by their blocks, used blocks where the live views are (by
// address), counts and bytes agreeing with stats(), and use-after-free once
// the allocator is disposed. An arena's runs (it does not record its
// allocations) and a DebugAllocator's guard bytes and held-back frees are
// checked as the format documents them.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  type Allocator,
  type AllocatorDump,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  type DebugAllocatorOptions,
  type DumpBlock,
  FreeListAllocator,
  LockedPageAllocator,
  nativeInfo,
  PoolAllocator,
  SecretAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

type Dumpable = Allocator & { dump(): AllocatorDump; dispose(): void };

function checkShape(dump: AllocatorDump, kind: string): void {
  assert.equal(dump.format, "memkit.allocator-dump");
  assert.equal(dump.version, 1);
  assert.equal(dump.kind, kind);
  assert.deepEqual(JSON.parse(JSON.stringify(dump)), dump, "plain JSON data");
  for (const chunk of dump.chunks) {
    let at = 0;
    for (const block of chunk.blocks) {
      assert.equal(block.offset, at, "blocks are sorted, contiguous, never overlapping");
      assert.ok(block.size > 0);
      if (block.free) assert.equal(block.requested, 0);
      else assert.ok(block.requested <= block.size);
      at += block.size;
    }
    assert.equal(at, chunk.size, "the blocks cover the chunk");
  }
}

/** The used block each view starts, found by address. */
function usedBlockAt(dump: AllocatorDump, view: Uint8Array) {
  const address = addressOf(view);
  for (const chunk of dump.chunks) {
    for (const block of chunk.blocks) {
      if (chunk.address + block.offset === address) return block;
    }
  }
  return undefined;
}

// [what the test is called, the dump's kind, the allocator]
const makers: [string, string, () => Dumpable][] = [
  ["system", "system", () => new SystemAllocator()],
  ["pool", "pool", () => new PoolAllocator({ blockSize: 256, blocksPerChunk: 16 })],
  ["stack", "stack", () => new StackAllocator({ capacity: 1 << 16 })],
  ["buddy", "buddy", () => new BuddyAllocator({ capacity: 1 << 16, minBlockSize: 64 })],
  ["free-list", "free-list", () => new FreeListAllocator({ capacity: 1 << 16 })],
  ["LockedPageAllocator", "system", () => new LockedPageAllocator()],
  ["SecretAllocator", "system", () => new SecretAllocator()],
];

for (const [name, kind, make] of makers) {
  test(`${name}: dump() shows every live block where it is, and agrees with stats()`, () => {
    const allocator = make();
    const next = xorshift32(18);
    const live: Uint8Array[] = [];
    for (let step = 0; step < 60; step++) {
      const size = kind === "pool" ? 1 + below(next, 256) : 1 + below(next, 900);
      // Stacks free in LIFO order only; the others free a random block.
      if (live.length > 0 && below(next, 3) === 0) {
        const i = kind === "stack" ? live.length - 1 : below(next, live.length);
        allocator.free(live[i]);
        live.splice(i, 1);
      } else {
        live.push(allocator.alloc(size));
      }
    }
    const dump = allocator.dump();
    checkShape(dump, kind);
    const stats = allocator.stats();
    assert.deepEqual(dump.stats, stats);
    const used = dump.chunks.flatMap((c) => c.blocks.filter((b) => !b.free));
    assert.equal(used.length, stats.liveAllocations);
    assert.equal(used.reduce((sum, b) => sum + b.requested, 0), stats.allocatedBytes);
    for (const view of live) {
      const block = usedBlockAt(dump, view);
      assert.ok(block !== undefined && !block.free, "a used block starts at each live view");
      assert.equal(block.requested, view.length);
    }
    if (kind === "buddy") {
      for (const block of dump.chunks[0].blocks) assert.equal(block.size & (block.size - 1), 0, "power of two");
    }
    for (const view of live.reverse()) allocator.free(view); // top first, for the stack
    const empty = allocator.dump();
    assert.ok(empty.chunks.every((c) => c.blocks.every((b) => b.free)), "everything free after freeing all");
    allocator.dispose();
    assert.throws(() => allocator.dump(), (e) => e instanceof AllocationError && e.category === "use-after-free");
  });
}

test("pool: free and used slots in order, one per block", () => {
  using pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 4 });
  const a = pool.alloc(64), b = pool.alloc(10), c = pool.alloc(64);
  pool.free(b);
  const blocks = pool.dump().chunks[0].blocks;
  assert.deepEqual(blocks.slice(0, 4).map((x) => [x.free, x.requested]), [[false, 64], [true, 0], [false, 64], [
    true,
    0,
  ]]);
  pool.free(a);
  pool.free(c);
});

test("free-list: handle blocks are tagged with their owner", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16 });
  const handle = heap.handle(1000);
  const block = heap.alloc(500);
  const used = heap.dump().chunks.flatMap((c) => c.blocks.filter((b) => !b.free));
  assert.deepEqual(used.map((b) => [b.owner, b.requested]).sort(), [["handle", 1000], [null, 500]].sort());
  handle.free();
  heap.free(block);
});

test("arena: each chunk shows its bump run; a reset frees it", () => {
  using arena = new Arena({ capacity: 4096, growth: "linear" });
  arena.alloc(1000);
  arena.alloc(3500); // does not fit the first chunk: a second one
  const dump = arena.dump();
  checkShape(dump, "arena");
  assert.ok(dump.chunks.length >= 2);
  const runs = dump.chunks.flatMap((c) => c.blocks.filter((b) => !b.free));
  assert.ok(runs.every((b) => b.owner === "bump"));
  assert.ok(runs.reduce((s, b) => s + b.size, 0) >= 4500);
  arena.reset("retain-capacity");
  assert.ok(arena.dump().chunks.every((c) => c.blocks.every((b) => b.free)));
  arena.dispose();
  assert.throws(() => arena.dump(), (e) => e instanceof AllocationError && e.category === "use-after-free");
});

test("arena: an allocation with a chunk of its own is one block; the runs cover every allocation", () => {
  using arena = new Arena({ capacity: 4096, growth: "linear" });
  const small = [arena.alloc(100), arena.alloc(200, 64), arena.alloc(300)];
  const page = nativeInfo().pageSize;
  const bigSize = 5 * page - 100;
  const big = arena.alloc(bigSize); // larger than the next chunk (one page) would be: a chunk of its own
  const dump = arena.dump();
  checkShape(dump, "arena");
  const [first] = dump.chunks;
  const run = first.blocks[0];
  assert.deepEqual([run.offset, run.free, run.owner], [0, false, "bump"]);
  // The three allocations and their padding are one run, from the chunk's start to the allocation point.
  const end = addressOf(small[2]) + small[2].length - first.address;
  assert.equal(run.size, end);
  assert.equal(run.requested, end, "a run's requested is its size: the arena does not keep its allocations' sizes");
  for (const view of small) {
    const offset = addressOf(view) - first.address;
    assert.ok(offset >= run.offset && offset + view.length <= run.offset + run.size);
  }
  const own = dump.chunks.find((c) => c.address === addressOf(big))!;
  assert.equal(own.blocks[0].owner, null, "one allocation, known exactly");
  assert.equal(own.blocks[0].requested, bigSize, "its size is known while it is the most recent block");
  assert.equal(own.size, 5 * page, "whole pages");
  assert.equal(own.blocks[0].size, 5 * page);
  arena.alloc(8); // no longer the most recent: its size is the chunk's
  const later = arena.dump().chunks.find((c) => c.address === addressOf(big))!;
  assert.equal(later.blocks[0].requested, later.blocks[0].size);
  assert.equal(arena.dump().chunks.flatMap((c) => c.blocks).filter((b) => !b.free).length, 2);
});

test("arena: through a DebugAllocator over it, every allocation is a block of its own", () => {
  using arena = new Arena({ capacity: 1 << 16 });
  const debug = new DebugAllocator(arena, { safety: false });
  const views = [debug.alloc(100), debug.alloc(200), debug.alloc(300)];
  const dump = debug.dump();
  checkShape(dump, "debug");
  assert.deepEqual(dump.chunks.map((c) => [c.address, c.size]), views.map((v) => [addressOf(v), v.length]));
  debug.free(views[1]);
  assert.deepEqual(debug.dump().chunks.map((c) => c.address), [addressOf(views[0]), addressOf(views[2])]);
  assert.equal(debug.deinit(), "leak");
});

/** Used blocks that are allocations (a DebugAllocator's guard bytes are not). */
const allocations = (dump: AllocatorDump): DumpBlock[] =>
  dump.chunks.flatMap((c) => c.blocks.filter((b) => !b.free && b.owner !== "canary"));

const debugModes: [string, DebugAllocatorOptions][] = [
  ["default", {}],
  ["traced", { stackTraceFrames: 4 }],
  ["quarantine", { retainMetadata: true, poison: true }],
  ["detachFreed", { detachFreed: true }],
  ["counters only", { safety: false }],
];

for (const [mode, options] of debugModes) {
  test(`debug (${mode}): dump() after allocs and frees shows each live block, in allocation order`, () => {
    using pool = new FreeListAllocator({ capacity: 1 << 18 });
    const debug = new DebugAllocator(pool, options);
    const next = xorshift32(1818);
    const live: Uint8Array[] = [];
    const freed: { address: number; size: number }[] = [];
    for (let step = 0; step < 80; step++) {
      if (live.length > 0 && below(next, 3) === 0) {
        const i = below(next, live.length);
        freed.push({ address: addressOf(live[i]), size: live[i].length });
        debug.free(live[i]);
        live.splice(i, 1);
      } else {
        live.push(debug.alloc(1 + below(next, 900), below(next, 4) === 0 ? 64 : 16));
      }
    }
    const dump = debug.dump();
    checkShape(dump, "debug");
    const stats = debug.stats();
    assert.deepEqual(dump.stats, stats);
    const used = allocations(dump);
    assert.equal(used.length, stats.liveAllocations);
    assert.equal(used.reduce((sum, b) => sum + b.requested, 0), stats.allocatedBytes);
    // Live chunks in allocation order: the order `live` keeps.
    const userAddresses = dump.chunks.flatMap((c) =>
      c.blocks.filter((b) => !b.free && b.owner !== "canary").map((b) => c.address + b.offset)
    );
    assert.deepEqual(userAddresses, live.map((v) => addressOf(v)));
    for (const view of live) {
      const block = usedBlockAt(dump, view)!;
      assert.ok(block !== undefined && !block.free);
      assert.equal(block.requested, view.length);
      assert.equal(block.size, view.length);
      const chunk = dump.chunks.find((c) => c.blocks.includes(block))!;
      if (options.safety === false) {
        assert.deepEqual(chunk.blocks, [block], "counters only: the backing's block, no guard bytes");
      } else {
        // Header and front canary before, back canary after: 16 bytes, or the alignment before.
        const guards = chunk.blocks.filter((b) => b !== block);
        assert.deepEqual(guards.map((b) => [b.free, b.owner, b.requested]), [[false, "canary", 0], [
          false,
          "canary",
          0,
        ]]);
        assert.equal(guards[0].size, block.offset);
        assert.ok(block.offset === 16 || block.offset === 64);
        assert.deepEqual([guards[1].offset, guards[1].size], [block.offset + block.size, 16]);
      }
      if (mode === "traced") assert.match(block.owner!, /dump_test\.ts:\d+:\d+\)?$/, "where it was allocated");
      else assert.equal(block.owner, null);
    }
    const held = dump.chunks.filter((c) => c.blocks.some((b) => b.owner === "quarantine"));
    if (mode === "quarantine") {
      // Every freed block is held back (64 MiB budget): a free chunk where its outer block was.
      assert.equal(held.length, freed.length);
      for (const { address, size } of freed) {
        const chunk = held.find((c) => c.address === address - 16 || c.address === address - 64)!;
        assert.ok(chunk !== undefined, `the freed block at 0x${address.toString(16)} is held`);
        assert.deepEqual(chunk.blocks.map((b) => b.free), [true]);
        assert.equal(chunk.size, address - chunk.address + size + 16);
      }
    } else {
      assert.equal(held.length, 0);
    }
    for (const view of live) debug.free(view);
    const empty = debug.dump();
    assert.equal(allocations(empty).length, 0);
    assert.equal(empty.chunks.length, mode === "quarantine" ? live.length + freed.length : 0);
    debug.dispose();
    assert.throws(() => debug.dump(), (e) => e instanceof AllocationError && e.category === "use-after-free");
  });
}

test("debug: dump() throws use-after-free after deinit() and once its backing is gone", () => {
  const debug = new DebugAllocator();
  debug.alloc(10);
  assert.equal(debug.deinit(), "leak");
  assert.throws(
    () => debug.dump(),
    (e) => e instanceof AllocationError && e.category === "use-after-free" && /deinitialized/.test(e.message),
  );
  const arena = new Arena({ capacity: 1 << 16 });
  const child = new DebugAllocator(arena);
  child.alloc(64);
  assert.equal(child.dump().chunks.length, 1);
  arena.dispose(); // the backing takes its memory back: the debug allocator ends with it
  assert.throws(() => child.dump(), (e) => e instanceof AllocationError && e.category === "use-after-free");
});

test("debug: an arena scope's end retires its blocks from the dump", () => {
  using arena = new Arena({ capacity: 1 << 16 });
  const debug = new DebugAllocator(arena);
  const kept = debug.alloc(32);
  {
    using _scope = arena.scope();
    debug.alloc(48);
    assert.equal(allocations(debug.dump()).length, 2);
  }
  const dump = debug.dump();
  assert.deepEqual(allocations(dump).map((b) => b.requested), [32]);
  assert.equal(usedBlockAt(dump, kept)?.requested, 32);
  debug.free(kept);
  debug.deinit();
});
