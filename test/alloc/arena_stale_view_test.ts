// Arena.free rolls back the most recent block, and resize grows it in place.
// A view kept from a block released before (rolled back by a free, or by a
// scope's end or reset()) starts at the same byte of the same buffer once its
// place is handed out again: it must never free or resize the block that lives
// there now (two live allocations would overlap). Only the view the arena
// handed out for the most recent block rolls it back. Views into memory no
// block holds are refused: free "double-free", resize "use-after-free".
// (reset("free-all") returns chunks, so views kept from before it are used in
// a child process: arena_stale_free_all_test.ts.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, Arena } from "../../mod.ts";
import { outcome } from "../_helpers.ts";

interface Scene {
  readonly arena: Arena;
  /** A view kept from a released block. */
  readonly stale: ArrayBufferView;
  /** The block now at the stale view's first byte (the most recent one), or null when none is. */
  readonly occupant: Uint8Array | null;
}

type Released = "rolled back" | "scope end" | "reset";
type Reuse = "none" | "same size" | "larger" | "smaller" | "array()";
type Through = "the view" | "a subarray" | "a Float32Array" | "a DataView";

function scene(safety: boolean, released: Released, reuse: Reuse, through: Through): Scene {
  const arena = new Arena({ capacity: 1 << 16, safety });
  arena.alloc(16).fill(0xaa);
  let kept: Uint8Array;
  if (released === "rolled back") {
    kept = arena.alloc(16);
    arena.free(kept);
  } else if (released === "scope end") {
    const scope = arena.scope();
    kept = arena.alloc(16);
    scope.end();
  } else {
    arena.reset();
    kept = arena.alloc(16);
    arena.reset();
  }
  const place = kept.byteLength === 0 ? null : addressOf(kept);
  let occupant: Uint8Array | null = null;
  if (reuse !== "none") {
    const size = reuse === "larger" ? 64 : reuse === "smaller" ? 8 : 16;
    if (reuse === "array()") {
      const typed = arena.array(Float64Array, 2);
      occupant = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    } else occupant = arena.alloc(size);
    occupant.fill(0x5c);
    // Released with safety, `kept` was detached; without, its place is the occupant's.
    if (place !== null) assert.equal(addressOf(occupant), place, `${released}, ${reuse}: the place is reused`);
  }
  // (A detached view has no other views: it is used as it is.)
  const stale = through === "the view" || kept.byteLength === 0
    ? kept
    : through === "a subarray"
    ? kept.subarray(0, Math.min(8, kept.length))
    : through === "a Float32Array"
    ? new Float32Array(kept.buffer, kept.byteOffset, kept.length >> 2)
    : new DataView(kept.buffer, kept.byteOffset, kept.length);
  return { arena, stale, occupant };
}

function figures(arena: Arena): string {
  const { allocatedBytes, availableBytes, liveAllocations, totalFrees, ignoredFrees, chunks } = arena.stats();
  return JSON.stringify({ allocatedBytes, availableBytes, liveAllocations, totalFrees, ignoredFrees, chunks });
}

function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  const x = addressOf(a), y = addressOf(b);
  return x < y + b.length && y < x + a.length;
}

const RELEASED: Released[] = ["rolled back", "scope end", "reset"];
const REUSE: Reuse[] = ["none", "same size", "larger", "smaller", "array()"];
const THROUGH: Through[] = ["the view", "a subarray", "a Float32Array", "a DataView"];

