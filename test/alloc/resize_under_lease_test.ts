// A parent's resize of a block another allocator or array keeps memory in
// (through a view of its first bytes, not by the holder) changes that memory
// under the holder: the holder is told as for a free (its views read as
// length 0, its calls throw "use-after-free" naming the resize). Before, a
// FreeListAllocator shrank a child pool's chunk in place and handed its tail
// out again while the pool's blocks were still live over it.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  type Allocator,
  Arena,
  BuddyAllocator,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
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

// A resize that fails for want of room changes nothing: the holder of the block (here an Arena's chunk) is told
// only once the resize is certain. Before, the parent revoked the child first and then threw "out-of-memory":
// the child's views read as length 0 and it was dead, though its memory had not changed.
const SMALL_PARENTS = [
  ["FreeListAllocator", () => new FreeListAllocator({ capacity: 64 << 10, growth: "fixed" }), 1 << 20],
  ["BuddyAllocator", () => new BuddyAllocator({ capacity: 64 << 10 }), 64 << 10],
  ["StackAllocator", () => new StackAllocator({ capacity: 64 << 10 }), 1 << 20],
] as const;

/** The parent's view of the chunk `block` of a child lies in (through the parent's block `ref`, same buffer). */
function chunkViewOf(ref: Uint8Array, block: Uint8Array, length = 4096): Uint8Array {
  return new Uint8Array(ref.buffer, ref.byteOffset + (addressOf(block) - addressOf(ref)), length);
}

for (const [name, make, tooBig] of SMALL_PARENTS) {
  test(`${name}: a resize of a child's chunk that fails for want of room leaves the child and the parent as they were`, () => {
    const parent = make();
    const ref = parent.alloc(16); // a view over the parent's buffer, below the child's chunk
    const child = new Arena({ capacity: 4096, growth: "fixed", backing: parent });
    const kept = child.alloc(64).fill(9);
    const { failedAllocations: _, ...before } = parent.stats();
    assert.equal(outcome(() => parent.resize(chunkViewOf(ref, kept), tooBig)), "out-of-memory");
    const { failedAllocations: __, ...after } = parent.stats();
    assert.deepEqual(after, before);
    assert.equal(kept.length, 64, "the child was revoked by a resize that did not happen");
    assert.equal(kept[63], 9);
    assert.equal(child.alloc(8).length, 8);
    child.dispose();
    parent.dispose();
  });
}

// The same with a buffer of the child's transferred away: the resize that has room finds the theft as it tells
// the child, and throws "corruption" with nothing else changed (a block it took to move into is given back).
for (const [name, make] of SMALL_PARENTS.slice(0, 2)) {
  for (const newSize of [16, 8192]) {
    test(`${name}: a resize to ${newSize} of a child's chunk whose buffer was transferred away changes nothing but the child`, () => {
      const parent = make();
      const ref = parent.alloc(16);
      const child = new Arena({ capacity: 4096, growth: "fixed", backing: parent });
      const view = child.alloc(16);
      parent.alloc(16); // right after the chunk: a larger chunk must move
      const chunk = chunkViewOf(ref, view);
      const stolen = new Uint8Array(structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] }));
      const { liveAllocations, allocatedBytes } = parent.stats();
      assert.equal(outcome(() => parent.resize(chunk, newSize)), "corruption");
      assert.deepEqual([parent.stats().liveAllocations, parent.stats().allocatedBytes], [
        liveAllocations,
        allocatedBytes,
      ]);
      assert.notEqual(outcome(() => child.alloc(8)), "ok");
      // Nothing the parent hands out reaches the memory the stolen buffer does.
      const lo = addressOf(stolen), hi = lo + stolen.length;
      for (let i = 0; i < 16; i++) {
        const other = parent.tryAlloc(1024);
        if (other === null) break;
        assert.ok(addressOf(other) + 1024 <= lo || addressOf(other) >= hi, "a new block reaches the stolen memory");
      }
      parent.dispose();
    });
  }
}

