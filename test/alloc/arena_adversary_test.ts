// An adversary's view of Arena: a call that fails changes nothing (the most
// recent block can still be rolled back or resized in place, no retained
// chunk is given up), a fixed arena holds its capacity again after
// reset("free-all"), and a seeded model of random alloc / array / clone /
// free / resize / scope / reset sequences (with stale views and transferred
// buffers) checks after every step that no two live blocks share a byte, each
// still holds its own pattern, and every released view reads as length 0.
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, Arena } from "../../mod.ts";
import { fixture, outcome, runChild } from "../_helpers.ts";
import { runArenaModel } from "../fixtures/arena_adversary_model.ts";

const KiB = 1 << 10;
const MiB = 1 << 20;

for (const safety of [true, false]) {
  test(`Arena (safety ${safety}): a refused allocation leaves the most recent block to free or resize in place`, () => {
    const arena = new Arena({ capacity: 64 * KiB, growth: "fixed", safety });
    try {
      const first = arena.alloc(100);
      first.fill(1);
      const block = arena.alloc(60 * KiB);
      assert.equal(arena.tryAlloc(10 * KiB), null);
      assert.equal(outcome(() => arena.alloc(10 * KiB)), "out-of-memory");
      assert.equal(outcome(() => arena.array(Float64Array, 2 * KiB)), "out-of-memory");
      assert.equal(outcome(() => arena.resize(block, 70 * KiB)), "out-of-memory", "growing past the chunk");
      // Still the most recent block: it shrinks in place and rolls back.
      const shrunk = arena.resize(block, 16);
      assert.equal(addressOf(shrunk), addressOf(block), "shrunk in place");
      arena.free(shrunk);
      const stats = arena.stats();
      assert.equal(stats.allocatedBytes, 100);
      assert.equal(stats.ignoredFrees, 0);
      assert.equal(stats.failedAllocations, 4);
      assert.ok(first.every((byte) => byte === 1));
    } finally {
      arena.dispose();
    }
  });

  test(`Arena (safety ${safety}): a refused allocation gives up no retained chunk`, () => {
    const arena = new Arena({ capacity: 64 * KiB, growth: "linear", maxCapacity: 192 * KiB, safety });
    try {
      for (let i = 0; i < 3; i++) arena.alloc(64 * KiB);
      arena.reset();
      const head = arena.alloc(16);
      const before = arena.stats();
      assert.equal(outcome(() => arena.alloc(100 * KiB)), "limit-exceeded");
      const after = arena.stats();
      assert.equal(after.availableBytes, before.availableBytes, "no free bytes were abandoned");
      assert.equal(after.largestFreeBlock, before.largestFreeBlock);
      // The next block goes right after the one before the refusal, in the first chunk.
      const next = arena.alloc(16);
      assert.equal(addressOf(next), addressOf(head) + 16);
      arena.free(next);
      assert.equal(arena.stats().allocatedBytes, 16);
    } finally {
      arena.dispose();
    }
  });

  test(`Arena (safety ${safety}): a block with a chunk of its own leaves the current chunk current`, () => {
    const arena = new Arena({ capacity: 64 * KiB, growth: "exponential", safety });
    try {
      arena.alloc(64 * KiB);
      arena.alloc(128 * KiB); // a second chunk, retained by the reset
      arena.reset();
      const head = arena.alloc(16);
      const huge = arena.alloc(2 * MiB);
      const next = arena.alloc(16);
      assert.equal(addressOf(next), addressOf(head) + 16, "the space left in the current chunk is used");
      assert.equal(huge.length, 2 * MiB);
    } finally {
      arena.dispose();
    }
  });

  for (const backing of ["fixed", "null backing"] as const) {
    test(`Arena (safety ${safety}, ${backing}): after reset("free-all") it holds its capacity again`, () => {
      const arena = new Arena(
        backing === "fixed" ? { capacity: MiB, growth: "fixed", safety } : { capacity: MiB, backing: null, safety },
      );
      try {
        for (let round = 0; round < 2; round++) {
          arena.reset("free-all");
          assert.equal(arena.stats().capacityBytes, 0);
          const blocks = [arena.alloc(8 * KiB), arena.alloc(8 * KiB), arena.alloc(MiB - 16 * KiB)];
          assert.equal(arena.stats().capacityBytes, MiB, `round ${round}`);
          assert.equal(arena.stats().availableBytes, 0);
          for (let i = 1; i < blocks.length; i++) {
            assert.equal(addressOf(blocks[i]), addressOf(blocks[i - 1]) + blocks[i - 1].length);
          }
          assert.equal(arena.tryAlloc(1), null);
        }
        // A block larger than the capacity is refused as before the reset.
        arena.reset("free-all");
        let error: unknown = null;
        try {
          arena.alloc(2 * MiB);
        } catch (thrown) {
          error = thrown;
        }
        assert.ok(error instanceof AllocationError && error.category === "out-of-memory", String(error));
        assert.equal(arena.stats().capacityBytes, 0, "the refusal took no chunk");
      } finally {
        arena.dispose();
      }
    });
  }
}

// The model: every live block keeps its own byte pattern and shares no byte
// with another; released views read as length 0 (safety); frees and resizes
// through stale views never free or move a live block; refused calls change
// nothing. A failure names the seed and the last steps.
for (const safety of [true, false]) {
  test(`Arena (safety ${safety}): seeded random sequences keep every live block whole and apart`, () => {
    for (let seed = 1; seed <= 60; seed++) {
      const failure = runArenaModel(seed * 7919 + (safety ? 1 : 0), 400, { safety, transfer: false });
      assert.equal(failure, null, failure ?? "");
    }
  });
}

// Transfers (buffer.transfer()) in the middle of a sequence: the arena must
// never hand out memory the transferred buffer reaches, and ends with
// "corruption" when it finds one. In a child process with a time limit.
test("Arena: seeded random sequences with transferred buffers never hand out memory a transferred buffer reaches", () => {
  const child = runChild(fixture("arena_adversary_model.ts"), {}, ["1", "80", "300"], 120_000);
  assert.equal(child.status, 0, `the child failed (signal ${child.signal}): ${child.stdout}\n${child.stderr}`);
  assert.match(child.stdout, /^ok 80 sequences, \d+ ended on a transfer$/m, child.stdout);
  const ended = Number(/(\d+) ended on a transfer/.exec(child.stdout)![1]);
  assert.ok(ended > 10, `transfers were found (${ended} of 80)`);
});
