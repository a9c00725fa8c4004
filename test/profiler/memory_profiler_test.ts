// MemoryProfiler: what each kind of source contributes to a snapshot, the
// timer and the async iterable, disposed sources, history, and that a
// running profiler never keeps the process alive (in a child process).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  Arena,
  DebugAllocator,
  DynamicArray,
  FreeListAllocator,
  getAllocator,
  getMemStats,
  MemoryBudget,
  MemoryInterface,
  MemoryProfiler,
  type MemorySnapshot,
  PoolAllocator,
  RegionAllocator,
  SharedDynamicArray,
  SystemAllocator,
} from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

// The profiler's timer is unref'd: a test that awaits it keeps the process alive itself.
async function alive<T>(run: () => Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await run();
  } finally {
    clearInterval(keep);
  }
}

test("each kind of source shows its own bytes in categoryBreakdown", () => {
  using system = new SystemAllocator();
  using pool = new PoolAllocator({ blockSize: 64 });
  using arena = new Arena({ capacity: 1 << 16 });
  using values = new DynamicArray("f64", { capacity: 100 });
  const shared = new SharedDynamicArray("u32", { maxCapacity: 1024 });
  shared.pushMany([1, 2, 3]);
  using hal = new MemoryInterface({ pressure: false });
  using budget = new MemoryBudget({ physicalBytes: 1 << 24, categories: ["ui", "net"] });
  using profiler = new MemoryProfiler({
    sources: { system, pool, arena, values, shared, hal, budget, global: "global" },
    largest: 3,
  });
  const big = system.alloc(5000);
  const blocks = [pool.alloc(64), pool.alloc(64), pool.alloc(32)];
  arena.alloc(1000);
  const poolBlock = hal.allocateTyped(64, "pool");
  const systemBlock = hal.allocateTyped(3000, "system");
  const token = budget.request(12_345, "ui");
  const globalBlock = getAllocator().alloc(77);

  const s = profiler.capture();
  assert.equal(s.categoryBreakdown.system, 5000);
  assert.equal(s.categoryBreakdown.pool, 160);
  assert.equal(s.categoryBreakdown.arena, 1000);
  assert.equal(s.categoryBreakdown.values, 800); // 100 f64 of capacity
  assert.equal(s.categoryBreakdown.shared, shared.capacity * 4);
  assert.equal(s.categoryBreakdown["hal.pool"], 64);
  assert.equal(s.categoryBreakdown["hal.system"], 3000);
  assert.equal(s.categoryBreakdown.global, getMemStats().currentBytes);
  assert.equal(s.budgetBreakdown["budget.ui"], 12_345);
  assert.equal(s.budgetBreakdown["budget.net"], 0); // declared, nothing requested
  // Budget reservations are not native memory: the total is the sum of the breakdown only.
  const sum = Object.values(s.categoryBreakdown).reduce((a, b) => a + b, 0);
  assert.equal(s.totalAllocated, sum);
  assert.ok(s.totalAllocated >= 5000 + 160 + 1000 + 800 + 64 + 3000);
  // The largest owners, largest first, three of them.
  assert.equal(s.largestAllocations.length, 3);
  assert.deepEqual(s.largestAllocations[0], { name: "system", size: 5000 });
  assert.ok(s.largestAllocations[1].size >= s.largestAllocations[2].size);
  assert.ok(s.rssBytes > 1 << 20);
  assert.ok(s.jsHeapBytes > 0);
  assert.ok(Math.abs(s.timestamp - Date.now()) < 60_000);
  assert.equal(s.afterGC, false);
  assert.deepEqual(s.released, []);

  system.free(big);
  for (const b of blocks) pool.free(b);
  hal.deallocate(poolBlock);
  hal.deallocate(systemBlock);
  token!.release();
  getAllocator().free(globalBlock);
  const after = profiler.capture();
  assert.equal(after.categoryBreakdown.system, 0);
  assert.equal(after.categoryBreakdown.pool, 0);
  assert.equal(after.categoryBreakdown["hal.pool"], undefined);
  assert.equal(after.budgetBreakdown["budget.ui"], 0);
});