// An Arena resizes its most recent block in place; when that block is a child's chunk (passed on by an Allocator
// in JavaScript), the child is told first. Before, the arena shrank the block under the child and handed the
// rest out again while the child's blocks were live over it.
test("Arena: an in-place resize of the block a child's chunk is revokes the child, and no later block overlaps it", () => {
  const arena = new Arena({ capacity: 1 << 20 });
  const handed: Uint8Array[] = [];
  const take = (size: number, align?: number) => {
    const view = arena.tryAlloc(size, align);
    if (view !== null) handed.push(view);
    return view;
  };
  const passOn = {
    kind: "system",
    alloc: (size: number, align?: number) => take(size, align)!,
    tryAlloc: take,
    array: arena.array.bind(arena),
    free() {},
    resize: arena.resize.bind(arena),
    owns: arena.owns.bind(arena),
    stats: arena.stats.bind(arena),
  } as unknown as Allocator;
  const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 16, backing: passOn });
  const block = pool.alloc(64).fill(7);
  const [chunk] = handed;
  const resized = arena.resize(chunk, 16); // the arena's own view of its most recent block: in place
  assert.equal(addressOf(resized), addressOf(chunk));
  assert.equal(block.length, 0, "the pool's block still reads memory the arena hands out again");
  assert.equal(outcome(() => pool.alloc(64)), "use-after-free");
  const next = arena.alloc(512);
  assert.ok(addressOf(next) >= addressOf(resized) + 16);
  arena.dispose();
});

// A holder whose lease lies inside a block, not at its start (an Allocator in JavaScript passing on part of a
// block), is told of a resize of the whole block as of its free.
const WHOLE_PARENTS = [
  ["SystemAllocator", () => new SystemAllocator()],
  ["FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 20 })],
  ["BuddyAllocator", () => new BuddyAllocator({ capacity: 1 << 20 })],
  ["StackAllocator", () => new StackAllocator({ capacity: 1 << 20 })],
] as const;

for (const [name, make] of WHOLE_PARENTS) {
  test(`${name}: a resize of a block a child holds part of (not its start) revokes the child`, () => {
    const parent: Allocator & { dispose(): void } = make();
    let whole = parent.alloc(4096 + 4096, 4096);
    const passOn = {
      kind: "system",
      alloc: (size: number) => whole.subarray(4096, 4096 + size),
      tryAlloc: (size: number) => whole.subarray(4096, 4096 + size),
      array: parent.array.bind(parent),
      free() {},
      resize: parent.resize.bind(parent),
      owns: parent.owns.bind(parent),
      stats: parent.stats.bind(parent),
    } as unknown as Allocator;
    const pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 16, backing: passOn });
    const block = pool.alloc(64).fill(7);
    whole = parent.resize(whole, 64 << 10);
    assert.equal(block.length, 0);
    assert.equal(outcome(() => pool.alloc(64)), "use-after-free");
    parent.dispose();
  });
}

// SystemAllocator.resize() grows a malloc block with realloc, which frees the old memory at once. A holder of a
// part of the block (not its start) whose buffer was transferred away must keep that memory from going back to
// libc: the block is moved without freeing it. Before, only a lease at the block's start kept realloc away, and
// libc handed the memory the stolen buffer reaches out again.
test("SystemAllocator: realloc never frees a block whose inside a transferred buffer of a holder reaches", () => {
  const system = new SystemAllocator();
  let big = system.alloc(64 << 10); // a malloc block
  const neighbour = system.alloc(64 << 10); // right after it: realloc cannot grow it in place
  const offset = 2 * 4096 - (addressOf(big) % 4096); // a page-aligned part well inside it
  const passOn = {
    kind: "system",
    alloc: (size: number) => big.subarray(offset, offset + size),
    tryAlloc: (size: number) => big.subarray(offset, offset + size),
    array: system.array.bind(system),
    free() {},
    resize: system.resize.bind(system),
    owns: () => false,
    stats: system.stats.bind(system),
  } as unknown as Allocator;
  const arena = new Arena({ capacity: 4096, growth: "fixed", backing: passOn, safety: false });
  const view = arena.alloc(16);
  const stolen = new Uint8Array(structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] }));
  const lo = addressOf(stolen), hi = lo + stolen.length;
  big = system.resize(big, 100_000);
  assert.equal(big.length, 100_000);
  // Were the old memory back with libc, some of these would be carved from it.
  const fresh = Array.from({ length: 64 }, () => system.alloc(16 << 10));
  for (const block of fresh) {
    const at = addressOf(block);
    assert.ok(at + block.length <= lo || at >= hi, "libc handed out memory a transferred buffer reaches");
  }
  assert.equal(neighbour.length, 64 << 10);
  system.dispose();
});
