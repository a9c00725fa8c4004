// A DebugAllocator with counters only (`safety: false`, issue 14 item 10):
// what its flat alloc path (src/debug/_hot_path.ts, allocCounted) does with
// every answer of the backing — a block, a refusal, a state error, a block it
// must not return — and what it records of each block (size, alignment, birth
// time, id order, a sampled stack), so that leaks() and stats() are exact.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type Allocator, DebugAllocator, PoolAllocator, SystemAllocator } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

/** What `fn` did, as the assertions below name it. */
const category = (fn: () => unknown): string => outcome(fn, "nothing thrown");

// A backing whose tryAlloc answers with `answer(size)`; frees and the rest go to a real SystemAllocator.
function backingAnswering(answer: (size: number, system: SystemAllocator) => unknown): Allocator {
  const system = new SystemAllocator();
  const give = (size: number) => answer(size, system) as Uint8Array;
  return {
    kind: "system",
    alloc: (size) => give(size),
    tryAlloc: (size) => give(size),
    array: (ctor, length, align) => system.array(ctor, length, align),
    free: (view) => system.free(view),
    resize: (view, size) => system.resize(view, size),
    owns: (view) => system.owns(view),
    stats: () => system.stats(),
  };
}

const LIES: Record<string, (size: number, system: SystemAllocator) => unknown> = {
  "a short block": (size, system) => system.alloc(size + 16).subarray(0, size - 1),
  "a detached block": (size) => {
    const copy = new Uint8Array(new ArrayBuffer(size + 16));
    copy.buffer.transfer(0);
    return copy;
  },
  "a look-alike object": (size, system) => ({ byteLength: size, buffer: system.alloc(size).buffer, byteOffset: 0 }),
  "an ArrayBuffer": (size, system) => system.alloc(size).buffer,
  "a number": () => 42,
};

for (const [lie, answer] of Object.entries(LIES)) {
  test(`counters only: a backing that returns ${lie} is AllocationError("corruption"), nothing recorded`, () => {
    const debug = new DebugAllocator(backingAnswering(answer), { safety: false });
    for (const call of [() => debug.alloc(40), () => debug.tryAlloc(40)]) {
      let thrown: unknown = null;
      try {
        call();
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof AllocationError, `${lie}: got ${thrown}`);
      assert.equal(thrown.category, "corruption", thrown.message);
      assert.match(thrown.message, /backing/);
    }
    const stats = debug.stats();
    assert.equal(stats.liveAllocations, 0);
    assert.equal(stats.allocatedBytes, 0);
    assert.equal(stats.failedAllocations, 0, "a lie is not a refusal");
    assert.deepEqual(debug.leaks(), []);
    assert.equal(debug.deinit(), "ok");
  });
}

test("counters only: a refusal (null, RangeError, out-of-memory) is null from tryAlloc and out-of-memory from alloc", () => {
  const refusals: Record<string, (size: number) => unknown> = {
    "null": () => null,
    "RangeError": () => {
      throw new RangeError("too big for this backing");
    },
    "out-of-memory": () => {
      throw new AllocationError("out-of-memory", "no room");
    },
  };
  for (const [name, refuse] of Object.entries(refusals)) {
    const debug = new DebugAllocator(backingAnswering(refuse), { safety: false });
    assert.equal(debug.tryAlloc(24), null, name);
    assert.equal(category(() => debug.alloc(24)), "out-of-memory", name);
    const stats = debug.stats();
    assert.equal(stats.failedAllocations, 2, name);
    assert.equal(stats.liveAllocations, 0, name);
    assert.equal(debug.deinit(), "ok");
  }
});

test("counters only: the backing's state errors go on to the caller, and nothing is counted", () => {
  const debug = new DebugAllocator(
    backingAnswering(() => {
      throw new AllocationError("use-after-free", "the backing was disposed");
    }),
    { safety: false },
  );
  assert.equal(category(() => debug.tryAlloc(24)), "use-after-free");
  assert.equal(category(() => debug.alloc(24)), "use-after-free");
  assert.equal(debug.stats().failedAllocations, 0);
  assert.equal(debug.stats().liveAllocations, 0);
  assert.equal(debug.deinit(), "ok");
});