test("a list of sources is named by kind and index", () => {
  using pool = new PoolAllocator({ blockSize: 16 });
  using values = new DynamicArray("u8", { capacity: 10 });
  using profiler = new MemoryProfiler({ sources: [pool, values, "global"] });
  assert.deepEqual(profiler.sourceNames, ["allocator-0", "array-1", "global-2"]);
  const s = profiler.capture();
  assert.equal(s.categoryBreakdown["array-1"], 10);
});

test("fragmentation is the allocators' own, weighted by capacity", () => {
  using heap = new FreeListAllocator({ capacity: 32 * 512, growth: "fixed" });
  const blocks = Array.from({ length: 32 }, () => heap.alloc(512));
  for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]); // every other block: scattered free space
  using profiler = new MemoryProfiler({ sources: { heap } });
  const s = profiler.capture();
  assert.ok(heap.stats().fragmentation > 0.5);
  assert.equal(s.fragmentation, heap.stats().fragmentation);
  using pool = new PoolAllocator({ blockSize: 64 });
  pool.free(pool.alloc(64)); // a pool's free space is whole blocks: fragmentation 0
  using both = new MemoryProfiler({ sources: { heap, pool } });
  const mixed = both.capture();
  const h = heap.stats(), p = pool.stats();
  const expected = (h.fragmentation * h.capacityBytes + p.fragmentation * p.capacityBytes) /
    (h.capacityBytes + p.capacityBytes);
  assert.ok(Math.abs(mixed.fragmentation - expected) < 1e-12);
  assert.ok(mixed.fragmentation < s.fragmentation);
  for (let i = 1; i < blocks.length; i += 2) heap.free(blocks[i]);
});

test("a disposed source reads as 0 bytes; one that refuses to be read is listed as released", () => {
  const pool = new PoolAllocator({ blockSize: 64 });
  pool.alloc(64);
  const hal = new MemoryInterface({ pressure: false });
  hal.allocateTyped(128, "system");
  using profiler = new MemoryProfiler({ sources: { pool, hal } });
  const before = profiler.capture();
  assert.equal(before.categoryBreakdown.pool, 64);
  assert.equal(before.categoryBreakdown["hal.system"], 128);
  pool.dispose();
  hal.dispose(); // its statistics now throw use-after-free
  const s = profiler.capture();
  assert.equal(s.categoryBreakdown.pool, 0);
  assert.equal(s.categoryBreakdown.hal, 0);
  assert.equal(s.totalAllocated, 0);
  assert.deepEqual(s.released, ["hal"]);
});

test("history keeps the latest snapshots only", () => {
  using profiler = new MemoryProfiler({ history: 3 });
  const taken = Array.from({ length: 5 }, () => profiler.capture());
  assert.deepEqual(profiler.snapshots, taken.slice(2));
});

test("capture({ gc: true }) asks for a collection and says so", () => {
  using profiler = new MemoryProfiler();
  // Both test commands allow collections (Bun.gc; Deno with --expose-gc).
  assert.equal(profiler.capture({ gc: true }).afterGC, true);
  assert.equal(profiler.capture().afterGC, false);
});

test("for await yields timed snapshots as the sources change, and dispose ends the loop", () =>
  alive(async () => {
    using pool = new PoolAllocator({ blockSize: 256 });
    const profiler = new MemoryProfiler({ intervalMs: 5, sources: { pool } });
    assert.equal(profiler.running, false);
    const seen: MemorySnapshot[] = [];
    const kept: Uint8Array[] = [];
    for await (const snapshot of profiler) {
      assert.equal(profiler.running, true);
      seen.push(snapshot);
      kept.push(pool.alloc(256));
      if (seen.length === 4) break;
    }
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i].timestamp >= seen[i - 1].timestamp);
      assert.ok(seen[i].categoryBreakdown.pool > seen[i - 1].categoryBreakdown.pool);
    }
    // A loop that is waiting ends when the profiler is disposed.
    const loop = (async () => {
      let count = 0;
      for await (const _ of profiler) count++;
      return count;
    })();
    await new Promise((resolve) => setTimeout(resolve, 30));
    profiler.dispose();
    assert.ok((await loop) >= 1);
    assert.equal(profiler.running, false);
    assert.throws(() => profiler.capture(), (e) => e instanceof AllocationError && e.category === "use-after-free");
    assert.throws(() => profiler.start(), (e) => e instanceof AllocationError && e.category === "use-after-free");
    for (const block of kept) pool.free(block);
  }));

