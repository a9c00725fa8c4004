import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  AllocationError,
  Arena,
  type ArenaResetMode,
  type ArenaScope,
  nativeInfo,
  SystemAllocator,
} from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

interface ModelBlock {
  view: Uint8Array;
  size: number;
  byte: number;
  /** Freed out of order: still holds its memory until reclaimed. */
  dead: boolean;
}

function randomSize(next: () => number): number {
  const r = below(next, 100);
  if (r < 5) return 0;
  if (r < 85) return 1 + below(next, 512);
  if (r < 98) return 513 + below(next, 8192);
  return 65_536 + below(next, 200_000); // bigger than a chunk
}

function modelTest(safety: boolean, seed: number): void {
  const next = xorshift32(seed);
  const arena = new Arena({ capacity: 64 << 10, safety });
  const live: ModelBlock[] = [];
  const scopes: { handle: ArenaScope; liveAtStart: number }[] = [];
  let last: ModelBlock | null = null;
  let allocations = 0, frees = 0, ignored = 0, peak = 0;
  const where = (step: number) => `seed ${seed} safety ${safety} step ${step}`;
  const allocatedBytes = () => live.reduce((sum, b) => sum + b.size, 0);
  const checkBlock = (b: ModelBlock, step: number) => {
    assert.equal(b.view.length, b.size, `${where(step)}: length`);
    if (b.size > 0) {
      assert.equal(b.view[0], b.byte, `${where(step)}: first byte`);
      assert.equal(b.view[b.size - 1], b.byte, `${where(step)}: last byte`);
    }
  };
  const release = (blocks: ModelBlock[], step: number, detached: boolean) => {
    for (const b of blocks) {
      if (detached) assert.equal(b.view.length, 0, `${where(step)}: released view detached`);
    }
    frees += blocks.length;
  };

  for (let step = 0; step < 20_000; step++) {
    const op = below(next, 100);
    const candidates = live.filter((b) => !b.dead);
    if (op < 45 || candidates.length === 0) {
      const size = randomSize(next);
      const align = 1 << below(next, 13);
      const view = arena.alloc(size, align);
      assert.equal(view.length, size);
      if (size > 0) {
        // alloc(0) views hold no memory: not counted, never the block free() rolls back.
        assert.equal(addressOf(view) % align, 0, `${where(step)}: alignment ${align}`);
        const block = { view, size, byte: below(next, 256), dead: false };
        view.fill(block.byte);
        live.push(block);
        last = block;
        allocations++;
      } else {
        arena.free(view);
      }
    } else if (op < 65) {
      const block: ModelBlock = below(next, 2) === 0 && last && !last.dead
        ? last
        : candidates[below(next, candidates.length)];
      checkBlock(block, step);
      arena.free(block.view);
      if (block === last) {
        live.pop();
        frees++;
        last = null;
      } else {
        block.dead = true;
        ignored++;
      }
    } else if (op < 80) {
      const block: ModelBlock = below(next, 2) === 0 && last && !last.dead
        ? last
        : candidates[below(next, candidates.length)];
      checkBlock(block, step);
      const newSize = randomSize(next);
      const old = block.view;
      const fresh = arena.resize(old, newSize);
      assert.equal(fresh.length, newSize);
      const kept = Math.min(block.size, newSize);
      if (kept > 0) {
        assert.equal(fresh[0], block.byte, `${where(step)}: resize kept first byte`);
        assert.equal(fresh[kept - 1], block.byte, `${where(step)}: resize kept last byte`);
      }
      if (newSize === 0) {
        // resize to 0 frees the block.
        if (block === last) {
          live.pop();
          frees++;
          last = null;
        } else {
          block.dead = true;
          ignored++;
        }
      } else if (block === last && addressOf(fresh) === addressOf(old)) {
        // Grown or shrunk in place (with safety, a block grown past its segment has its view over a new one).
        block.view = fresh;
        block.size = newSize;
        fresh.fill(block.byte);
      } else {
        block.dead = true;
        ignored++;
        const moved: ModelBlock = { view: fresh, size: newSize, byte: block.byte, dead: false };
        live.push(moved);
        last = moved;
        allocations++;
        fresh.fill(block.byte);
      }
    } else if (op < 90) {
      if (scopes.length < 8) {
        scopes.push({ handle: arena.scope(), liveAtStart: live.length });
        last = null;
      }
    } else if (op < 99) {
      if (scopes.length > 0) {
        const depth = below(next, scopes.length);
        const { handle, liveAtStart } = scopes[depth];
        handle.end();
        assert.equal(handle.active, false);
        for (const inner of scopes.slice(depth)) {
          assert.equal(inner.handle.active, false, `${where(step)}: inner ended`);
        }
        scopes.length = depth;
        release(live.splice(liveAtStart), step, safety);
        last = null;
      }
    } else {
      const modes: ArenaResetMode[] = ["free-all", "retain-capacity", { retainLimit: 128 << 10 }];
      const mode = modes[below(next, modes.length)];
      arena.reset(mode);
      for (const s of scopes) assert.equal(s.handle.active, false);
      scopes.length = 0;
      release(live.splice(0), step, safety || mode === "free-all");
      last = null;
    }
    peak = Math.max(peak, allocatedBytes());

    const stats = arena.stats();
    assert.equal(stats.allocatedBytes, allocatedBytes(), `${where(step)}: allocatedBytes`);
    assert.equal(stats.liveAllocations, live.length, `${where(step)}: liveAllocations`);
    assert.equal(stats.totalAllocations, allocations, `${where(step)}: totalAllocations`);
    assert.equal(stats.totalFrees, frees, `${where(step)}: totalFrees`);
    assert.equal(stats.ignoredFrees, ignored, `${where(step)}: ignoredFrees`);
    assert.equal(stats.peakBytes, peak, `${where(step)}: peakBytes`);
    assert.equal(stats.scopeDepth, scopes.length, `${where(step)}: scopeDepth`);
    assert.ok(stats.availableBytes >= 0 && stats.overheadBytes >= 0, `${where(step)}: available/overhead`);
    assert.equal(stats.capacityBytes, stats.allocatedBytes + stats.availableBytes + stats.overheadBytes);

    if (step % 250 === 0) {
      for (const b of live) checkBlock(b, step);
      const ranges = live.filter((b) => b.size > 0).map((b) => [addressOf(b.view), b.size])
        .sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < ranges.length; i++) {
        assert.ok(ranges[i - 1][0] + ranges[i - 1][1] <= ranges[i][0], `${where(step)}: blocks overlap`);
      }
    }
  }
  const views = live.map((b) => b.view);
  arena.reset("free-all");
  const end = arena.stats();
  assert.equal(end.capacityBytes, 0);
  assert.equal(end.liveAllocations, 0);
  for (const view of views) assert.equal(view.length, 0, "free-all detaches every view");
}

