// MemoryInterface's fast paths (allocateTyped for "pool" and "temporary"
// with no alignment or flags: #poolBlock / #temporaryBlock; deallocate's
// Allocation.release) against hostile arguments and orders: every misuse is
// the documented error and changes nothing, and a seeded model check keeps
// getMemoryStats (used, peak, count per type and overall) equal to what is
// really allocated after every step, budgets met exactly at the edge,
// lookups of live, freed and foreign addresses, frames and dispose().
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type MemoryAllocation, MemoryInterface, type MemoryType } from "../../mod.ts";
import { below, outcome, xorshift32 } from "../_helpers.ts";

type Row = [number, number, number];

function books(memory: MemoryInterface): Row[] {
  return [undefined, "pool", "temporary", "system"].map((type) => {
    const s = memory.getMemoryStats(type as MemoryType | undefined);
    return [s.usedBytes, s.peakUsedBytes, s.allocationCount];
  });
}

test("allocateTyped fast paths: bad sizes and types are TypeError/RangeError and change nothing", () => {
  using memory = new MemoryInterface({ budgets: { pool: 4096, temporary: 8192 }, pressure: false });
  const keep = memory.allocateTyped(64, "pool");
  const before = books(memory);
  const sizes: [unknown, string][] = [
    [0, "RangeError"],
    [-0, "RangeError"],
    [NaN, "RangeError"],
    [1.5, "RangeError"],
    [-1, "RangeError"],
    [Infinity, "RangeError"],
    [2 ** 53, "RangeError"],
    ["64", "TypeError"],
    [64n, "TypeError"],
    [{ valueOf: () => 64 }, "TypeError"],
    [new Number(64), "TypeError"],
    [null, "TypeError"],
    [undefined, "TypeError"],
    [true, "TypeError"],
  ];
  for (const type of ["pool", "temporary"] as const) {
    for (const [size, expected] of sizes) {
      assert.equal(outcome(() => memory.allocateTyped(size as number, type)), expected, `${type} ${String(size)}`);
      assert.equal(
        outcome(() => memory.allocateTyped(size as number, type, undefined, undefined)),
        expected,
        `${type} ${String(size)} (undefined given)`,
      );
    }
    // One past the largest class is the pool's RangeError; the arena serves it (under its budget).
    assert.equal(outcome(() => memory.allocateTyped(4097, "pool")), "RangeError");
    assert.equal(outcome(() => memory.allocateTyped(64, type, null as unknown as number)), "TypeError");
    assert.equal(outcome(() => memory.allocateTyped(64, type, undefined, null as unknown as [])), "TypeError");
  }
  for (const type of [new String("pool"), "POOL", 7, null, Symbol("pool"), { toString: () => "pool" }]) {
    assert.equal(outcome(() => memory.allocateTyped(64, type as MemoryType)), "TypeError", String(type));
  }
  assert.deepEqual(books(memory), before);
  memory.deallocate(keep);
});

test("allocateTyped fast paths: a budget is met exactly at its edge, one byte over is limit-exceeded", () => {
  for (const type of ["pool", "temporary"] as const) {
    for (const budget of [0, 1, 16, 100, 4096]) {
      using memory = new MemoryInterface({ budgets: { [type]: budget }, pressure: false });
      const taken: MemoryAllocation[] = [];
      let used = 0;
      while (used < budget) {
        const size = Math.min(budget - used, 64, 1 + (used % 37));
        taken.push(memory.allocateTyped(size, type));
        used += size;
      }
      assert.equal(memory.getMemoryStats(type).usedBytes, budget, `${type} ${budget}`);
      const before = books(memory);
      for (const call of [() => memory.allocateTyped(1, type), () => memory.allocate({ size: 1, type })]) {
        assert.equal(outcome(call), "limit-exceeded", `${type} ${budget}`);
      }
      assert.deepEqual(books(memory), before, "a refusal changes nothing");
      if (taken.length > 0) {
        memory.deallocate(taken.pop()!);
        assert.equal(outcome(() => memory.allocateTyped(1, type)), "ok", "room again after a deallocation");
      }
    }
  }
});

