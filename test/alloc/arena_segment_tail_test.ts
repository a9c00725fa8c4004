// An arena holds what its capacity says, with or without safety. With safety
// an arena's views are over segments (ArrayBuffers over parts of a chunk); in
// Bun they are sized to demand, so a block often does not fit the rest of the
// current segment. It must then go at the allocation point in a new segment
// over the rest of the same chunk, not skip the old segment's tail (which made
// a fixed arena "full" with free bytes left, and a growable one take a new
// chunk early). These tests run the same in Deno, whose segments are larger.
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, Arena, MemoryInterface } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const KiB = 1 << 10;
const MiB = 1 << 20;

function check(arena: Arena, where: string): void {
  const s = arena.stats();
  assert.equal(s.capacityBytes, s.allocatedBytes + s.availableBytes + s.overheadBytes, `${where}: figures add up`);
}

for (const safety of [true, false]) {
  test(`Arena (safety ${safety}, fixed): five 200 KiB blocks fit in 1 MiB; the sixth is refused with true figures`, () => {
    const arena = new Arena({ capacity: MiB, growth: "fixed", safety });
    try {
      const blocks: Uint8Array[] = [];
      for (let i = 0; i < 5; i++) {
        blocks.push(arena.alloc(200 * KiB));
        check(arena, `block ${i}`);
      }
      const stats = arena.stats();
      assert.equal(stats.allocatedBytes, 5 * 200 * KiB);
      assert.equal(stats.availableBytes, MiB - 5 * 200 * KiB);
      assert.equal(stats.overheadBytes, 0);
      // The blocks are back to back from the chunk's start.
      for (let i = 1; i < 5; i++) assert.equal(addressOf(blocks[i]), addressOf(blocks[0]) + i * 200 * KiB);
      let error: unknown = null;
      try {
        arena.alloc(200 * KiB);
      } catch (thrown) {
        error = thrown;
      }
      assert.ok(error instanceof AllocationError, `the sixth block: ${error}`);
      assert.equal(error.category, "out-of-memory");
      assert.match(
        error.message,
        new RegExp(`${stats.allocatedBytes} of its ${MiB} bytes are allocated and ${stats.availableBytes} are free`),
      );
      assert.match(error.message, /growth policy is fixed/);
      // What is left still fits, exactly.
      const rest = arena.alloc(stats.availableBytes);
      assert.equal(addressOf(rest), addressOf(blocks[0]) + 5 * 200 * KiB);
      assert.equal(arena.stats().availableBytes, 0);
      assert.equal(arena.tryAlloc(1), null);
    } finally {
      arena.dispose();
    }
  });

  test(`Arena (safety ${safety}): a growable arena takes no new chunk while its chunk has room`, () => {
    for (const step of [50 * KiB, 200 * KiB, 4 * KiB + 16, 100 * KiB + 48]) {
      const arena = new Arena({ capacity: MiB, safety });
      try {
        const fit = Math.floor(MiB / step); // every step is a multiple of 16: no padding
        for (let i = 0; i < fit; i++) {
          arena.alloc(step);
          assert.equal(arena.stats().chunks, 1, `step ${step}: block ${i} of ${fit} took a new chunk`);
          check(arena, `step ${step}, block ${i}`);
        }
        assert.equal(arena.stats().availableBytes, MiB - fit * step);
        arena.alloc(step);
        assert.equal(arena.stats().chunks, 2, `step ${step}: the block past the chunk takes a new one`);
      } finally {
        arena.dispose();
      }
    }
  });

  test(`Arena (safety ${safety}, fixed): scopes and nested scopes use the whole chunk; refusals only when too little is free`, () => {
    // Sizes are multiples of 16 (the default alignment), so the allocation point never pads: a block is refused
    // exactly when it is larger than availableBytes.
    const next = xorshift32(0x5eed + (safety ? 1 : 0));
    const arena = new Arena({ capacity: MiB, growth: "fixed", safety });
    const scopes: { end(): void }[] = [];
    let refused = 0, served = 0;
    try {
      for (let step = 0; step < 4000; step++) {
        const r = below(next, 100);
        if (r < 8 && scopes.length < 6) scopes.push(arena.scope());
        else if (r < 14 && scopes.length > 0) scopes.splice(below(next, scopes.length))[0].end();
        else if (r < 15) {
          arena.reset();
          scopes.length = 0;
        } else {
          const size = 16 * (1 + below(next, r < 60 ? 256 : 16 * 1024)); // up to 4 KiB, or up to 256 KiB
          const free = arena.stats().availableBytes;
          const view = arena.tryAlloc(size);
          if (size <= free) {
            assert.ok(view !== null, `step ${step}: ${size} bytes refused with ${free} free`);
            assert.equal(view.length, size);
            served++;
          } else {
            assert.equal(view, null, `step ${step}: ${size} bytes served with ${free} free`);
            refused++;
          }
        }
        check(arena, `step ${step}`);
        assert.equal(arena.stats().overheadBytes, 0, `step ${step}: no byte of the chunk is lost`);
      }
      assert.ok(served > 1000 && refused > 10, `served ${served}, refused ${refused}`);
    } finally {
      arena.dispose();
    }
  });

  test(`Arena (safety ${safety}): the most recent block grows in place to the end of its chunk`, () => {
    const arena = new Arena({ capacity: MiB, growth: "fixed", safety });
    try {
      arena.alloc(100 * KiB);
      let view = arena.alloc(16);
      const address = addressOf(view);
      view.fill(7);
      for (let size = 32; size <= MiB - 100 * KiB; size *= 2) {
        const grown = arena.resize(view, Math.min(size, MiB - 100 * KiB));
        assert.equal(addressOf(grown), address, `grown to ${grown.length} bytes in place`);
        assert.equal(grown[0], 7);
        assert.equal(grown[view.length - 1], 7);
        grown.fill(7);
        view = grown;
        check(arena, `grown to ${grown.length}`);
      }
      view = arena.resize(view, MiB - 100 * KiB);
      assert.equal(addressOf(view), address);
      assert.equal(arena.stats().availableBytes, 0);
      assert.equal(arena.stats().allocatedBytes, MiB);
      // Still the most recent block: its free rolls it back.
      arena.free(view);
      assert.equal(arena.stats().availableBytes, MiB - 100 * KiB);
      assert.equal(arena.stats().ignoredFrees, 0);
    } finally {
      arena.dispose();
    }
  });
}