test("Arena matches a model over 20,000 seeded steps (safety on)", () => modelTest(true, 0xa7e4a1));
test("Arena matches a model over 20,000 seeded steps (safety off)", () => modelTest(false, 0xa7e4a2));

test("Arena scope with safety: finished scopes' views have length 0, earlier views stay valid", () => {
  const arena = new Arena({ capacity: 4096 });
  const before = arena.alloc(32).fill(1);
  let outer: Uint8Array, inner: Uint8Array, big: Uint8Array;
  const order: number[] = [];
  arena.observe({ onScopeExit: (scope) => order.push(scope.depth) });
  {
    using _a = arena.scope();
    outer = arena.alloc(100).fill(2);
    {
      using _b = arena.scope();
      inner = arena.alloc(100).fill(3);
      big = arena.alloc(3 << 20).fill(4); // grows into a new chunk inside the scope
    }
    assert.equal(inner.length, 0);
    assert.equal(big.length, 0);
    assert.equal(outer.length, 100);
    assert.equal(outer[99], 2);
  }
  assert.deepEqual(order, [2, 1], "inner scope released first");
  assert.equal(outer.length, 0);
  assert.equal(before.length, 32);
  assert.equal(before[31], 1);
  arena.reset();
  assert.equal(before.length, 0, "reset detaches with safety");
  arena.reset("free-all");
});