test("deallocate: every wrong target is its documented error, in every order, and changes nothing", () => {
  using memory = new MemoryInterface({ pressure: false });
  using other = new MemoryInterface({ pressure: false });
  for (const type of ["pool", "temporary"] as const) {
    const a = memory.allocateTyped(48, type);
    const foreign = other.allocateTyped(48, type);
    const before = books(memory);
    const rows: [string, unknown, string][] = [
      ["another interface's allocation", foreign, "mismatched-allocator"],
      ["another interface's bytes", foreign.bytes, "mismatched-allocator"],
      ["another interface's address", foreign.address, "mismatched-allocator"],
      ["an interior view", a.bytes.subarray(1), "invalid-free"],
      ["an interior address", a.address + 1, "invalid-free"],
      ["a prefix view", a.bytes.subarray(0, 4), "double-free"],
      ["a DataView at its first byte", new DataView(a.bytes.buffer, a.bytes.byteOffset, 4), "double-free"],
      ["a fraction", a.address + 0.5, "RangeError"],
      ["a negative address", -a.address, "RangeError"],
      ["a string", String(a.address), "TypeError"],
      ["a forged allocation", { bytes: a.bytes, address: a.address, size: 48 }, "TypeError"],
    ];
    for (const [name, target, expected] of rows) {
      assert.equal(outcome(() => memory.deallocate(target as number)), expected, `${type}: ${name}`);
      assert.deepEqual(books(memory), before, `${type}: ${name} changed nothing`);
      assert.equal(memory.isValidPointer(a.bytes), true);
    }
    assert.equal(memory.isValidPointer(foreign.address), false);
    assert.equal(memory.getAllocationInfo(foreign.bytes), null);
    memory.deallocate(a.address);
    const after = books(memory);
    for (const target of [a, a.bytes, a.address]) {
      assert.ok(["double-free", "invalid-free"].includes(outcome(() => memory.deallocate(target))));
      assert.deepEqual(books(memory), after);
    }
    assert.equal(memory.isValidPointer(a.address), false);
    other.deallocate(foreign);
  }
});

test("frames: temporary blocks made inside and outside frames go with their own frame's end", () => {
  using memory = new MemoryInterface({ pressure: false });
  const outside = memory.allocateTyped(32, "temporary");
  let inner: MemoryAllocation;
  {
    using _scope = memory.frame();
    inner = memory.allocateTyped(64, "temporary");
    memory.beginFrame();
    const innermost = memory.allocateTyped(16, "temporary");
    memory.endFrame();
    assert.equal(outcome(() => memory.deallocate(innermost)), "double-free", "its frame ended");
    assert.equal(memory.getMemoryStats("temporary").usedBytes, 96);
  }
  assert.equal(outcome(() => memory.deallocate(inner)), "double-free");
  assert.equal(memory.getMemoryStats("temporary").usedBytes, 32);
  assert.equal(memory.getMemoryStats("temporary").allocationCount, 1);
  memory.deallocate(outside);
  assert.deepEqual(memory.getMemoryStats("temporary").usedBytes, 0);
});

test("dispose: allocate and deallocate after it are use-after-free (bad arguments stay TypeError/RangeError)", () => {
  const memory = new MemoryInterface({ pressure: false });
  const a = memory.allocateTyped(64, "pool");
  const t = memory.allocateTyped(64, "temporary");
  memory.dispose();
  for (const type of ["pool", "temporary"] as const) {
    assert.equal(outcome(() => memory.allocateTyped(64, type)), "use-after-free");
    assert.equal(outcome(() => memory.allocateTyped(-1, type)), "RangeError");
    assert.equal(outcome(() => memory.allocateTyped("64" as unknown as number, type)), "TypeError");
  }
  for (const target of [a, t, a.bytes]) assert.equal(outcome(() => memory.deallocate(target)), "use-after-free");
  assert.equal(memory.isValidPointer(a.bytes), false);
  assert.equal(a.bytes.length, 0, "the pool's memory went back");
});

test("allocateAsync waiting on a pool budget is woken by a fast-path deallocation", async () => {
  using memory = new MemoryInterface({ budgets: { pool: 128 }, pressure: false });
  const a = memory.allocateTyped(64, "pool");
  const b = memory.allocateTyped(64, "pool");
  const waiting = memory.allocateAsync({ size: 64, type: "pool", timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 5));
  memory.deallocate(a);
  const c = await waiting;
  assert.equal(c.type, "pool");
  assert.equal(memory.getMemoryStats("pool").usedBytes, 128);
  memory.deallocate(b);
  memory.deallocate(c.bytes);
  assert.equal(memory.getMemoryStats("pool").allocationCount, 0);
});

