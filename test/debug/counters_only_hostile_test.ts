// A DebugAllocator with counters only (`safety: false`) against hostile
// backings and hostile frees: a block must never be confused with another
// one, and stats() and leaks() must say what is really allocated after every
// step. The flat paths (src/debug/_hot_path.ts allocCounted/freeCounted) and
// the general path are both driven: frees through other views of a block,
// views over detached and shrunk buffers, lying subclasses, backings that
// hand out the same memory twice, misaligned blocks, and a seeded model check.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Allocator, DebugAllocator, PoolAllocator, SystemAllocator } from "../../mod.ts";
import { below, outcome, xorshift32 } from "../_helpers.ts";

const TA = Object.getPrototypeOf(Uint8Array.prototype);
const realOffset = Object.getOwnPropertyDescriptor(TA, "byteOffset")!.get!;

// A backing whose tryAlloc is `give`; every other call goes to `base`.
function backing(base: Allocator, give: (size: number, align?: number) => unknown): Allocator {
  return {
    kind: base.kind,
    alloc: (size, align) => give(size, align) as Uint8Array,
    tryAlloc: (size, align) => give(size, align) as Uint8Array,
    array: (ctor, length, align) => base.array(ctor, length, align),
    free: (view) => base.free(view),
    resize: (view, size) => base.resize(view, size),
    owns: (view) => base.owns(view),
    stats: () => base.stats(),
  };
}

function books(debug: DebugAllocator): [number, number, number[]] {
  const stats = debug.stats();
  return [stats.liveAllocations, stats.allocatedBytes, debug.leaks().map((l) => l.size).sort((a, b) => a - b)];
}

test("counters only: a backing that hands out a live block again is corruption, and the first block keeps its record", () => {
  const system = new SystemAllocator();
  const same = system.alloc(256);
  const debug = new DebugAllocator(backing(system, (size) => same.subarray(0, size)), { safety: false });
  const first = debug.alloc(100);
  for (const call of [() => debug.alloc(40), () => debug.tryAlloc(40), () => debug.alloc(40, 8)]) {
    assert.equal(outcome(call), "corruption");
  }
  assert.deepEqual(books(debug), [1, 100, [100]], "nothing recorded for the twin");
  // The free through the first view frees the first block (before the fix it freed the twin's record,
  // and the first block stayed in leaks() for good).
  debug.free(first);
  assert.deepEqual(books(debug), [0, 0, []]);
  assert.equal(debug.deinit(), "ok");
});

test("counters only: a block from a subclass with lying byteOffset/buffer/byteLength is recorded where it really is", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const other = pool.alloc(64); // someone else's block at the place the liar names
  class Liar extends Uint8Array {
    override get byteOffset(): number {
      return realOffset.call(other);
    }
    override get byteLength(): number {
      return 1 << 20;
    }
  }
  const debug = new DebugAllocator(
    backing(pool, (size) => {
      const view = pool.alloc(64);
      return new Liar(view.buffer as ArrayBuffer, realOffset.call(view), size);
    }),
    { safety: false },
  );
  const x = debug.alloc(32);
  const y = debug.alloc(32);
  assert.deepEqual(books(debug), [2, 64, [32, 32]]);
  // A plain view at y's real first byte is a view of y: it frees y, counted (before: the backing freed it
  // uncounted, as both blocks were recorded at the liar's offset).
  debug.free(new Uint8Array(y.buffer, realOffset.call(y), 32));
  assert.deepEqual(books(debug), [1, 32, [32]]);
  debug.free(x);
  assert.deepEqual(books(debug), [0, 0, []]);
  assert.equal(pool.stats().liveAllocations, 1, "only the other block is left in the pool");
  assert.equal(debug.deinit(), "ok");
  pool.free(other);
});

test("safety checks: canaries go where the backing's block really is, not where a lying subclass says", () => {
  const pool = new PoolAllocator({ blockSize: 256 });
  const other = pool.alloc(256);
  other.fill(0x11);
  class Liar extends Uint8Array {
    override get byteOffset(): number {
      return realOffset.call(other);
    }
  }
  const debug = new DebugAllocator(
    backing(pool, (size) => {
      const view = pool.tryAlloc(size);
      return view === null ? null : new Liar(view.buffer as ArrayBuffer, realOffset.call(view), size);
    }),
  );
  const block = debug.alloc(64);
  block.fill(0x22);
  assert.ok(other.every((b) => b === 0x11), "the other block's bytes were not written");
  assert.notEqual(realOffset.call(block) - 32, realOffset.call(other));
  debug.free(block);
  assert.equal(debug.deinit(), "ok");
  pool.free(other);
});