test("Arena scope with safety: false leaves released views readable", () => {
  const arena = new Arena({ capacity: 4096, safety: false });
  let temp: Uint8Array;
  {
    using _scope = arena.scope();
    temp = arena.alloc(10).fill(9);
  }
  assert.equal(temp.length, 10);
  const reused = arena.alloc(10).fill(5);
  assert.equal(temp[0], 5, "the released memory was handed out again");
  assert.equal(addressOf(reused), addressOf(temp));
  arena.reset("free-all");
  assert.equal(temp.length, 0, "chunks returned to the backing are always detached");
});

test("ArenaScope.end() of an outer scope ends the inner ones first; end() twice is a no-op", () => {
  const arena = new Arena();
  const outer = arena.scope();
  const inner = arena.scope();
  arena.alloc(10);
  assert.equal(inner.depth, 2);
  outer.end();
  assert.equal(inner.active, false);
  assert.equal(outer.active, false);
  outer.end();
  inner.end();
  assert.equal(arena.stats().scopeDepth, 0);
  assert.equal(arena.stats().liveAllocations, 0);
  const s = outer.stats();
  assert.equal(s.allocations, 1);
  assert.equal(s.bytes, 10);
  assert.ok(s.lifetimeMs >= 0);
  arena.reset("free-all");
});

test("Arena.free() rolls back the most recent block and ignores others", () => {
  const arena = new Arena({ capacity: 4096 });
  const a = arena.alloc(100);
  const b = arena.alloc(100);
  arena.free(a);
  assert.equal(arena.stats().ignoredFrees, 1);
  arena.free(b);
  const c = arena.alloc(100);
  assert.equal(addressOf(c), addressOf(b), "b's memory was reused");
  assert.equal(arena.stats().liveAllocations, 2);
  arena.reset("free-all");
});