// The model: random fast-path and slow-path allocations of pool, temporary and system memory under budgets
// that are hit, frees by allocation, bytes or address, bad frees, frames, and after every step the stats of
// each type and overall (used, peak, count) equal the model's, lookups find exactly the live blocks.
for (const seed of [7, 0xabcdef, 0x1234]) {
  test(`MemoryInterface fast-path model, seed ${seed}: stats and lookups match every step`, () => {
    const next = xorshift32(seed);
    const budgets = { pool: 16 << 10, temporary: 24 << 10, system: 32 << 10 };
    using memory = new MemoryInterface({ budgets, pressure: false });
    interface Live {
      a: MemoryAllocation;
      type: "pool" | "temporary" | "system";
      depth: number;
    }
    let live: Live[] = [];
    const dead: MemoryAllocation[] = [];
    let depth = 0;
    const peak: Record<string, number> = { pool: 0, temporary: 0, system: 0, all: 0 };
    const used = (type?: string) =>
      live.filter((l) => type === undefined || l.type === type).reduce((s, l) => s + l.a.size, 0);
    for (let step = 0; step < 3000; step++) {
      const where = `seed ${seed} step ${step}`;
      const op = below(next, 100);
      if (op < 50 || live.length === 0) {
        const type = (["pool", "temporary", "system"] as const)[below(next, 3)];
        const size = 1 + below(next, type === "pool" ? 4096 : 3000);
        const how = below(next, 4); // fast path, explicit undefineds, a request, an empty flag list (slow path)
        const before = books(memory);
        // Released temporary blocks the arena still holds count against the budget (temporary_held_test.ts).
        const unreclaimed = memory.getMemoryStats(type).unreclaimedBytes;
        try {
          const a = how === 0
            ? memory.allocateTyped(size, type)
            : how === 1
            ? memory.allocateTyped(size, type, undefined, undefined)
            : how === 2
            ? memory.allocate({ size, type })
            : memory.allocateTyped(size, type, undefined, []);
          assert.equal(a.size, size, where);
          assert.equal(a.bytes.length, size, where);
          assert.equal(a.type, type, where);
          live.push({ a, type, depth: type === "temporary" ? depth : -1 });
        } catch (error) {
          assert.ok(error instanceof AllocationError && error.category === "limit-exceeded", `${where}: ${error}`);
          assert.ok(used(type) + unreclaimed + size > budgets[type], `${where}: refused only over the budget`);
          assert.deepEqual(books(memory), before, `${where}: a refusal changed the stats`);
        }
      } else if (op < 80) {
        const l = live[below(next, live.length)];
        const how = below(next, 3);
        memory.deallocate(how === 0 ? l.a : how === 1 ? l.a.bytes : l.a.address);
        live.splice(live.indexOf(l), 1);
        dead.push(l.a);
      } else if (op < 88) {
        const before = books(memory);
        const l = live[below(next, live.length)];
        const targets: unknown[] = [l.a.bytes.subarray(0, 1), l.a.address + 1, -1, 0.5];
        if (dead.length > 0) targets.push(dead[below(next, dead.length)]);
        const target = targets[below(next, targets.length)];
        assert.notEqual(outcome(() => memory.deallocate(target as number)), "ok", where);
        assert.deepEqual(books(memory), before, `${where}: a bad free changed the stats`);
      } else if (op < 94 && depth < 4) {
        memory.beginFrame();
        depth++;
      } else {
        memory.endFrame();
        for (const l of live) if (l.type === "temporary" && l.depth === depth) dead.push(l.a);
        live = live.filter((l) => !(l.type === "temporary" && l.depth === depth));
        if (depth > 0) depth--;
      }
      for (const type of ["pool", "temporary", "system"]) peak[type] = Math.max(peak[type], used(type));
      peak.all = Math.max(peak.all, used());
      const rows = books(memory);
      const expected: Row[] = [
        [used(), peak.all, live.length],
        ...(["pool", "temporary", "system"] as const).map((type): Row => [
          used(type),
          peak[type],
          live.filter((l) => l.type === type).length,
        ]),
      ];
      assert.deepEqual(rows, expected, where);
      for (const type of ["pool", "temporary", "system"] as const) {
        const s = memory.getMemoryStats(type);
        assert.ok(s.usedBytes + s.unreclaimedBytes <= budgets[type], `${where}: ${type} within its budget`);
      }
      if (step % 100 === 0) {
        for (const l of live) {
          assert.equal(memory.getAllocationInfo(l.a.address), l.a, where);
          assert.equal(memory.isValidPointer(l.a.bytes), true, where);
        }
        for (const a of dead.slice(-20)) {
          // A freed block's address is valid only where a live block now holds it.
          const holder = live.find((l) => l.a.address <= a.address && a.address < l.a.address + l.a.size);
          assert.equal(memory.getAllocationInfo(a.address), holder?.a ?? null, where);
        }
      }
    }
  });
}