test("timed snapshots ask for a collection every gcEvery-th time, the first included", () =>
  alive(async () => {
    for (const [gcEvery, expected] of [[10, [0, 10]], [1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]], [0, []]] as const) {
      using profiler = new MemoryProfiler({ intervalMs: 1, sources: [], gcEvery });
      let count = 0;
      for await (const _ of profiler) if (++count === 12) break;
      const collected = profiler.snapshots.flatMap((s, i) => s.afterGC ? [i] : []);
      assert.deepEqual(collected, expected, `gcEvery ${gcEvery}`);
    }
  }));

test("a source that fails at a timed snapshot stops the timer and ends the loop with its error", () =>
  alive(async () => {
    let fail = false;
    const flaky = {
      metrics() {
        if (fail) throw new Error("metrics broke");
        return { memoryUsage: 10 };
      },
    };
    using profiler = new MemoryProfiler({ intervalMs: 5, sources: { flaky } });
    let count = 0;
    await assert.rejects(async () => {
      for await (const _ of profiler) if (++count === 2) fail = true;
    }, /metrics broke/);
    assert.equal(profiler.running, false);
    assert.match(String(profiler.error), /metrics broke/);
  }));

test("a script with a running profiler exits on its own", () => {
  const child = runChild(fixture("profiler_running_child.ts"));
  assert.equal(child.signal, null, child.stderr);
  assert.equal(child.status, 0, child.stderr);
  const count = Number(/snapshots (\d+)/.exec(child.stdout)?.[1]);
  assert.ok(count >= 2, `timed snapshots were taken: ${child.stdout}`);
});

test("a source that throws null, undefined or 0 at a timed snapshot ends the loop with that value", () =>
  alive(async () => {
    for (const thrown of [null, undefined, 0, false, ""]) {
      const source = {
        metrics() {
          throw thrown;
        },
      };
      using profiler = new MemoryProfiler({ intervalMs: 5, sources: { source } });
      let caught: { value: unknown } | null = null;
      try {
        for await (const _ of profiler) {
          // none arrive
        }
      } catch (error) {
        caught = { value: error };
      }
      assert.deepEqual(caught, { value: thrown }, `throw ${String(thrown)}: the loop throws it`);
      assert.equal(profiler.running, false);
      assert.equal(profiler.error, thrown);
    }
  }));

test("leaving a for await loop stops the timer the loop started, not one started before", () =>
  alive(async () => {
    using profiler = new MemoryProfiler({ intervalMs: 2, sources: [] });
    for await (const _ of profiler) break;
    assert.equal(profiler.running, false, "the loop started it: leaving the loop stops it");
    // Two loops over a timer the first one started: it stops when the last one ends.
    const first = profiler[Symbol.asyncIterator]();
    const second = profiler[Symbol.asyncIterator]();
    await first.next();
    await second.next();
    await first.return!();
    assert.equal(profiler.running, true, "the second loop still reads it");
    await second.return!();
    assert.equal(profiler.running, false);
    // Started before: leaving the loop leaves it running.
    profiler.start();
    for await (const _ of profiler) break;
    assert.equal(profiler.running, true, "started by start(): left running");
    profiler.stop();
    // start() called while a loop runs takes the timer over: the loop's end leaves it running.
    for await (const _ of profiler) {
      profiler.start();
      break;
    }
    assert.equal(profiler.running, true);
    profiler.stop();
  }));

test("dispose() inside a busy for await loop ends it at its next step (snapshots waiting are not yielded)", async () => {
  // Before: the loop went on yielding every snapshot queued before dispose() (up to `history` of them).
  using pool = new PoolAllocator({ blockSize: 64 });
  const profiler = new MemoryProfiler({ intervalMs: 3_600_000, sources: { pool } });
  let disposed = false, after = 0;
  const loop = (async () => {
    for await (const _snapshot of profiler) {
      if (disposed) {
        after++;
        continue;
      }
      for (let i = 0; i < 3; i++) profiler.capture(); // queued for this loop while its body runs
      profiler.dispose();
      disposed = true;
    }
  })();
  profiler.capture(); // the loop's first snapshot
  await loop;
  assert.equal(after, 0);
  assert.equal(profiler.snapshots.length, 4, "the dropped snapshots stay in `snapshots`");
});

