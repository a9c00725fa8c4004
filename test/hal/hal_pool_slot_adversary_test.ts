// MemoryInterface's pool fast path frees a block by its slot index, without
// looking at the view. A block whose chunk's ArrayBuffer was transferred away
// (bytes.buffer.transfer()) must still be refused as `free` of it is: the
// deallocation throws AllocationError("corruption") changing no figure, the
// class pool ends, and its memory is never handed out again. On the code
// before this fix the slot went back silently (deallocate returned, the
// figures dropped) and the pool kept running on a chunk another buffer
// reaches. Plus a seeded model (interface blocks by every form and path,
// the pool's own blocks through the guard, refusals) as a regression test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type MemoryAllocation, MemoryInterface } from "../../mod.ts";
import { below, outcome, xorshift32 } from "../_helpers.ts";

const figures = (memory: MemoryInterface) => {
  const s = memory.getMemoryStats("pool");
  const g = memory.getAllocator("pool").stats();
  return { used: s.usedBytes, count: s.allocationCount, poolLive: g.liveAllocations, poolBytes: g.allocatedBytes };
};

// 64-byte blocks: 1024 to a chunk. `at` picks the stolen block; `before` runs between the theft and the deallocate.
const cases: {
  name: string;
  count: number;
  at: number;
  before?: (live: MemoryAllocation[]) => MemoryAllocation[];
  form: string;
}[] = [
  { name: "first chunk", count: 8, at: 3, form: "allocation" },
  { name: "by address", count: 8, at: 5, form: "address" },
  { name: "a grown chunk", count: 1500, at: 1200, form: "allocation" },
  {
    name: "after a free in another chunk",
    count: 1500,
    at: 100,
    form: "allocation",
    before: (live) => live.splice(1300, 1),
  },
];

for (const c of cases) {
  test(`a pool block whose buffer was transferred: deallocate throws "corruption", ${c.name}`, () => {
    using memory = new MemoryInterface({ pressure: false });
    const live = Array.from({ length: c.count }, () => memory.allocateTyped(64, "pool"));
    live.forEach((a, i) => a.bytes.fill((i % 250) + 1));
    const stolenBlock = live[c.at];
    const address = stolenBlock.address;
    const stolen = (stolenBlock.bytes.buffer as ArrayBuffer).transfer();
    const removed = c.before?.(live) ?? [];
    for (const a of removed) memory.deallocate(a);
    const before = figures(memory);
    const target = c.form === "address" ? address : stolenBlock;
    assert.equal(outcome(() => memory.deallocate(target)), "corruption");
    assert.deepEqual(figures(memory), before, "the refused deallocate changed the figures");
    // The pool ended: nothing of it is handed out again, and the stolen memory keeps what it held.
    assert.equal(outcome(() => memory.allocateTyped(64, "pool")), "corruption");
    assert.equal(outcome(() => memory.allocateTyped(50, "pool")), "corruption");
    const bytes = new Uint8Array(stolen);
    const offset = c.at % 1024 * 64;
    assert.ok(bytes.subarray(offset, offset + 64).every((b) => b === (c.at % 250) + 1));
    // Other classes are untouched.
    const other = memory.allocateTyped(128, "pool");
    other.bytes.fill(9);
    memory.deallocate(other);
  });
}