test("counters only: memoryLimit is checked before the backing is asked", () => {
  let asked = 0;
  const debug = new DebugAllocator(
    backingAnswering((size, system) => {
      asked++;
      return system.alloc(size);
    }),
    { safety: false, memoryLimit: 100 },
  );
  const kept = debug.alloc(60);
  assert.equal(asked, 1);
  assert.equal(category(() => debug.alloc(41)), "limit-exceeded");
  assert.equal(debug.tryAlloc(41), null);
  assert.equal(asked, 1, "the backing was not asked past the limit");
  debug.free(kept);
  assert.equal(debug.deinit(), "ok");
});

test("counters only: every block is recorded with its size, alignment, address, birth and order", () => {
  using system = new SystemAllocator();
  const debug = new DebugAllocator(system, { safety: false });
  const before = Date.now();
  const blocks = [debug.alloc(10), debug.alloc(64, 32), debug.alloc(100), debug.alloc(1, 8)];
  debug.free(blocks[2]);
  const after = Date.now();
  const leaks = debug.leaks();
  assert.deepEqual(leaks.map((l) => [l.size, l.align]), [[10, 16], [64, 32], [1, 8]]);
  for (const leak of leaks) {
    assert.ok(leak.ageMs >= 0 && leak.ageMs <= after - before + 1000, `age ${leak.ageMs}`);
    assert.equal(leak.stack, undefined, "untraced");
  }
  const stats = debug.stats();
  assert.equal(stats.liveAllocations, 3);
  assert.equal(stats.allocatedBytes, 75);
  assert.equal(stats.totalAllocations, 4);
  assert.equal(stats.totalFrees, 1);
  // The blocks are the backing's own views, and each leak's address is its block's.
  for (const block of [blocks[0], blocks[1], blocks[3]]) assert.ok(system.owns(block));
  assert.equal(new Set(leaks.map((l) => l.address)).size, 3);
  for (const block of [blocks[0], blocks[1], blocks[3]]) debug.free(block);
  assert.equal(debug.deinit(), "ok");
});

test("counters only: sampled traces name the program's line, one block in sampleEvery", () => {
  using pool = new PoolAllocator({ blockSize: 64, blocksPerChunk: 64 });
  const debug = new DebugAllocator(pool, { safety: false, stackTraceFrames: 4, sampleEvery: 2 });
  const blocks = [debug.alloc(8), debug.tryAlloc(8)!, debug.alloc(8), debug.tryAlloc(8)!];
  const leaks = debug.leaks();
  assert.deepEqual(leaks.map((l) => l.stack !== undefined), [false, true, false, true]);
  for (const leak of leaks.filter((l) => l.stack !== undefined)) {
    assert.match(leak.stack!.split("\n")[0], /debug_counters_only_test/, String(leak.stack));
  }
  for (const block of blocks) debug.free(block);
  assert.deepEqual(debug.leaks(), []);
  assert.equal(debug.deinit(), "ok");
});

test("counters only: a backing's null is said in alloc's error, not an empty reason nor an earlier refusal's", () => {
  let answer: "null" | "RangeError" = "RangeError";
  const debug = new DebugAllocator(
    backingAnswering(() => {
      if (answer === "null") return null;
      throw new RangeError("an earlier refusal");
    }),
    { safety: false },
  );
  const messageOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof AllocationError, String(error));
      assert.equal(error.category, "out-of-memory");
      return error.message;
    }
    assert.fail("nothing thrown");
  };
  // First a null with nothing refused before, then a null after a RangeError's refusal.
  answer = "null";
  const first = messageOf(() => debug.alloc(8));
  assert.match(first, /refused 8 bytes/, first);
  assert.doesNotMatch(first, /: $/, first);
  answer = "RangeError";
  assert.match(messageOf(() => debug.alloc(8)), /an earlier refusal/);
  answer = "null";
  const second = messageOf(() => debug.alloc(8));
  assert.match(second, /refused 8 bytes/, second);
  assert.doesNotMatch(second, /an earlier refusal/, second);
  assert.equal(debug.tryAlloc(8), null);
  assert.equal(debug.stats().failedAllocations, 4);
  assert.equal(debug.deinit(), "ok");
});
