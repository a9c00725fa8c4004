// A randomized model test of MemoryInterface: thousands of seeded operations
// (allocations of every in-process type with random sizes, alignments and
// flags, deallocations by allocation, view or address, frames ending) checked
// against a simple model: live blocks never overlap, keep their alignment and
// contents, the statistics match, lookups find exactly the live blocks, and
// everything is returned at the end.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type MemoryAllocation, MemoryInterface, type MemoryType } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const TYPES: MemoryType[] = ["system", "pool", "temporary", "stack", "network", "video"];

interface Live {
  a: MemoryAllocation;
  byte: number;
  frame: number;
}

function run(seed: number): void {
  const next = xorshift32(seed);
  const budgets = { pool: 256 << 10, system: 1 << 20 };
  using memory = new MemoryInterface({ budgets, pressure: false });
  const live: Live[] = [];
  const stack: Live[] = []; // stack blocks, in allocation order
  let frameDepth = 0;
  let frameId = 0;
  const frameIds: number[] = [0];
  const where = (step: number) => `seed ${seed} step ${step}`;
  const used = (type: MemoryType) => live.filter((l) => l.a.type === type).reduce((s, l) => s + l.a.size, 0);
  const release = (l: Live) => {
    live.splice(live.indexOf(l), 1);
    const s = stack.indexOf(l);
    if (s >= 0) stack.splice(s, 1);
  };

  for (let step = 0; step < 3000; step++) {
    const op = below(next, 100);
    if (op < 55 || live.length === 0) {
      const type = TYPES[below(next, TYPES.length)];
      const size = 1 + below(next, type === "network" ? 1536 : type === "pool" ? 4096 : 3000);
      const alignment = type === "network" || below(next, 3) !== 0 ? undefined : 1 << below(next, 9);
      const flags = below(next, 4) === 0 ? (["zero"] as const) : below(next, 5) === 0 ? (["cacheable"] as const) : [];
      let a: MemoryAllocation;
      try {
        a = memory.allocateTyped(size, type, alignment, [...flags]);
      } catch (error) {
        assert.ok(error instanceof AllocationError && error.category === "limit-exceeded", `${where(step)}: ${error}`);
        const budget = budgets[type as keyof typeof budgets];
        assert.ok(budget !== undefined && used(type) + size > budget, `${where(step)}: refused only over a budget`);
        continue;
      }
      assert.equal(a.bytes.length, size, where(step));
      assert.equal(a.address % a.alignment, 0, `${where(step)}: alignment ${a.alignment}`);
      if (alignment !== undefined) assert.ok(a.alignment >= alignment, where(step));
      if (flags[0] === "zero") assert.ok(a.bytes.every((b) => b === 0), `${where(step)}: zero-filled`);
      if (flags[0] === "cacheable") assert.equal(a.address % 64, 0, `${where(step)}: cacheable`);
      for (const other of live) {
        const apart = a.address + size <= other.a.address || other.a.address + other.a.size <= a.address;
        assert.ok(apart, `${where(step)}: ${type} block overlaps a live ${other.a.type} block`);
      }
      const entry = { a, byte: below(next, 256), frame: type === "temporary" ? frameIds[frameDepth] : -1 };
      a.bytes.fill(entry.byte);
      live.push(entry);
      if (type === "stack") stack.push(entry);
    } else if (op < 90) {
      // Deallocate: the stack's top, or any other block; by allocation, view or address.
      const candidates = live.filter((l) => l.a.type !== "stack" || l === stack.at(-1));
      const l = candidates[below(next, candidates.length)];
      assert.equal(l.a.bytes[l.a.size - 1], l.byte, `${where(step)}: contents kept`);
      const how = below(next, 3);
      memory.deallocate(how === 0 ? l.a : how === 1 ? l.a.bytes : l.a.address);
      release(l);
      assert.equal(memory.isValidPointer(l.a.address), false, `${where(step)}: freed is not valid`);
    } else if (op < 95 && frameDepth < 3) {
      memory.beginFrame();
      frameIds[++frameDepth] = ++frameId;
    } else {
      // End the innermost frame (or, outside frames, everything temporary made outside one).
      const ending = frameIds[frameDepth];
      memory.endFrame();
      for (const l of live.filter((x) => x.a.type === "temporary" && x.frame === ending)) {
        assert.equal(l.a.bytes.length, 0, `${where(step)}: released by endFrame`);
        release(l);
      }
      if (frameDepth > 0) frameDepth--;
      else frameIds[0] = ++frameId;
    }
    if (step % 100 === 0) {
      for (const type of TYPES) {
        const stats = memory.getMemoryStats(type);
        assert.equal(stats.usedBytes, used(type), `${where(step)}: ${type} used`);
        assert.equal(stats.allocationCount, live.filter((l) => l.a.type === type).length, `${where(step)}: count`);
      }
      for (const l of live) assert.equal(memory.getAllocationInfo(l.a.address), l.a, `${where(step)}: lookup`);
    }
  }
  while (stack.length) {
    const top = stack.at(-1)!;
    memory.deallocate(top.a);
    release(top);
  }
  for (const l of [...live]) {
    if (l.a.type === "temporary") continue;
    memory.deallocate(l.a);
    release(l);
  }
  while (frameDepth-- > 0) memory.endFrame();
  memory.endFrame();
  assert.equal(memory.getMemoryStats().allocationCount, 0, `seed ${seed}: everything returned`);
  assert.equal(memory.getMemoryStats().usedBytes, 0);
}

for (const seed of [1, 42, 20240601]) {
  test(`MemoryInterface model, seed ${seed}: no overlap, alignment, contents, stats and lookups hold`, () => run(seed));
}
