// Leak suspicion: a seeded workload that leaks slowly under noisy churn is
// flagged (with the leaking owner first), one that only fluctuates is not,
// and the window and the after-collection rule behave as documented.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FreeListAllocator, leakSuspicion, MemoryProfiler, type MemorySnapshot, PoolAllocator } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

/**
 * `ticks` steps, each captured after a collection: `churn` holds a random set of blocks (replaced every step);
 * `pool` either keeps one more block every step (a slow leak) or holds a random number of blocks (fluctuating).
 */
function workload(seed: number, ticks: number, leak: boolean) {
  const next = xorshift32(seed);
  using churn = new FreeListAllocator({ capacity: 1 << 20 });
  using pool = new PoolAllocator({ blockSize: 256 });
  using profiler = new MemoryProfiler({ sources: { churn, pool } });
  let held: Uint8Array[] = [];
  let pooled: Uint8Array[] = [];
  for (let tick = 0; tick < ticks; tick++) {
    for (const block of held) churn.free(block);
    held = Array.from({ length: 1 + below(next, 40) }, () => churn.alloc(16 + below(next, 4000)));
    if (leak) {
      pooled.push(pool.alloc(256)); // never freed
    } else {
      for (const block of pooled) pool.free(block);
      pooled = Array.from({ length: below(next, 12) }, () => pool.alloc(256));
    }
    profiler.capture({ gc: true });
  }
  const verdict = profiler.leakSuspicion({ window: 6 });
  const snapshots = profiler.snapshots;
  for (const block of held) churn.free(block);
  for (const block of pooled) pool.free(block);
  return { verdict, snapshots };
}

const steps = (snapshots: MemorySnapshot[], read: (s: MemorySnapshot) => number) =>
  snapshots.slice(1).map((s, i) => Math.sign(read(s) - read(snapshots[i])));

test("a seeded slow leak hidden under churn is flagged, with the leaking owner first", () => {
  for (const seed of [1, 7, 42, 1234]) {
    const { verdict, snapshots } = workload(seed, 12, true);
    // The leak (256 B a step) is small against the churn, so the total goes down as well as up:
    // only the per-owner rule can see it.
    assert.ok(steps(snapshots, (s) => s.totalAllocated).includes(-1), `seed ${seed}: the total also falls`);
    assert.equal(verdict.suspected, true, `seed ${seed}`);
    assert.equal(verdict.window, 6);
    assert.equal(verdict.afterGC, true);
    assert.equal(verdict.totalMonotonic, false);
    assert.equal(verdict.owners[0].name, "pool");
    assert.equal(verdict.owners[0].monotonic, true);
    assert.equal(verdict.owners[0].growthBytes, 5 * 256);
    assert.equal(verdict.owners.filter((o) => o.monotonic).length, 1, `seed ${seed}: churn is not a suspect`);
  }
});

test("a seeded workload that only fluctuates is not flagged", () => {
  for (const seed of [1, 7, 42, 1234]) {
    const { verdict, snapshots } = workload(seed, 12, false);
    const poolSteps = steps(snapshots, (s) => s.categoryBreakdown.pool);
    assert.ok(poolSteps.includes(1) && poolSteps.includes(-1), `seed ${seed}: the pool rises and falls`);
    assert.equal(verdict.suspected, false, `seed ${seed}: ${JSON.stringify(verdict.owners)}`);
    assert.ok(verdict.owners.every((o) => !o.monotonic));
  }
});

const at = (pool: number, afterGC = true, total = pool): MemorySnapshot => ({
  timestamp: 0,
  totalAllocated: total,
  categoryBreakdown: { pool },
  largestAllocations: [],
  fragmentation: 0,
  rssBytes: 0,
  jsHeapBytes: 0,
  pressureLevel: null,
  afterGC,
  budgetBreakdown: {},
  released: [],
});

test("growth must hold at every step of the window; fewer snapshots than the window suspect nothing", () => {
  assert.equal(leakSuspicion([1, 2, 3, 4, 5].map((n) => at(n))).suspected, true);
  assert.equal(leakSuspicion([1, 2, 2, 4, 5].map((n) => at(n))).suspected, false); // a flat step
  assert.equal(leakSuspicion([1, 2, 3, 4].map((n) => at(n))).suspected, false); // 4 < window 5
  assert.equal(leakSuspicion([1, 2, 3, 4].map((n) => at(n))).window, 4);
  assert.equal(leakSuspicion([1, 2, 3, 4].map((n) => at(n)), { window: 4 }).suspected, true);
  // Only the latest window counts: an old climb that has stopped is not a leak.
  assert.equal(leakSuspicion([1, 2, 3, 4, 5, 6, 6, 6, 6, 6].map((n) => at(n))).suspected, false);
});

test("snapshots taken after a collection are preferred when there are enough of them", () => {
  // Growth seen only between collections (say, garbage awaiting a finalizer) is not a leak.
  const series = [
    at(10),
    at(50, false),
    at(10),
    at(60, false),
    at(10),
    at(70, false),
    at(10),
    at(80, false),
    at(10),
    at(90, false),
  ];
  const verdict = leakSuspicion(series);
  assert.equal(verdict.afterGC, true);
  assert.equal(verdict.suspected, false);
  // Without enough collected snapshots, the latest of any kind are used, and the verdict says so.
  const few = leakSuspicion([at(1, false), at(2, false), at(3, false), at(4, false), at(5, false)]);
  assert.equal(few.afterGC, false);
  assert.equal(few.suspected, true);
});
