// dispose() of an allocator whose backing refuses to take a chunk back (a
// StackAllocator with a block of the program's on top of the chunks, or an
// Allocator written in JavaScript whose free throws): the allocator is
// disposed all the same, every view it handed out reads as length 0 (rule 1:
// none outlives memory the backing hands out again or returns to the OS),
// every chunk the backing takes is given back, and dispose() then throws an
// AllocationError saying which chunks the backing kept (its error is the
// cause). Before, dispose() stopped at the first refusal: the older chunks
// were neither detached nor given back, their views kept reading memory the
// stack later handed out again, and after the stack's dispose() a read
// through them crashed the process.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  BuddyAllocator,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";
import { outcome } from "../_helpers.ts";

type Client = Allocator & { dispose(): void };

// Each client takes two chunks or more from `backing` where it can (one where it has only one), with views in each.
const CLIENTS: [string, (backing: Allocator) => { client: Client; views: Uint8Array[] }][] = [
  ["PoolAllocator", (backing) => {
    const client = new PoolAllocator({ blockSize: 4096, blocksPerChunk: 16, backing });
    return { client, views: Array.from({ length: 20 }, () => client.alloc(4096)) };
  }],
  ["Arena", (backing) => {
    const client = new Arena({ capacity: 4096, growth: "linear", backing });
    return { client, views: [client.alloc(100), client.alloc(64 << 10), client.alloc(6000)] };
  }],
  ["Arena (safety)", (backing) => {
    const client = new Arena({ capacity: 4096, growth: "linear", backing, safety: true });
    return { client, views: [client.alloc(100), client.alloc(64 << 10), client.alloc(6000)] };
  }],
  ["FreeListAllocator", (backing) => {
    const client = new FreeListAllocator({ capacity: 4096, growth: "linear", backing });
    return { client, views: [client.alloc(3000), client.alloc(3000), client.alloc(3000)] };
  }],
  ["BuddyAllocator", (backing) => {
    const client = new BuddyAllocator({ capacity: 64 << 10, backing });
    return { client, views: [client.alloc(100), client.alloc(4096)] };
  }],
  ["StackAllocator", (backing) => {
    const client = new StackAllocator({ capacity: 64 << 10, backing });
    return { client, views: [client.alloc(100), client.alloc(4096)] };
  }],
];

function disposeError(client: Client): AllocationError {
  try {
    client.dispose();
  } catch (error) {
    assert.ok(error instanceof AllocationError, `not an AllocationError: ${error}`);
    return error;
  }
  assert.fail("dispose() did not say that the backing refused a chunk");
}

for (const [name, make] of CLIENTS) {
  test(`${name} over a StackAllocator with a block on top of its chunks: dispose() detaches every view, then reports the refusal`, () => {
    const system = new SystemAllocator({ retainBytes: 0 }); // freed blocks go straight back to the OS
    const stack = new StackAllocator({ capacity: 1 << 20, backing: system });
    const { client, views } = make(stack);
    const onTop = stack.alloc(64); // the program's own block, above the client's chunks
    const error = disposeError(client);
    assert.equal(error.category, "invalid-free");
    assert.match(error.message, /was disposed .*but its backing StackAllocator refused to take back/);
    assert.ok(error.cause instanceof AllocationError, "the stack's own error is the cause");
    views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} still reads the chunk the stack kept`));
    assert.equal(outcome(() => client.alloc(16)), "use-after-free");
    client.dispose(); // a second call does nothing
    // The chunks the stack kept are its own now: it frees them as any of its blocks, and hands the memory out again.
    stack.free(onTop);
    stack.reset();
    assert.equal(stack.stats().liveAllocations, 0);
    stack.alloc(128 << 10).fill(0x22);
    stack.dispose(); // its chunk goes back to the OS
    views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} outlives the stack's memory`));
    system.dispose();
  });
}

test("a backing in JavaScript that refuses one chunk: dispose() still gives back every other chunk, and says which it kept", () => {
  const system = new SystemAllocator();
  const given: Uint8Array[] = [];
  const refusal = new Error("the backing keeps this one");
  const backing = {
    kind: "system",
    alloc: (size: number, align?: number) => given[given.push(system.alloc(size, align)) - 1],
    tryAlloc: (size: number, align?: number) => given[given.push(system.alloc(size, align)) - 1],
    array: system.array.bind(system),
    free: (view: Uint8Array) => {
      if (view === given[1]) throw refusal; // the middle chunk of three
      system.free(view);
    },
    resize: system.resize.bind(system),
    owns: system.owns.bind(system),
    stats: system.stats.bind(system),
  } as unknown as Allocator;
  const pool = new PoolAllocator({ blockSize: 4096, blocksPerChunk: 4, backing });
  const views = Array.from({ length: 12 }, () => pool.alloc(4096)); // three chunks
  assert.equal(given.length, 3);
  const error = disposeError(pool);
  assert.equal(error.category, "invalid-free");
  assert.equal(error.cause, refusal);
  assert.match(error.message, /refused to take back 1 of its 3 chunks \(16384 bytes\)/);
  views.forEach((view, i) => assert.equal(view.length, 0, `view ${i} is still attached`));
  assert.equal(system.stats().liveAllocations, 1, "only the refused chunk is still allocated in the backing");
  system.dispose();
});