// Sources inside other sources: each native byte is counted once. The source that took the memory from the
// system (the root of the chain, as at the exit census) decides the total; each source inside another keeps
// its own bytes in categoryBreakdown, and the source that handed them out keeps only the rest.
const sumOf = (s: MemorySnapshot) => Object.values(s.categoryBreakdown).reduce((a, b) => a + b, 0);

function assertCountedOnce(s: MemorySnapshot, live: number) {
  assert.equal(s.totalAllocated, live);
  assert.equal(sumOf(s), live); // the breakdown adds up to the total: nothing in it twice
  const listed = s.largestAllocations.reduce((a, b) => a + b.size, 0);
  assert.ok(listed <= live, `largestAllocations lists ${listed} bytes of ${live}`);
}

test("an array in a watched arena is counted once, as the array's", () => {
  using arena = new Arena({ capacity: 1 << 20 });
  using values = new DynamicArray<number>("f64", { allocator: arena, capacity: 1000 });
  arena.alloc(100); // the arena's own block beside the array's
  using profiler = new MemoryProfiler({ sources: { arena, values } });
  const s = profiler.capture();
  assertCountedOnce(s, arena.stats().allocatedBytes);
  assert.equal(s.categoryBreakdown.values, 8000);
  assert.equal(s.categoryBreakdown.arena, 100);
  assert.deepEqual(s.largestAllocations, [{ name: "values", size: 8000 }, { name: "arena", size: 100 }]);
  assert.deepEqual(s.nestedIn, { values: "arena" });
  // Named the other way round, in the other order: the same.
  using reversed = new MemoryProfiler({ sources: [values, arena] });
  const r = reversed.capture();
  assertCountedOnce(r, arena.stats().allocatedBytes);
  assert.deepEqual(r.nestedIn, { "array-0": "allocator-1" });
});

test("a DebugAllocator over a watched pool is counted once: its canaries stay the pool's", () => {
  using pool = new PoolAllocator({ blockSize: 4096 });
  using debug = new DebugAllocator(pool);
  const block = debug.alloc(4000);
  using profiler = new MemoryProfiler({ sources: { pool, debug } });
  const s = profiler.capture();
  assertCountedOnce(s, pool.stats().allocatedBytes);
  assert.equal(s.categoryBreakdown.debug, 4000);
  assert.equal(s.categoryBreakdown.pool, pool.stats().allocatedBytes - 4000);
  assert.deepEqual(s.nestedIn, { debug: "pool" });
  debug.free(block);
  assertCountedOnce(profiler.capture(), 0);
});

test("an array in a RegionAllocator region is counted once", () => {
  using regions = new RegionAllocator();
  const region = regions.region("vertex");
  using vertices = new DynamicArray<number>("f32", { allocator: region, capacity: 1000 });
  using profiler = new MemoryProfiler({ sources: { region, vertices } });
  const s = profiler.capture();
  assertCountedOnce(s, region.stats().allocatedBytes);
  assert.equal(s.categoryBreakdown.vertices, 4000);
  assert.deepEqual(s.nestedIn, { vertices: "region" });
});

test("every chain of the reproducer at once counts the live bytes once", () => {
  using arena = new Arena({ capacity: 1 << 20 });
  using arr = new DynamicArray<number>("f64", { allocator: arena, capacity: 1000 });
  using pool = new PoolAllocator({ blockSize: 4096 });
  using debug = new DebugAllocator(pool);
  const block = debug.alloc(4000);
  using regions = new RegionAllocator();
  const region = regions.region("vertex");
  using vertices = new DynamicArray<number>("f32", { allocator: region, capacity: 1000 });
  using profiler = new MemoryProfiler({ sources: { arena, arr, pool, debug, region, vertices } });
  const s = profiler.capture();
  assertCountedOnce(s, 8000 + pool.stats().allocatedBytes + 4000);
  assert.deepEqual(s.largestAllocations.map((e) => e.name), ["arr", "debug", "vertices", "pool"]);
  debug.free(block);
});

