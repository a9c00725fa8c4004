// The harness of bench/cache_bench.ts on small traces: it counts what the
// caches themselves count, Belady's rule is the ceiling where it is optimal
// (equal sizes), and the traces are reproducible from their seed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { cacheStudy, makeTrace, memkitPolicy } from "../../bench/cache_bench.ts";
import { ResourceCache } from "../../mod.ts";

const small = { objects: 2000, requests: 20_000 };

test("the same seed gives the same trace; another seed another", () => {
  const a = makeTrace("sizes+costs", 1.0, small), b = makeTrace("sizes+costs", 1.0, small);
  assert.deepEqual([a.ids, a.sizes, a.costs, a.capacity], [b.ids, b.sizes, b.costs, b.capacity]);
  assert.notDeepEqual(makeTrace("sizes+costs", 1.0, { ...small, seed: 17 }).ids, a.ids);
});

test("on equal sizes, Belady's hit ratio is at least every other policy's", () => {
  const results = cacheStudy([["uniform", 0.8], ["shifting", 1.0]], undefined, small);
  for (const trace of ["uniform", "shifting"]) {
    const rows = results.filter((r) => r.trace === trace);
    const belady = rows.find((r) => r.policy.startsWith("Belady"))!;
    for (const r of rows) assert.ok(r.hitRatio <= belady.hitRatio, `${r.policy} on ${trace}`);
    // Equal sizes and costs: the three ratios are one number.
    for (const r of rows) assert.ok(Math.abs(r.hitRatio - r.byteHitRatio) < 1e-12 && r.costSaved === r.byteHitRatio);
  }
});

test("the harness's hit ratio for ResourceCache is the one the cache's own stats count", () => {
  const trace = makeTrace("sizes+costs", 1.2, small);
  const cache = new ResourceCache<number, number>({ maxBytes: trace.capacity });
  for (const id of trace.ids) {
    if (cache.get(id) === undefined) cache.set(id, id, { size: trace.sizes[id], cost: trace.costs[id] });
  }
  const [row] = cacheStudy([["sizes+costs", 1.2]], [["memkit", memkitPolicy()]], small);
  const stats = cache.stats();
  assert.equal(row.hitRatio, stats.hitRatio);
  assert.ok(stats.hits > 0 && stats.misses > 0);
});