test("Arena (safety): a scope's views over a segment that began in an earlier one's tail are detached at its end", () => {
  const arena = new Arena({ capacity: MiB, growth: "fixed" });
  try {
    const before = arena.alloc(200 * KiB);
    const views: Uint8Array[] = [];
    {
      using _outer = arena.scope();
      views.push(arena.alloc(200 * KiB), arena.alloc(200 * KiB));
      {
        using _inner = arena.scope();
        views.push(arena.alloc(200 * KiB), arena.alloc(200 * KiB - 16));
        for (let i = 1; i < views.length; i++) {
          assert.equal(addressOf(views[i]), addressOf(views[i - 1]) + views[i - 1].length);
        }
      }
      assert.equal(views[2].length, 0);
      assert.equal(views[3].length, 0);
      assert.equal(views[1].length, 200 * KiB);
      views.push(arena.alloc(400 * KiB)); // the inner scope's place again
      assert.equal(addressOf(views[4]), addressOf(views[1]) + 200 * KiB);
    }
    for (const view of views) assert.equal(view.length, 0);
    assert.equal(before.length, 200 * KiB);
    assert.equal(arena.stats().allocatedBytes, 200 * KiB);
    assert.equal(arena.stats().availableBytes, MiB - 200 * KiB);
  } finally {
    arena.dispose();
  }
});

test("MemoryInterface: a frame loop whose temporaries fit the arena's first chunk never grows it", () => {
  const memory = new MemoryInterface();
  try {
    const arena = memory.getAllocator("arena");
    const capacity = arena.stats().capacityBytes;
    // Frames of 20 x 50 KiB and 5 x 200 KiB: at most 1,000 KiB, under the first chunk's 1 MiB.
    assert.ok(capacity >= MiB, `the temporary arena starts with ${capacity} bytes`);
    for (let frame = 0; frame < 40; frame++) {
      memory.beginFrame();
      const [count, size] = frame % 2 ? [5, 200 * KiB] : [20, 50 * KiB];
      for (let i = 0; i < count; i++) memory.allocateTyped(size, "temporary");
      memory.endFrame();
      assert.equal(arena.stats().capacityBytes, capacity, `frame ${frame}: the temporary arena grew`);
    }
  } finally {
    memory.dispose();
  }
});