test("Arena growth policies: fixed fails, linear adds capacity, exponential doubles, adaptive merges on reset", () => {
  const page = nativeInfo().pageSize;
  const fixed = new Arena({ capacity: page, growth: "fixed" });
  fixed.alloc(page);
  assert.equal(fixed.tryAlloc(1), null);
  assert.throws(() => fixed.alloc(1), (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory");
  assert.equal(fixed.stats().failedAllocations, 2);

  const linear = new Arena({ capacity: page, growth: "linear" });
  for (let i = 0; i < 4; i++) linear.alloc(page);
  assert.equal(linear.stats().capacityBytes, 4 * page);

  const exponential = new Arena({ capacity: page, growth: "exponential" });
  for (let i = 0; i < 7; i++) exponential.alloc(page);
  assert.equal(exponential.stats().capacityBytes, page * (1 + 2 + 4)); // chunks of 1, 2 and 4 pages

  const adaptive = new Arena({ capacity: page, growth: "adaptive" });
  for (let i = 0; i < 7; i++) adaptive.alloc(page);
  const before = adaptive.stats();
  assert.ok(before.chunks > 1);
  adaptive.reset("retain-capacity");
  const after = adaptive.stats();
  assert.equal(after.chunks, 1);
  assert.equal(after.capacityBytes, before.capacityBytes);
  for (let i = 0; i < 7; i++) adaptive.alloc(page);
  assert.equal(adaptive.stats().chunks, 1, "the repeated workload fits one chunk");
  for (const arena of [fixed, linear, exponential, adaptive]) arena.reset("free-all");
});

test("Arena maxCapacity fails with limit-exceeded; a null backing fails with out-of-memory", () => {
  const page = nativeInfo().pageSize;
  const capped = new Arena({ capacity: page, maxCapacity: 2 * page });
  capped.alloc(page);
  capped.alloc(page);
  assert.throws(
    () => capped.alloc(page),
    (e: unknown) => e instanceof AllocationError && e.category === "limit-exceeded",
  );
  assert.equal(capped.stats().capacityBytes, 2 * page);
  const alone = new Arena({ capacity: page, backing: null });
  alone.alloc(page);
  assert.throws(() => alone.alloc(1), (e: unknown) => e instanceof AllocationError && e.category === "out-of-memory");
  alone.reset("retain-capacity");
  alone.alloc(page); // the one chunk is reused
  capped.reset("free-all");
  alone.reset("free-all");
});

test("Arena reset modes: free-all returns chunks, retainLimit keeps what fits", () => {
  const page = nativeInfo().pageSize;
  const arena = new Arena({ capacity: page, growth: "linear" });
  for (let i = 0; i < 5; i++) arena.alloc(page);
  arena.reset({ retainLimit: 2 * page });
  assert.equal(arena.stats().capacityBytes, 2 * page);
  arena.reset("retain-capacity");
  assert.equal(arena.stats().capacityBytes, 2 * page);
  arena.reset("free-all");
  assert.equal(arena.stats().capacityBytes, 0);
  const again = arena.alloc(10); // takes a new chunk
  assert.equal(again.length, 10);
  assert.equal(arena.stats().chunks, 1);
  arena.reset("free-all");
});

test("Arena fallback chain: an arena backed by another allocator draws its chunks from it", () => {
  const system = new SystemAllocator();
  const parent = new Arena({ capacity: 1 << 20, backing: system });
  const child = new Arena({ capacity: 64 << 10, backing: parent });
  assert.equal(parent.stats().liveAllocations, 1, "the child's first chunk");
  child.alloc(100 << 10); // grows: a second chunk from the parent
  assert.equal(parent.stats().liveAllocations, 2);
  assert.ok(parent.owns(child.alloc(16)));
  child.reset("free-all");
  parent.reset("free-all");
  assert.equal(system.stats().liveAllocations, 0);
});

test("Arena observers see allocations, frees and scopes until unsubscribed", () => {
  const arena = new Arena();
  const seen: string[] = [];
  const stop = arena.observe({
    onAlloc: (view, align) => seen.push(`alloc ${view.length}/${align}`),
    onFree: (_view, rolledBack) => seen.push(`free ${rolledBack}`),
    onScopeEnter: (scope) => seen.push(`enter ${scope.depth}`),
    onScopeExit: (scope) => seen.push(`exit ${scope.stats().allocations}`),
  });
  {
    using _scope = arena.scope();
    const a = arena.alloc(8, 8);
    arena.free(a);
    arena.array(Float64Array, 2);
  }
  stop();
  arena.alloc(1);
  assert.deepEqual(seen, ["enter 1", "alloc 8/8", "free true", "alloc 16/8", "exit 2"]);
  arena.reset("free-all");
});

test("Arena.clone() copies typed arrays and DataViews with their type and natural alignment", () => {
  const arena = new Arena({ alignment: "natural" });
  arena.alloc(1); // leave the cursor unaligned
  const floats = arena.clone(new Float64Array([1.5, 2.5]));
  assert.ok(floats instanceof Float64Array);
  assert.deepEqual([...floats], [1.5, 2.5]);
  assert.equal(addressOf(floats) % 8, 0);
  const view = arena.clone(new DataView(new Uint8Array([1, 2, 3]).buffer));
  assert.ok(view instanceof DataView);
  assert.equal(view.getUint8(2), 3);
  const bytes = arena.clone(new Uint8Array([7]));
  assert.ok(bytes instanceof Uint8Array && bytes[0] === 7);
  assert.ok(arena.owns(floats) && arena.owns(view) && arena.owns(bytes));
  arena.reset("free-all");
});

test("Arena alignment policies set the default alignment", () => {
  const page = nativeInfo().pageSize;
  for (const [alignment, expected] of [["cache-line", 64], ["page", page], [256, 256]] as const) {
    const arena = new Arena({ alignment });
    arena.alloc(1);
    assert.equal(addressOf(arena.alloc(1)) % expected, 0, String(alignment));
    assert.equal(addressOf(arena.array(Uint8Array, 3)) % expected, 0, String(alignment));
    arena.reset("free-all");
  }
});

test("Arena with timing reports the average allocation time", () => {
  const arena = new Arena({ timing: true });
  for (let i = 0; i < 1000; i++) arena.alloc(16);
  const stats = arena.stats();
  assert.ok(stats.avgAllocationNs !== undefined && stats.avgAllocationNs >= 0);
  assert.equal(new Arena().stats().avgAllocationNs, undefined);
  arena.reset("free-all");
});

test("Arena.resize() grows the most recent block in place and copies others", () => {
  const arena = new Arena({ capacity: 1 << 16 });
  const first = arena.alloc(16).fill(1);
  let last = arena.alloc(16).fill(2);
  const grown = arena.resize(last, 1000);
  assert.equal(addressOf(grown), addressOf(last), "in place");
  assert.equal(grown[15], 2);
  last = grown;
  const moved = arena.resize(first, 64);
  assert.notEqual(addressOf(moved), addressOf(first));
  assert.equal(moved[15], 1);
  assert.equal(arena.stats().ignoredFrees, 1);
  arena.reset("free-all");
});

test("workerArena() gives each Worker its own arena", async () => {
  const worker = new Worker(new URL("../fixtures/worker_arena.ts", import.meta.url), { type: "module" });
  try {
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(event);
    });
    assert.equal(result.same, true);
    assert.equal(result.capacity, 256 << 10);
    assert.equal(result.sum, 499500);
  } finally {
    worker.terminate();
  }
});

