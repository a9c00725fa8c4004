// A parent's resize of a block another allocator or array keeps memory in
// (through a view of its first bytes, not by the holder) changes that memory
// under the holder: the holder is told as for a free (its views read as
// length 0, its calls throw "use-after-free" naming the resize). Before, a
// FreeListAllocator shrank a child pool's chunk in place and handed its tail
// out again while the pool's blocks were still live over it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, BuddyAllocator, FreeListAllocator, PoolAllocator, StackAllocator } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

const PARENTS = [
  ["FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 20 })],
  ["BuddyAllocator", () => new BuddyAllocator({ capacity: 1 << 20 })],
  ["StackAllocator", () => new StackAllocator({ capacity: 1 << 20 })],
] as const;

for (const [name, make] of PARENTS) {
  for (const newSize of [16, 8192]) {
    test(`${name}: a resize to ${newSize} through a view of a child's chunk revokes the child, and no block overlaps it`, () => {
      const parent = make();
      const first = parent.alloc(4096);
      const child = new PoolAllocator({ blockSize: 64, blocksPerChunk: 16, backing: parent });
      const block = child.alloc(64).fill(7);
      const forged = new Uint8Array(first.buffer, first.byteOffset + (addressOf(block) - addressOf(first)), 64);
      const resized = parent.resize(forged, newSize);
      assert.equal(block.length, 0, "the child's block still reads the memory its parent resized");
      assert.equal(outcome(() => child.alloc(64)), "use-after-free");
      assert.match(
        (() => {
          try {
            child.alloc(64);
          } catch (error) {
            return (error as Error).message;
          }
          return "";
        })(),
        /resize\(\) changed it|the block shrank/,
      );
      // Whatever the parent hands out now overlaps nothing it handed out before.
      const start = addressOf(resized), end = start + resized.length;
      for (let i = 0; i < 8; i++) {
        const other = parent.tryAlloc(64);
        if (other === null) break;
        const at = addressOf(other);
        assert.ok(at + 64 <= start || at >= end, "a new block overlaps the resized one");
      }
      parent.dispose();
    });
  }
}
