// Chains built over what MemoryInterface.getAllocator(kind) returns cannot
// dangle (safety rule 4): when the interface is disposed, every allocator,
// array and region built over any of its allocators, at any depth, reads as
// length 0 and refuses further use with "use-after-free", and no view of theirs
// reaches memory the interface gave back. (The pool kind's guard once let an
// Arena or a RegionAllocator over it keep views over blocks its class pools had
// returned to libc, and go on allocating from them.)
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  DebugAllocator,
  DynamicArray,
  FreeListAllocator,
  MemoryInterface,
  PoolAllocator,
  RegionAllocator,
} from "../../mod.ts";

interface Built {
  /** The views the chain handed out. */
  views: ArrayBufferView[];
  /** One more use of the chain, which must throw use-after-free once the interface is gone. */
  use: () => unknown;
}

const chains: Record<string, (guard: Allocator) => Built> = {
  "an Arena": (guard) => {
    const arena = new Arena({ capacity: 1024, backing: guard });
    return { views: [arena.alloc(32), arena.alloc(16)], use: () => arena.alloc(16) };
  },
  "a PoolAllocator": (guard) => {
    const pool = new PoolAllocator({ blockSize: 32, blocksPerChunk: 8, backing: guard });
    return { views: [pool.alloc(32), pool.alloc(8)], use: () => pool.alloc(32) };
  },
  "a FreeListAllocator": (guard) => {
    const heap = new FreeListAllocator({ capacity: 2048, backing: guard });
    return { views: [heap.alloc(100), heap.alloc(12)], use: () => heap.alloc(16) };
  },
  "a DebugAllocator": (guard) => {
    const debug = new DebugAllocator(guard);
    return { views: [debug.alloc(48), debug.alloc(8)], use: () => debug.alloc(16) };
  },
  "a DebugAllocator (detachFreed)": (guard) => {
    const debug = new DebugAllocator(guard, { detachFreed: true });
    const block = debug.alloc(48);
    // Its free after the release: the memory went with the interface ("use-after-free"), no transfer happened.
    return { views: [block, debug.alloc(8)], use: () => debug.free(block) };
  },
  "a DebugAllocator's free after the release": (guard) => {
    const debug = new DebugAllocator(guard);
    const block = debug.alloc(24);
    return { views: [block], use: () => debug.free(block) };
  },
  "a RegionAllocator": (guard) => {
    const regions = new RegionAllocator({ backing: guard, capacity: 2048 });
    return { views: [regions.allocateAudioData(16)], use: () => regions.allocateAudioData(4) };
  },
  "a DynamicArray": (guard) => {
    const array = new DynamicArray("f32", { allocator: guard, capacity: 8 });
    array.push(1.5);
    return { views: [array.bytes], use: () => array.push(2) };
  },
  "a DebugAllocator over a FreeListAllocator": (guard) => {
    const outer = new FreeListAllocator({ capacity: 4096, backing: guard });
    const inner = new DebugAllocator(outer);
    return { views: [inner.alloc(64), outer.alloc(16)], use: () => inner.alloc(16) };
  },
};

/** `built`'s views are live; after `end()` they read as length 0 and its next use is "use-after-free". */
function assertChainEnds(built: Built, end: () => void, what: string): void {
  for (const view of built.views) assert.ok(view.byteLength > 0);
  end();
  for (const view of built.views) assert.equal(view.byteLength, 0, what);
  assert.throws(built.use, (e) => e instanceof AllocationError && e.category === "use-after-free");
}

// The kinds whose guard lends blocks a chunk at a time (the stack's guard lends from its reservation).
const KINDS = ["pool", "arena", "stack", "system", "free-list", "buddy"] as const;

for (const kind of KINDS) {
  for (const [name, build] of Object.entries(chains)) {
    test(`${name} over getAllocator("${kind}") reads as length 0 and refuses use once the interface is disposed`, () => {
      const memory = new MemoryInterface({ pressure: false });
      assertChainEnds(build(memory.getAllocator(kind)), () => memory.dispose(), `a view of ${name} over ${kind}`);
    });
  }
}