for (const safety of [true, false]) {
  for (const released of RELEASED) {
    test(`Arena (safety ${safety}): a view kept from a block ${released === "reset" ? "released by reset()" : released === "scope end" ? "released by a scope's end" : "rolled back by free()"} never frees or resizes the block in its place`, () => {
      for (const reuse of REUSE) {
        for (const through of THROUGH) {
          for (const op of ["free", "resize 8", "resize 16", "resize 100"]) {
            const where = `${released}, reused: ${reuse}, through ${through}, ${op}`;
            const { arena, stale, occupant } = scene(safety, released, reuse, through);
            try {
              const detached = stale.byteLength === 0;
              const before = figures(arena);
              let fresh: Uint8Array | null = null;
              const got = outcome(() => {
                if (op === "free") arena.free(stale);
                else fresh = arena.resize(stale, Number(op.slice(7)));
              });
              if (detached || occupant === null) {
                // Memory no block holds: refused, nothing changed.
                assert.equal(got, op === "free" ? "double-free" : "use-after-free", where);
                assert.equal(figures(arena), before, `${where}: figures unchanged`);
              } else if (op === "free") {
                // Counted and ignored, as a free of any block but the most recent one through its own view.
                assert.equal(got, "ok", where);
                const after = JSON.parse(figures(arena));
                const was = JSON.parse(before);
                assert.equal(after.liveAllocations, was.liveAllocations, `${where}: the occupant stays live`);
                assert.equal(after.allocatedBytes, was.allocatedBytes, `${where}: allocatedBytes`);
                assert.equal(after.ignoredFrees, was.ignoredFrees + 1, `${where}: ignoredFrees`);
              } else {
                // A copy elsewhere: the occupant is not grown over or moved.
                assert.equal(got, "ok", where);
                assert.ok(fresh !== null && !overlaps(fresh, occupant), `${where}: the copy overlaps the occupant`);
              }
              if (occupant !== null) {
                assert.ok(occupant.every((b) => b === 0x5c), `${where}: the occupant's bytes are its own`);
                const next = arena.alloc(16);
                next.fill(1);
                assert.ok(!overlaps(next, occupant), `${where}: the next block overlaps the occupant`);
                assert.ok(occupant.every((b) => b === 0x5c), `${where}: the occupant's bytes after the next block`);
              }
            } finally {
              arena.dispose();
            }
          }
        }
      }
    });
  }

  test(`Arena (safety ${safety}): the issue's sequence: the occupant survives a free through the rolled-back view`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    try {
      arena.alloc(16);
      const b = arena.alloc(16);
      arena.free(b); // rolls back the top block
      assert.equal(outcome(() => arena.free(b)), "double-free"); // its memory is no block's
      const b2 = arena.alloc(16); // same memory as b
      assert.equal(addressOf(b2), addressOf(b));
      const live = arena.stats().liveAllocations;
      arena.free(b); // b2 is live: not rolled back
      assert.equal(arena.stats().liveAllocations, live);
      const c = arena.alloc(16);
      c.fill(1);
      b2.fill(2);
      assert.ok(c.every((x) => x === 1) && b2.every((x) => x === 2), "c and b2 do not overlap");
      assert.ok(!overlaps(b2, c));
    } finally {
      arena.dispose();
    }
  });

  test(`Arena (safety ${safety}): the views alloc, array, clone and resize hand out roll their block back; other views of it do not`, () => {
    const arena = new Arena({ capacity: 1 << 16, safety });
    try {
      arena.alloc(16);
      const rolledBack = (make: () => ArrayBufferView, free: (v: ArrayBufferView) => ArrayBufferView) => {
        const view = make();
        const { availableBytes, totalFrees } = arena.stats();
        arena.free(free(view));
        const after = arena.stats();
        return after.totalFrees === totalFrees + 1 && after.availableBytes > availableBytes;
      };
      const own = (v: ArrayBufferView) => v;
      assert.ok(rolledBack(() => arena.alloc(32), own), "alloc");
      assert.ok(rolledBack(() => arena.array(Float32Array, 8), own), "array");
      assert.ok(rolledBack(() => arena.clone(new Float64Array([1, 2, 3])), own), "clone of a Float64Array");
      assert.ok(rolledBack(() => arena.clone(new DataView(new ArrayBuffer(24))), own), "clone of a DataView");
      assert.ok(rolledBack(() => arena.resize(arena.alloc(16), 48), own), "resize in place");
      const observed = new Arena({ capacity: 1 << 16, safety, timing: true }); // array()'s other path
      try {
        const typed = observed.array(Int32Array, 4);
        const { totalFrees } = observed.stats();
        observed.free(typed);
        assert.equal(observed.stats().totalFrees, totalFrees + 1, "array() with timing");
      } finally {
        observed.dispose();
      }
      // Another view of the most recent block is counted and ignored: it cannot be told from one kept from a
      // block rolled back before.
      assert.ok(!rolledBack(() => arena.alloc(32), (v) => new Uint8Array(v.buffer, v.byteOffset, 4)), "alias");
      assert.ok(!rolledBack(() => arena.alloc(32), (v) => (v as Uint8Array).subarray(0)), "subarray(0)");
    } finally {
      arena.dispose();
    }
  });
}

test("Arena.free of a rolled-back block's view after the arena moved to a new segment or chunk is still refused", () => {
  for (const safety of [true, false]) {
    const arena = new Arena({ capacity: 64 << 10, safety });
    try {
      const b = arena.alloc(3000);
      arena.free(b);
      // A block larger than the rest of the segment (with safety) or of the chunk: a new segment or chunk.
      const big = arena.alloc(60 << 10);
      arena.free(big);
      assert.equal(outcome(() => arena.free(b)), "double-free", `safety ${safety}`);
      assert.equal(outcome(() => arena.resize(b, 10)), "use-after-free", `safety ${safety}`);
    } finally {
      arena.dispose();
    }
  }
});