test("a three-level chain counts what its root took once, whichever levels are watched", () => {
  using system = new SystemAllocator();
  using outer = new Arena({ backing: system, capacity: 1 << 16 });
  using heap = new FreeListAllocator({ backing: outer, capacity: 1 << 14 });
  using values = new DynamicArray<number>("u32", { allocator: heap, capacity: 256 });
  const loose = heap.alloc(100);
  // All four watched: the root (the SystemAllocator) decides the total.
  using all = new MemoryProfiler({ sources: { values, heap, outer, system } });
  const s = all.capture();
  assertCountedOnce(s, system.stats().allocatedBytes);
  assert.deepEqual(s.nestedIn, { values: "heap", heap: "outer", outer: "system" });
  assert.equal(s.categoryBreakdown.values, 1024);
  assert.equal(s.categoryBreakdown.heap, 100);
  assert.equal(s.categoryBreakdown.outer, outer.stats().allocatedBytes - heap.stats().allocatedBytes);
  // The middle level not watched: the array is still inside the arena (through the heap).
  using skip = new MemoryProfiler({ sources: { values, outer } });
  const t = skip.capture();
  assertCountedOnce(t, outer.stats().allocatedBytes);
  assert.deepEqual(t.nestedIn, { values: "outer" });
  assert.equal(t.categoryBreakdown.values, 1024);
  // The two lower levels: the heap holds the array and its own block.
  using lower = new MemoryProfiler({ sources: { values, heap } });
  const u = lower.capture();
  assertCountedOnce(u, heap.stats().allocatedBytes);
  assert.deepEqual(u.nestedIn, { values: "heap" });
  // The array and the SystemAllocator, two levels apart through allocators not watched.
  using apart = new MemoryProfiler({ sources: { values, system } });
  const v = apart.capture();
  assertCountedOnce(v, system.stats().allocatedBytes);
  assert.deepEqual(v.nestedIn, { values: "system" });
  heap.free(loose);
});

test("an array growing inside a watched heap is the one leak suspect, and the growth is counted once", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 20 });
  using values = new DynamicArray<number>("f64", { allocator: heap });
  using profiler = new MemoryProfiler({ sources: { heap, values } });
  for (let step = 0; step < 6; step++) {
    values.reserve(1000 * (step + 1)); // grows at every step
    assertCountedOnce(profiler.capture({ gc: true }), heap.stats().allocatedBytes);
  }
  const verdict = profiler.leakSuspicion();
  assert.ok(verdict.suspected);
  assert.deepEqual(verdict.owners.map((o) => o.name), ["values"]); // the heap's own bytes did not grow
  const snapshots = profiler.snapshots;
  assert.equal(
    verdict.growthBytes,
    snapshots.at(-1)!.categoryBreakdown.values - snapshots.at(-5)!.categoryBreakdown.values,
  );
});

test("a DebugAllocator over a DebugAllocator, and an array in the global allocator, are counted once", () => {
  using inner = new DebugAllocator();
  using outer = new DebugAllocator(inner);
  const block = outer.alloc(1000);
  using values = new DynamicArray<number>("u8", { allocator: getAllocator(), capacity: 500 });
  using profiler = new MemoryProfiler({ sources: { outer, inner, values, global: "global" } });
  const s = profiler.capture();
  assert.deepEqual(s.nestedIn, { outer: "inner", values: "global" });
  assertCountedOnce(s, inner.stats().allocatedBytes + getMemStats().currentBytes);
  assert.equal(s.categoryBreakdown.outer, 1000);
  assert.equal(s.categoryBreakdown.values, 500);
  assert.equal(s.categoryBreakdown.global, getMemStats().currentBytes - 500);
  outer.free(block);
});

