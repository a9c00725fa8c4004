// dump() on every allocator (issue 18 part 3): the versioned format, chunks
// covered exactly by their blocks, used blocks where the live views are (by
// address), counts and bytes agreeing with stats(), and use-after-free once
// the allocator is disposed.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  type Allocator,
  type AllocatorDump,
  Arena,
  BuddyAllocator,
  FreeListAllocator,
  PoolAllocator,
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

const makers: [string, () => Dumpable][] = [
  ["system", () => new SystemAllocator()],
  ["pool", () => new PoolAllocator({ blockSize: 256, blocksPerChunk: 16 })],
  ["stack", () => new StackAllocator({ capacity: 1 << 16 })],
  ["buddy", () => new BuddyAllocator({ capacity: 1 << 16, minBlockSize: 64 })],
  ["free-list", () => new FreeListAllocator({ capacity: 1 << 16 })],
];

for (const [kind, make] of makers) {
  test(`${kind}: dump() shows every live block where it is, and agrees with stats()`, () => {
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