test("counters only: an object made from Uint8Array.prototype, or a Proxy of a block, is corruption (not TypeError)", () => {
  const system = new SystemAllocator();
  const real = system.alloc(64);
  const answers: Record<string, () => unknown> = {
    "Object.create(Uint8Array.prototype)": () => Object.create(Uint8Array.prototype),
    "a Proxy of a real block": () => new Proxy(real, {}),
  };
  for (const [name, answer] of Object.entries(answers)) {
    for (const safety of [false, true]) {
      const debug = new DebugAllocator(backing(system, answer), { safety });
      assert.equal(outcome(() => debug.alloc(40)), "corruption", `${name}, safety ${safety}`);
      assert.deepEqual(books(debug), [0, 0, []]);
      assert.equal(debug.deinit(), "ok");
    }
  }
  system.free(real);
});

test("counters only: a block not aligned as asked is corruption, nothing recorded", () => {
  const pool = new PoolAllocator({ blockSize: 128 });
  const debug = new DebugAllocator(
    backing(pool, (size) => {
      const view = pool.alloc(128);
      return new Uint8Array(view.buffer, realOffset.call(view) + 8, size); // 8-aligned at best
    }),
    { safety: false },
  );
  assert.equal(outcome(() => debug.alloc(32, 64)), "corruption");
  assert.equal(outcome(() => debug.tryAlloc(32, 32)), "corruption");
  assert.deepEqual(books(debug), [0, 0, []]);
  assert.equal(debug.deinit(), "ok");
});

test("a view its shrunk resizable buffer no longer covers never frees the block at offset 0", () => {
  for (const safety of [false, true]) {
    const memory = new ArrayBuffer(1024, { maxByteLength: 1024 });
    let next = 0;
    const freed: ArrayBufferView[] = [];
    const fake = backing(new SystemAllocator(), (size) => {
      const view = new Uint8Array(memory, next, size);
      next += 256;
      return view;
    });
    fake.free = (view) => void freed.push(view);
    const debug = new DebugAllocator(fake, { safety });
    const a = debug.alloc(32);
    const b = debug.alloc(32);
    assert.ok(realOffset.call(b) > 0);
    memory.resize(200); // b is out of bounds now: it reads offset 0 and length 0
    const before = books(debug);
    const result = outcome(() => debug.free(b));
    assert.ok(result === "ok" || result === "invalid-free", `safety ${safety}: ${result}`);
    assert.deepEqual(books(debug), before, `safety ${safety}: nothing counted as freed`);
    assert.ok(!freed.includes(a), `safety ${safety}: the block at offset 0 went back to the backing`);
    memory.resize(1024);
    debug.free(a);
    assert.equal(books(debug)[0], 1, `safety ${safety}`);
    debug.dispose();
  }
});

test("counters only: frees through other views of a block, double frees and the backing's own frees", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  const debug = new DebugAllocator(pool, { safety: false });
  const a = debug.alloc(48);
  // A prefix view and a DataView at the first byte are views of the block (counters only frees by address).
  debug.free(a.subarray(0, 1));
  assert.deepEqual(books(debug), [0, 0, []]);
  assert.equal(outcome(() => debug.free(a)), "double-free", "the pool judges a second free");
  assert.deepEqual(books(debug), [0, 0, []]);
  const b = debug.alloc(48);
  debug.free(new DataView(b.buffer, realOffset.call(b), 4));
  assert.deepEqual(books(debug), [0, 0, []]);
  // An interior view is no block's first byte: the pool judges it, nothing is counted.
  const c = debug.alloc(48);
  assert.equal(outcome(() => debug.free(c.subarray(16))), "invalid-free");
  assert.deepEqual(books(debug), [1, 48, [48]]);
  // A view over a transferred copy of nothing of ours: not a block of this allocator.
  assert.notEqual(outcome(() => debug.free(new Uint8Array(8))), "ok");
  assert.deepEqual(books(debug), [1, 48, [48]]);
  // A forged object is not a view at all.
  const forged = { buffer: c.buffer, byteOffset: realOffset.call(c), byteLength: 48 };
  assert.equal(outcome(() => debug.free(forged as unknown as Uint8Array)), "TypeError");
  // A subclass view whose getters lie about where it is: the real place decides.
  class Liar extends Uint8Array {
    override get byteOffset(): number {
      return realOffset.call(c);
    }
  }
  const d = debug.alloc(48);
  const liar = new Liar(d.buffer as ArrayBuffer, realOffset.call(d), 48);
  debug.free(liar);
  assert.deepEqual(books(debug), [1, 48, [48]], "the liar freed d, not c");
  debug.free(c);
  assert.deepEqual(books(debug), [0, 0, []]);
  assert.equal(pool.stats().liveAllocations, 0);
  assert.equal(debug.deinit(), "ok");
});