test("a source whose dump() throws or answers nonsense is counted where it is, and nothing is thrown", () => {
  using arena = new Arena({ capacity: 1 << 16 });
  arena.alloc(100);
  const stats = () => ({ ...arena.stats(), allocatedBytes: 64 });
  const shaped = [
    {
      kind: "arena",
      stats,
      dump: () => {
        throw new Error("no dump");
      },
    },
    { kind: "arena", stats, dump: () => ({ chunks: [{ address: "x", size: -1, blocks: null }] }) },
    { kind: "arena", stats, dump: () => null },
    { kind: "arena", stats },
  ];
  for (const [i, source] of shaped.entries()) {
    using profiler = new MemoryProfiler({ sources: { arena, source: source as never } });
    for (let n = 0; n < 2; n++) {
      const s = profiler.capture();
      assert.equal(s.categoryBreakdown.source, 64, `shape ${i}`);
      assertCountedOnce(s, 100 + 64);
      assert.deepEqual(s.nestedIn, {}, `shape ${i}`);
    }
  }
});

// A program's allocator (written in JavaScript) that sends requests of up to 4 KiB to `small` and larger ones to
// `large`: an array growing or shrinking through it moves between the two.
function router(small: FreeListAllocator, large: FreeListAllocator) {
  const pick = (n: number) => (n <= 4096 ? small : large);
  const from = (v: ArrayBufferView) => (small.owns(v) ? small : large);
  return {
    kind: "router",
    alloc: (n: number, a?: number) => pick(n).alloc(n, a),
    tryAlloc: (n: number, a?: number) => pick(n).tryAlloc(n, a),
    array: (c: Float64ArrayConstructor, n: number, a?: number) => pick(n * c.BYTES_PER_ELEMENT).array(c, n, a),
    free: (v: ArrayBufferView) => from(v).free(v),
    resize(v: ArrayBufferView, n: number) {
      if (pick(n) === from(v)) return from(v).resize(v, n);
      const to = pick(n).alloc(n);
      to.set(new Uint8Array(v.buffer, v.byteOffset, Math.min(v.byteLength, n)));
      from(v).free(v);
      return to;
    },
    owns: (v: ArrayBufferView) => small.owns(v) || large.owns(v),
    stats: () => small.stats(),
  } as never;
}

test("an array whose storage moves to another watched allocator is placed again: counted once at every step", () => {
  using small = new FreeListAllocator({ capacity: 1 << 20 });
  using large = new FreeListAllocator({ capacity: 1 << 22 });
  using values = new DynamicArray<number>("f64", { allocator: router(small, large), capacity: 64 });
  const other = small.alloc(1000); // small's own block, beside the array
  using profiler = new MemoryProfiler({ sources: { small, large, values } });
  const live = () => small.stats().allocatedBytes + large.stats().allocatedBytes;
  values.push(1);
  let s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { values: "small" });
  assert.deepEqual(s.categoryBreakdown, { small: 1000, large: 0, values: 512 });
  for (let i = 0; i < 5000; i++) values.push(i); // 40 KB: its storage moves to large
  s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { values: "large" });
  assert.deepEqual(s.categoryBreakdown, { small: 1000, large: 0, values: 65536 });
  values.clear();
  values.push(1);
  values.compact(); // 8 bytes: back into small
  s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { values: "small" });
  assert.equal(s.categoryBreakdown.small, 1000);
  values.free();
  small.free(other);
  s = profiler.capture();
  assertCountedOnce(s, 0);
  assert.deepEqual(s.nestedIn, {}, "a source holding nothing is inside nothing");
});

test("a heap that grows after an array moved out of it is the leak suspect", () => {
  using small = new FreeListAllocator({ capacity: 1 << 20 });
  using large = new FreeListAllocator({ capacity: 1 << 22 });
  using values = new DynamicArray<number>("f64", { allocator: router(small, large), capacity: 64 });
  using profiler = new MemoryProfiler({ sources: { small, large, values } });
  values.push(1);
  profiler.capture();
  for (let i = 0; i < 5000; i++) values.push(i);
  const kept = [];
  for (let step = 0; step < 6; step++) {
    for (let i = 0; i < 10; i++) kept.push(small.alloc(512)); // small grows by 5 KB at every step
    const s = profiler.capture({ gc: true });
    assertCountedOnce(s, small.stats().allocatedBytes + large.stats().allocatedBytes);
    assert.equal(s.categoryBreakdown.small, small.stats().allocatedBytes);
  }
  const verdict = profiler.leakSuspicion();
  assert.ok(verdict.suspected);
  assert.deepEqual(verdict.owners.map((o) => o.name), ["small"]);
  for (const block of kept) small.free(block);
});

