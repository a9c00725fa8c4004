// Every chunked allocator over a StackAllocator gives its chunks back newest
// first, the order it took them in reversed, whatever it did with them in
// between (an Arena's oversized chunks, kept by a scope's end or a reset, sit
// among its regular ones): reset() and dispose() never make the stack refuse
// a free, and leave nothing in it. Before, an Arena gave back its oversized
// chunks after the regular ones: reset("free-all") threw "invalid-free … out
// of order" though the program freed nothing, and a chunk stayed in the stack
// for good.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Allocator, Arena, BuddyAllocator, FreeListAllocator, PoolAllocator, StackAllocator } from "../../mod.ts";

function live(stack: StackAllocator): [number, number] {
  const stats = stack.stats();
  return [stats.liveAllocations, stats.allocatedBytes];
}

const MODES = ["free-all", "retain-capacity", { retainLimit: 4096 }] as const;

for (const safety of [false, true]) {
  for (const mode of MODES) {
    test(
      `Arena (safety ${safety}) over a StackAllocator, regular, oversized, regular chunks: reset(${
        JSON.stringify(mode)
      }) and dispose() give them back in order`,
      () => {
        const stack = new StackAllocator({ capacity: 1 << 20 });
        const arena = new Arena({ capacity: 4096, backing: stack, safety });
        arena.alloc(100); // chunk A (4096)
        arena.alloc(64 << 10); // an oversized chunk of its own, taken second
        arena.alloc(6000); // does not fit A's rest: regular chunk B, taken third
        assert.equal(stack.stats().liveAllocations, 3);
        arena.reset(mode);
        if (mode === "free-all") assert.deepEqual(live(stack), [0, 0]);
        else if (typeof mode === "object") assert.deepEqual(live(stack), [1, 4096], "the oldest chunk is kept");
        else assert.equal(stack.stats().liveAllocations, 3);
        // The next cycle uses what was kept, and may take more.
        arena.alloc(100);
        arena.alloc(100 << 10);
        arena.reset(mode);
        arena.dispose();
        assert.deepEqual(live(stack), [0, 0]);
        stack.dispose();
      },
    );
  }

  test(`Arena (safety ${safety}) over a StackAllocator: an oversized chunk a scope's end kept, then more chunks: reset and dispose give all back`, () => {
    const stack = new StackAllocator({ capacity: 1 << 20 });
    const arena = new Arena({ capacity: 4096, backing: stack, safety });
    arena.alloc(100); // chunk A
    {
      using _scope = arena.scope();
      arena.alloc(64 << 10); // oversized, kept among the regular chunks when the scope ends
    }
    arena.alloc(4000); // fills A
    arena.alloc(100 << 10); // oversized again
    arena.alloc(3000); // a new regular chunk
    arena.reset({ retainLimit: 8192 });
    assert.deepEqual(live(stack), [1, 4096]);
    arena.alloc(200 << 10);
    arena.dispose();
    assert.deepEqual(live(stack), [0, 0]);
    stack.dispose();
  });
}

// The other chunked allocators give chunks back only at dispose(): newest first.
const OTHERS: [string, (backing: Allocator) => Allocator & { dispose(): void }][] = [
  ["PoolAllocator", (backing) => {
    const pool = new PoolAllocator({ blockSize: 4096, blocksPerChunk: 4, backing });
    for (let i = 0; i < 10; i++) pool.alloc(4096); // three chunks
    return pool;
  }],
  ["FreeListAllocator", (backing) => {
    const heap = new FreeListAllocator({ capacity: 4096, growth: "linear", backing });
    heap.alloc(3000);
    heap.alloc(64 << 10); // a chunk larger than planned
    heap.alloc(3000); // and a regular one after it
    return heap;
  }],
  ["BuddyAllocator", (backing) => new BuddyAllocator({ capacity: 64 << 10, backing })],
  ["StackAllocator", (backing) => new StackAllocator({ capacity: 64 << 10, backing })],
];

for (const [name, make] of OTHERS) {
  test(`${name} over a StackAllocator: dispose() gives every chunk back, newest first`, () => {
    const stack = new StackAllocator({ capacity: 1 << 20 });
    const first = make(stack), second = make(stack);
    second.dispose();
    first.dispose();
    assert.deepEqual(live(stack), [0, 0]);
    stack.dispose();
  });
}