test("a chain's refusal names the guard as the user wrote it, not the class behind it", () => {
  using memory = new MemoryInterface({ pressure: false });
  assert.throws(
    () => new Arena({ capacity: 1 << 16, backing: memory.getAllocator("pool") }),
    (e) =>
      e instanceof AllocationError && e.message.includes('MemoryInterface.getAllocator("pool")') &&
      !e.message.includes("Owned"),
  );
  const debug = new DebugAllocator(memory.getAllocator("pool"));
  assert.throws(
    () => debug.alloc(1 << 16),
    (e) =>
      e instanceof Error && e.message.includes('MemoryInterface.getAllocator("pool")') && !e.message.includes("Owned"),
  );
  assert.throws(
    () => new DynamicArray("f64", { allocator: memory.getAllocator("pool"), capacity: 1000 }),
    (e) => e instanceof AllocationError && e.message.includes('MemoryInterface.getAllocator("pool")'),
  );
});

// The regions of a RegionAllocator are allocators too: chains over one hear of the RegionAllocator's dispose.
for (const region of ["vertex", "uniform", "audio", "texture"] as const) {
  for (const [name, build] of Object.entries(chains)) {
    if (name.startsWith("a RegionAllocator")) continue;
    test(`${name} over region("${region}") reads as length 0 and refuses use once the RegionAllocator is disposed`, () => {
      const regions = new RegionAllocator({ capacity: 1 << 16 });
      assertChainEnds(build(regions.region(region)), () => regions.dispose(), `a view of ${name} over ${region}`);
    });
  }
}

test("a size class of the pool guard that ends (a transfer of its memory) ends only the chains within its memory", () => {
  using memory = new MemoryInterface({ pressure: false });
  const guard = memory.getAllocator("pool");
  const debug = new DebugAllocator(guard);
  const kept = debug.alloc(40); // the 64-byte class
  using array = new DynamicArray("f32", { allocator: guard, capacity: 64 }); // the 256-byte class
  array.push(7);
  const small = guard.alloc(16);
  const buffer = small.buffer as ArrayBuffer;
  structuredClone(buffer, { transfer: [buffer] }); // the 16-byte class's memory is reached from elsewhere now
  assert.throws(() => guard.alloc(16), (e) => e instanceof AllocationError && e.category === "corruption");
  // The other classes, and what lives in them, go on.
  assert.equal(kept.length, 40);
  assert.equal(array.get(0), 7);
  assert.equal(array.push(1), 2);
  debug.free(kept);
  debug.free(debug.alloc(40));
  assert.equal(guard.alloc(200).length, 200);
});

// A chain over the bytes of a handle of the interface's heap (an Allocator written in JavaScript passing them on)
// ends when MemoryInterface.defragment() moves the handle: its views read as length 0 and its refusal names the
// call the program made. Before, the chain went on reading the handle's old place, which the heap hands out again.
for (const call of ["defragment", "defragmentAllocator", "the heap's defragment"] as const) {
  test(`MemoryInterface: ${call} ends a chain over a heap handle it moves, naming that call`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const heap = memory.getAllocator("free-list");
    const holes = Array.from({ length: 8 }, () => heap.handle(16384));
    const handle = heap.handle(65536);
    let given = false;
    const tryAlloc = (size: number) => {
      if (given || size > handle.size) return null;
      given = true;
      return handle.bytes;
    };
    const backing = {
      kind: "system",
      alloc: (size: number) => tryAlloc(size) ?? new Uint8Array(0),
      tryAlloc,
      array: heap.array.bind(heap),
      free: () => {},
      resize: heap.resize.bind(heap),
      owns: () => false,
      stats: heap.stats.bind(heap),
    } as unknown as Allocator;
    const arena = new Arena({ capacity: 65536, growth: "fixed", backing });
    const view = arena.alloc(1000).fill(0x11);
    for (const hole of holes) hole.free();
    const report = call === "defragment"
      ? memory.defragment()
      : call === "defragmentAllocator"
      ? memory.defragmentAllocator("free-list")
      : heap.defragment();
    assert.ok(report.movedBlocks >= 1);
    assert.equal(view.length, 0, "the arena's view still reads the handle's old place");
    assert.throws(() => arena.alloc(10), (e: unknown) => {
      assert.ok(e instanceof AllocationError && e.category === "use-after-free", String(e));
      const named = call === "defragment"
        ? "defragment()"
        : call === "defragmentAllocator"
        ? 'defragmentAllocator("free-list")'
        : 'getAllocator("free-list").defragment()';
      assert.ok(e.message.includes(`MemoryInterface.${named} moved it`), e.message);
      return true;
    });
    assert.equal(handle.bytes[0], 0x11, "the handle keeps its bytes where it moved");
    handle.free();
  });
}