test("allocators whose memory moved to another watched heap are placed again (an Arena's chunk, a DebugAllocator's block)", () => {
  using small = new FreeListAllocator({ capacity: 1 << 20 });
  using large = new FreeListAllocator({ capacity: 1 << 22 });
  using arena = new Arena({ backing: router(small, large), capacity: 4096 });
  using debug = new DebugAllocator(router(small, large));
  using profiler = new MemoryProfiler({ sources: { small, large, arena, debug } });
  const live = () => small.stats().allocatedBytes + large.stats().allocatedBytes;
  arena.alloc(100);
  let block = debug.alloc(100);
  let s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { arena: "small", debug: "small" });
  // The arena's chunk goes back, and the next one (larger than 4 KiB) comes from large; the DebugAllocator's one
  // block is freed, and its next one is in large.
  arena.reset("free-all");
  arena.alloc(20_000);
  debug.free(block);
  block = debug.alloc(10_000);
  s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { arena: "large", debug: "large" });
  assert.equal(s.categoryBreakdown.debug, 10_000);
  debug.free(block);
});

test("an array and its snapshot() sharing storage are counted once, for the source listed first (sharedWith)", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 20 });
  using values = new DynamicArray<number>("f64", { allocator: heap, capacity: 1024 });
  for (let i = 0; i < 100; i++) values.push(i);
  using before = values.snapshot();
  using again = values.snapshot();
  const extra = heap.alloc(4000); // the heap's own block, beside the arrays' storage
  using profiler = new MemoryProfiler({ sources: { heap, values, before, again } });
  let s = profiler.capture();
  assertCountedOnce(s, heap.stats().allocatedBytes);
  assert.deepEqual(s.categoryBreakdown, { heap: 4000, values: 8192, before: 0, again: 0 });
  assert.deepEqual(s.sharedWith, { before: "values", again: "values" });
  assert.deepEqual(s.nestedIn, { values: "heap", before: "heap", again: "heap" });
  // Listed the other way round, without the heap: the first listed gets the bytes.
  using reversed = new MemoryProfiler({ sources: { before, values } });
  const r = reversed.capture();
  assertCountedOnce(r, 8192);
  assert.deepEqual(r.categoryBreakdown, { before: 8192, values: 0 });
  assert.deepEqual(r.sharedWith, { values: "before" });
  // A write gives `values` storage of its own (copy on write): three arrays, two storages, each counted once.
  values.push(100);
  s = profiler.capture();
  assertCountedOnce(s, heap.stats().allocatedBytes);
  assert.deepEqual(s.categoryBreakdown, { heap: 4000, values: 8192, before: 8192, again: 0 });
  assert.deepEqual(s.sharedWith, { again: "before" });
  heap.free(extra);
});

test("allocators whose chunks lie in two watched heaps are counted once: their bytes come out of each", () => {
  using small = new FreeListAllocator({ capacity: 1 << 20 });
  using large = new FreeListAllocator({ capacity: 1 << 22 });
  using arena = new Arena({ backing: router(small, large), capacity: 4096, growth: "exponential" });
  using debug = new DebugAllocator(router(small, large));
  const own = [small.alloc(1000), large.alloc(3000)];
  using profiler = new MemoryProfiler({ sources: { small, large, debug, arena } });
  const live = () => small.stats().allocatedBytes + large.stats().allocatedBytes;
  const blocks = [debug.alloc(100)];
  for (let i = 0; i < 3; i++) arena.alloc(3000); // a 4 KiB chunk in small, an 8 KiB one in large
  let s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { debug: "small", arena: "large" });
  blocks.push(debug.alloc(10_000)); // in large: the DebugAllocator now spans both
  s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { debug: "large", arena: "large" });
  assert.equal(s.categoryBreakdown.debug, 10_100);
  assert.equal(s.categoryBreakdown.arena, 9000);
  assert.ok(s.categoryBreakdown.small >= 1000 && s.categoryBreakdown.large >= 3000, JSON.stringify(s));
  for (const block of blocks) debug.free(block);
  s = profiler.capture();
  assertCountedOnce(s, live());
  assert.deepEqual(s.nestedIn, { arena: "large" });
  for (const block of own) (block.byteLength === 1000 ? small : large).free(block);
});