test("counters only over a DebugAllocator (safety on): frees through prefix views count once on both", () => {
  const inner = new DebugAllocator(new PoolAllocator({ blockSize: 128 }));
  const outer = new DebugAllocator(inner, { safety: false });
  const blocks = Array.from({ length: 8 }, (_, i) => outer.alloc(8 + i * 8));
  assert.equal(inner.stats().liveAllocations, 8);
  for (const [i, block] of blocks.entries()) {
    outer.free(i % 2 === 0 ? block : block.subarray(0, 1));
    assert.equal(outer.stats().liveAllocations, 7 - i);
    assert.equal(inner.stats().liveAllocations, 7 - i);
  }
  assert.equal(outcome(() => outer.free(blocks[0])), "double-free", "the inner allocator judges it");
  assert.equal(outer.deinit(), "ok");
  assert.equal(inner.deinit(), "ok");
});

// A model check: random allocations (sizes, alignments, traced or not) and frees through the block, a prefix
// view, a DataView, twice, or an interior view, on a pool and a system backing; stats() and leaks() must match
// the model after every step, and a refused free must change nothing.
for (const seed of [1, 0xbeef, 0x5eed]) {
  test(`counters only model, seed ${seed}: stats() and leaks() match every step`, () => {
    const next = xorshift32(seed);
    const backings: [() => Allocator, (number | undefined)[]][] = [
      [() => new PoolAllocator({ blockSize: 512 }), [undefined, 4, 8, 16]],
      [() => new SystemAllocator(), [undefined, 8, 16, 32, 64]],
    ];
    for (const [make, aligns] of backings) {
      const base = make();
      const debug = new DebugAllocator(base, { safety: false, stackTraceFrames: 4, sampleEvery: 3 });
      const live = new Map<Uint8Array, { size: number; align: number }>();
      const freed: Uint8Array[] = [];
      let peak = 0, used = 0;
      for (let step = 0; step < 2000; step++) {
        const where = `seed ${seed} step ${step}`;
        const op = below(next, 10);
        if (op < 5 || live.size === 0) {
          const size = 1 + below(next, 500);
          const align = aligns[below(next, aligns.length)];
          const view = debug.alloc(size, align);
          assert.ok(view.byteLength >= size, where);
          live.set(view, { size, align: align ?? 16 });
          used += size;
          peak = Math.max(peak, used);
        } else if (op < 8) {
          const views = [...live.keys()];
          const view = views[below(next, views.length)];
          const how = below(next, 3);
          const target = how === 0
            ? view
            : how === 1
            ? view.subarray(0, 1)
            : new DataView(view.buffer, realOffset.call(view), 1);
          debug.free(target);
          used -= live.get(view)!.size;
          live.delete(view);
          freed.push(view);
        } else {
          const before = books(debug);
          const views = [...live.keys()];
          const bad = op === 8 || freed.length === 0 ? views[below(next, views.length)].subarray(1) : freed.at(-1)!;
          // An interior view or a freed block (the backing judges it; a freed one may be reused already).
          if (bad.byteLength > 0 && !live.has(bad)) {
            const result = outcome(() => debug.free(bad));
            if (result !== "ok") assert.deepEqual(books(debug), before, `${where}: a refused free changed the books`);
            else {
              // The pool reused the freed block's place for a live block, which the free released.
              const owner = views.find((v) => v.buffer === bad.buffer && realOffset.call(v) === realOffset.call(bad));
              assert.ok(owner !== undefined, `${where}: a free of no live block was accepted`);
              used -= live.get(owner)!.size;
              live.delete(owner);
            }
          }
        }
        const stats = debug.stats();
        assert.equal(stats.liveAllocations, live.size, where);
        assert.equal(stats.allocatedBytes, used, where);
        if (step % 50 === 0) {
          const leaks = debug.leaks();
          assert.deepEqual(
            leaks.map((l) => `${l.size}/${l.align}`).sort(),
            [...live.values()].map((l) => `${l.size}/${l.align}`).sort(),
            where,
          );
          for (const leak of leaks) assert.ok(leak.align === 16 || leak.address % leak.align === 0, where);
        }
      }
      assert.equal(debug.stats().peakBytes, peak);
      for (const view of live.keys()) debug.free(view);
      assert.deepEqual(books(debug), [0, 0, []]);
      assert.equal(debug.deinit(), "ok");
    }
  });
}