test("free() of the most recent block from before a reset rolls nothing back (safety on and off)", () => {
  for (const safety of [true, false]) {
    const arena = new Arena({ capacity: 4096, safety });
    arena.alloc(100);
    const last = arena.alloc(100);
    arena.reset();
    const a = arena.alloc(16);
    a.fill(1);
    try {
      arena.free(last);
    } catch (error) {
      assert.ok(error instanceof AllocationError, `safety ${safety}: ${error}`);
    }
    const b = arena.alloc(16);
    b.fill(2);
    assert.notEqual(a.byteOffset, b.byteOffset, `safety ${safety}: a block was handed out twice`);
    assert.equal(a[0], 1);
    arena.dispose();
  }
});

test("Arena: a chunk grown into inside a scope stays for the next frame; its views are detached at the scope's end", () => {
  for (const safety of [true, false]) {
    const system = new SystemAllocator();
    const arena = new Arena({ capacity: 1 << 20, safety, backing: system });
    let kept: Float64Array | null = null;
    for (let frame = 0; frame < 5; frame++) {
      using _frame = arena.scope();
      const big = arena.array(Float64Array, 1_000_000); // 8 MB: a chunk of its own
      big[999_999] = frame;
      kept = big;
      // The chunk the first frame grew into serves every later one: nothing more is taken from the backing.
      assert.equal(system.stats().totalAllocations, 2, `safety ${safety}, frame ${frame}`);
    }
    assert.equal(arena.stats().allocatedBytes, 0);
    if (safety) assert.equal(kept!.length, 0, "a view from an ended scope reads as length 0");
    else assert.equal(kept!.length, 1_000_000);
    arena.reset("free-all");
    assert.equal(arena.stats().capacityBytes, 0);
    arena.dispose();
    system.dispose();
  }
});
