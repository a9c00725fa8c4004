// What a frame holds is not counted per allocation: endFrame() takes the
// type's framed bytes less what the older frames hold (see Frame in
// src/hal/_allocation.ts). A seeded model drives every way memory of the
// types frames hold is made (the temporary fast path, the arena through a
// request with an alignment or the "temporary" flag, the system type served
// by the arena, the system allocator, a temporary request that falls back to
// it) and released (in its own frame, from an older frame while newer ones
// are open, after its frame ended: refused), with nested frames ended one by
// one or several at once by a frame() scope, and checks the stats of the
// temporary and system types and overall after every step.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type MemoryAllocation, MemoryInterface, type MemoryType } from "../../mod.ts";
import { below, outcome, xorshift32 } from "../_helpers.ts";

interface Live {
  a: MemoryAllocation;
  /** The frame depth whose end releases it, or -1 (not the arena's: it stays until deallocated). */
  depth: number;
}

for (const seed of [3, 0x5eed, 0xfeed01]) {
  test(`frame accounting model, seed ${seed}: temporary and system stats match after every step`, () => {
    const next = xorshift32(seed);
    using memory = new MemoryInterface({ budgets: { temporary: 64 << 10 }, pressure: false });
    let live: Live[] = [];
    const ended: MemoryAllocation[] = [];
    let depth = 0;
    const scopes: { scope: Disposable; depth: number }[] = [];
    const make = (): MemoryAllocation => {
      const size = 1 + below(next, 2000);
      switch (below(next, 7)) {
        case 0:
        case 1:
          return memory.allocateTyped(size, "temporary");
        case 2:
          return memory.allocate({ size, type: "temporary", alignment: 64 });
        case 3:
          return memory.allocate({ size, flags: ["temporary"] });
        case 4:
          return memory.allocate({ size, type: "system", preferredAllocator: "arena" });
        case 5:
          return memory.allocate(size);
        default:
          return memory.allocate({ size: 1 + below(next, 64 << 10), type: "temporary", allowFallback: true });
      }
    };
    for (let step = 0; step < 2500; step++) {
      const where = `seed ${seed} step ${step}`;
      const op = below(next, 100);
      if (op < 45 || live.length === 0) {
        let a: MemoryAllocation;
        try {
          a = make();
        } catch (error) {
          // The temporary budget is met often on purpose (what makes requests fall back).
          assert.ok(error instanceof AllocationError && error.category === "limit-exceeded", `${where}: ${error}`);
          continue;
        }
        live.push({ a, depth: a.allocator === "arena" ? depth : -1 });
      } else if (op < 75) {
        // Any live one: its own frame's, an older frame's while newer ones are open, or one outside frames.
        const l = live.splice(below(next, live.length), 1)[0];
        memory.deallocate(below(next, 2) === 0 ? l.a : l.a.bytes);
        ended.push(l.a);
      } else if (op < 80 && ended.length > 0) {
        const a = ended[below(next, ended.length)];
        assert.equal(outcome(() => memory.deallocate(a)), "double-free", where);
      } else if (op < 88 && depth < 5) {
        if (below(next, 3) === 0) scopes.push({ scope: memory.frame(), depth: depth + 1 });
        else memory.beginFrame();
        depth++;
      } else if (op < 92 && scopes.length > 0) {
        // A frame() scope's end ends it and every frame opened after it.
        const { scope, depth: at } = scopes.pop()!;
        scope[Symbol.dispose]();
        for (const l of live) if (l.depth >= at) ended.push(l.a);
        live = live.filter((l) => l.depth < at);
        depth = at - 1;
        while (scopes.length > 0 && scopes[scopes.length - 1].depth > depth) scopes.pop();
      } else {
        memory.endFrame();
        for (const l of live) if (l.depth === depth) ended.push(l.a);
        live = live.filter((l) => l.depth !== depth);
        if (depth > 0) depth--;
        while (scopes.length > 0 && scopes[scopes.length - 1].depth > depth) scopes.pop();
      }
      for (const type of [undefined, "temporary", "system"] as (MemoryType | undefined)[]) {
        const mine = live.filter((l) => type === undefined || l.a.type === type);
        const stats = memory.getMemoryStats(type);
        assert.deepEqual(
          [stats.usedBytes, stats.allocationCount],
          [mine.reduce((s, l) => s + l.a.size, 0), mine.length],
          `${where}: ${type ?? "overall"}`,
        );
      }
    }
    while (depth-- > 0) memory.endFrame();
    for (const l of live) if (l.depth === -1) memory.deallocate(l.a);
    memory.endFrame();
    assert.deepEqual(
      [memory.getMemoryStats().usedBytes, memory.getMemoryStats().allocationCount],
      [0, 0],
    );
  });
}
