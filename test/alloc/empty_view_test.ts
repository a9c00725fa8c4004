// An empty view holds no memory and names no block, whatever it starts at:
// every allocator's free takes it as nothing and resize as alloc(newSize).
// Before, an empty view at a block's start freed that block in most
// allocators, and one at a block's end (`block.subarray(block.length)`),
// which starts where the next block does, freed the next block: a live block
// of another owner. An empty view of a released block (its buffer detached) is
// still that block's: a second free says so.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type Allocator,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  FreeListAllocator,
  LockedPageAllocator,
  PoolAllocator,
  SecretAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { outcome } from "../_helpers.ts";

const ALLOCATORS: [string, () => Allocator & { dispose(): void }][] = [
  ["SystemAllocator", () => new SystemAllocator()],
  ["Arena", () => new Arena({ capacity: 1 << 16 })],
  ["StackAllocator", () => new StackAllocator({ capacity: 1 << 16 })],
  ["PoolAllocator", () => new PoolAllocator({ blockSize: 64 })],
  ["PoolAllocator (detachFreed)", () => new PoolAllocator({ blockSize: 64, detachFreed: true })],
  ["BuddyAllocator", () => new BuddyAllocator({ capacity: 1 << 16 })],
  ["FreeListAllocator", () => new FreeListAllocator()],
  ["DebugAllocator", () => new DebugAllocator()],
  ["DebugAllocator (counters only)", () => new DebugAllocator(new PoolAllocator({ blockSize: 64 }), { safety: false })],
  ["LockedPageAllocator", () => new LockedPageAllocator()],
  ["SecretAllocator", () => new SecretAllocator()],
];

for (const [name, make] of ALLOCATORS) {
  test(`${name}: an empty view at a block's start, inside it or at its end frees nothing`, () => {
    const a = make();
    const x = a.alloc(64), y = a.alloc(64);
    x.fill(1);
    y.fill(2);
    for (const empty of [x.subarray(0, 0), x.subarray(8, 8), x.subarray(x.length), y.subarray(0, 0)]) {
      assert.equal(outcome(() => a.free(empty)), "ok");
      assert.equal(outcome(() => a.free(empty)), "ok", "twice: there is nothing to release");
    }
    assert.ok(a.owns(x) && a.owns(y), "an empty view freed a block");
    assert.equal(a.stats().liveAllocations, 2);
    assert.ok(x.every((b) => b === 1) && y.every((b) => b === 2));
    const grown = a.resize(x.subarray(x.length), 32); // a new block: x and y stay
    assert.equal(grown.length, 32);
    assert.ok(a.owns(x) && a.owns(y));
    a.dispose();
  });
}

for (
  const [name, make] of ALLOCATORS.filter(([n]) => !/Arena|Stack|Buddy|FreeList|^PoolAllocator$|counters only/.test(n))
) {
  test(`${name}: a freed block's view, detached, still names it: a second free is double-free`, () => {
    const a = make();
    const x = a.alloc(64);
    a.free(x);
    assert.equal(x.length, 0);
    assert.equal(outcome(() => a.free(x)), "double-free");
    a.dispose();
  });
}