// Interface blocks by every path and size class, the pool's own blocks through the guard, deallocation by
// allocation / bytes / address, refusals (double free, a dead or foreign view, another interface's, the guard
// freeing an interface block), stats and defragment between: after each check, no two live blocks share
// bytes, the figures match the model, and a refused call changed nothing.
const SIZES = [1, 16, 17, 32, 33, 64, 65, 4095, 4096];
for (const seed of [20261201, 97]) {
  test(`pool slots, seeded model (seed ${seed})`, async () => {
    const BUDGET = 96 * 1024;
    using memory = new MemoryInterface({ pressure: false, budgets: { pool: BUDGET } });
    using other = new MemoryInterface({ pressure: false });
    const guard = memory.getAllocator("pool");
    const next = xorshift32(seed);
    const live: { a: MemoryAllocation; tag: number }[] = [];
    const mine: { v: Uint8Array; tag: number }[] = [];
    const dead: MemoryAllocation[] = [];
    const foreign = other.allocateTyped(64, "pool");
    let tags = 0;
    const tag = () => (tags++ % 250) + 1;
    const used = () => live.reduce((n, l) => n + l.a.size, 0);
    const check = (step: number) => {
      for (const { a, tag } of live) {
        assert.ok(a.bytes.every((b) => b === tag), `step ${step}: block ${tag} overwritten`);
      }
      for (const { v, tag } of mine) assert.ok(v.every((b) => b === tag), `step ${step}: own block ${tag} overwritten`);
      assert.deepEqual(figures(memory), {
        used: used(),
        count: live.length,
        poolLive: live.length + mine.length,
        poolBytes: used() + mine.reduce((n, m) => n + m.v.length, 0),
      }, `step ${step}`);
    };
    const refused = (step: number, fn: () => unknown, categories: string[]) => {
      const before = figures(memory);
      const got = outcome(fn);
      assert.ok(categories.includes(got), `step ${step}: ${got}, expected one of ${categories}`);
      assert.deepEqual(figures(memory), before, `step ${step}: a refused call changed the figures`);
    };
    for (let step = 0; step < 6000; step++) {
      const r = below(next, 100);
      if (r < 35 || live.length === 0) {
        const size = SIZES[below(next, SIZES.length)];
        const how = below(next, 5);
        let a: MemoryAllocation;
        try {
          if (how === 0) a = memory.allocateTyped(size, "pool", 16); // the slow path
          else if (how === 1) a = memory.allocateTyped(size, "pool", undefined, ["zero"]);
          else if (how === 2) a = await memory.allocateAsync({ size, type: "pool" });
          else a = memory.allocateTyped(size, "pool");
        } catch (error) {
          assert.ok(error instanceof AllocationError && error.category === "limit-exceeded", String(error));
          assert.ok(used() + size > BUDGET, `step ${step}: refused under the budget`);
          continue;
        }
        const t = tag();
        a.bytes.fill(t);
        live.push({ a, tag: t });
      } else if (r < 45) {
        const v = guard.alloc(SIZES[below(next, SIZES.length)]);
        const t = tag();
        v.fill(t);
        mine.push({ v, tag: t });
      } else if (r < 52 && mine.length > 0) {
        guard.free(mine.splice(below(next, mine.length), 1)[0].v);
      } else if (r < 80) {
        const [{ a }] = live.splice(below(next, live.length), 1);
        const form = below(next, 3);
        memory.deallocate(form === 0 ? a : form === 1 ? a.bytes : a.address);
        dead.push(a);
        if (dead.length > 50) dead.shift();
      } else if (r < 84 && dead.length > 0) {
        const a = dead[below(next, dead.length)];
        refused(step, () => memory.deallocate(a), ["double-free"]);
        refused(step, () => memory.deallocate(a.bytes), ["double-free", "invalid-free"]);
      } else if (r < 90) {
        const { a } = live[below(next, live.length)];
        refused(step, () => guard.free(a.bytes), ["mismatched-allocator"]);
        refused(step, () => guard.resize(a.bytes, 1), ["mismatched-allocator"]);
        refused(step, () => memory.deallocate(a.bytes.slice()), ["invalid-free", "TypeError"]);
        if (a.size > 1) refused(step, () => memory.deallocate(a.bytes.subarray(1)), ["invalid-free", "TypeError"]);
        refused(step, () => memory.deallocate(foreign), ["mismatched-allocator"]);
        refused(step, () => other.deallocate(a), ["mismatched-allocator"]);
      } else if (r < 93) {
        memory.defragment();
      } else {
        memory.getMemoryStats();
      }
      if (step % 61 === 0) check(step);
    }
    check(-1);
    for (const { a } of live.splice(0)) memory.deallocate(a);
    for (const { v } of mine.splice(0)) guard.free(v);
    check(-2);
    const kept = dead.slice();
    memory.dispose();
    for (const a of kept) assert.equal(outcome(() => memory.deallocate(a)), "use-after-free");
  });
}
