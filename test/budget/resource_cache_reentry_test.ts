// ResourceCache when its dispose hook (or a budget reclaimer, or a getter of
// the entry passed to set) calls back into the cache: every hook runs once
// per entry, after the books are complete, so bytes, entries and budget
// tokens always agree, the cache stays within maxBytes, a disposed cache
// stores nothing, and prefetch never runs more loads than its concurrency.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, BudgetPriority, type DisposeReason, MemoryBudget, ResourceCache } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const category = (e: unknown) => (e instanceof AllocationError ? e.category : (e as Error).name);

test("a purge hook deleting a sibling: each entry's hook runs once, bytes and budget go to 0 (t04)", () => {
  const budget = new MemoryBudget({ physicalBytes: 1 << 20 });
  const calls: string[] = [];
  const cache: ResourceCache<string, number> = new ResourceCache<string, number>({
    maxBytes: 1000,
    budget,
    dispose: (_v, key, reason) => {
      calls.push(`${key}:${reason}`);
      if (key === "A" && reason === "purge") assert.equal(cache.delete("B"), false, "B left with the purge");
    },
  });
  for (const [key, size] of [["A", 100], ["B", 200], ["C", 300]] as const) cache.set(key, 0, { size });
  assert.equal(cache.purge(), 600);
  assert.deepEqual(calls.sort(), ["A:purge", "B:purge", "C:purge"]);
  assert.deepEqual([cache.size, cache.bytes, budget.usedBytes], [0, 0, 0]);
  cache.set("D", 4, { size: 100 });
  assert.equal(cache.purge(), 100);
  cache.dispose();
  assert.equal(budget.usedBytes, 0);
});

test("a purge hook asking the budget for room the cache must give: no hook twice, books agree (t23)", () => {
  const budget = new MemoryBudget({ physicalBytes: 1000, fractions: { normal: 1 }, minimumBytes: 0 });
  const calls: string[] = [];
  let other: unknown = null;
  const cache = new ResourceCache<string, number>({
    maxBytes: 1000,
    budget,
    dispose: (_v, key, reason) => {
      calls.push(`${key}:${reason}`);
      if (key === "A" && other === null) other = budget.request(900, "decoder", BudgetPriority.High);
    },
  });
  for (const key of ["A", "B", "C"]) cache.set(key, 0, { size: 300 });
  assert.equal(cache.purge(), 900);
  assert.deepEqual(calls.sort(), ["A:purge", "B:purge", "C:purge"]);
  assert.ok(other !== null, "the request found room");
  assert.deepEqual([cache.size, cache.bytes, budget.usedBytes], [0, 0, 900]);
  assert.equal(cache.set("D", 4, { size: 10 }), true);
  assert.equal(cache.purge(), 10);
  cache.dispose();
  assert.throws(() => cache.get("x"), (e) => category(e) === "use-after-free");
});

test("a replace hook setting the same key: one entry, each value disposed once (t05)", () => {
  const log: string[] = [];
  const cache: ResourceCache<string, string> = new ResourceCache<string, string>({
    maxBytes: 1000,
    dispose: (v, key, reason) => {
      log.push(`${key}=${v}:${reason}`);
      if (reason === "replace" && v === "v1") cache.set("k", "inner", { size: 100 });
    },
  });
  cache.set("k", "v1", { size: 100 });
  cache.set("k", "outer", { size: 100 });
  assert.deepEqual([cache.size, cache.bytes], [1, 100]);
  assert.equal(cache.delete("k"), true);
  assert.deepEqual([cache.size, cache.bytes, cache.purge()], [0, 0, 0]);
  const values = log.map((line) => line.split(":")[0]);
  assert.deepEqual(values.sort(), ["k=inner", "k=outer", "k=v1"], "every value left once");
});

test("a hook setting during dispose() cannot leave entries or budget bytes behind (t06 a)", () => {
  const budget = new MemoryBudget({ physicalBytes: 1 << 20 });
  const refused: string[] = [];
  const cache: ResourceCache<string, number> = new ResourceCache<string, number>({
    maxBytes: 1000,
    budget,
    dispose: (_v, key, reason) => {
      if (reason !== "purge" || key !== "A") return;
      try {
        cache.set("Z", 9, { size: 500 });
      } catch (error) {
        refused.push(category(error));
      }
    },
  });
  cache.set("A", 1, { size: 100 });
  cache.dispose();
  assert.deepEqual(refused, ["use-after-free"]);
  assert.equal(budget.usedBytes, 0);
  assert.equal(budget.stats().categories.cache.tokens, 0);
});

test("a hook setting during an eviction: the cache ends within maxBytes (t06 b)", () => {
  let n = 0;
  const cache: ResourceCache<string, number> = new ResourceCache<string, number>({
    maxBytes: 1000,
    dispose: (_v, _k, reason) => {
      if (reason === "evict" && n++ < 1) cache.set(`X${n}`, 0, { size: 900 });
    },
  });
  cache.set("A", 1, { size: 600 });
  cache.set("B", 1, { size: 600 });
  assert.ok(cache.bytes <= 1000, `bytes ${cache.bytes}`);
  assert.equal(cache.stats().entries, cache.size);
});

test("an entry getter disposing the cache mid-set: set throws use-after-free, no token kept (t06 c)", () => {
  const budget = new MemoryBudget({ physicalBytes: 1 << 20 });
  const cache = new ResourceCache<string, number>({ maxBytes: 1000, budget });
  const sizeDisposes = {
    get size() {
      cache.dispose();
      return 100;
    },
  };
  assert.throws(() => cache.set("k", 1, sizeDisposes), (e) => category(e) === "use-after-free");
  assert.equal(budget.usedBytes, 0);
  const cache2 = new ResourceCache<string, number>({ maxBytes: 1000, budget });
  let costReads = 0;
  const costDisposes = {
    size: 100,
    get cost() {
      costReads++;
      cache2.dispose();
      return 1;
    },
  };
  assert.throws(() => cache2.set("k", 1, costDisposes), (e) => category(e) === "use-after-free");
  assert.equal(costReads, 1, "each field is read once");
  assert.equal(budget.usedBytes, 0);
});

test("another reclaimer's hook disposing the cache while its set waits for the budget", () => {
  const budget = new MemoryBudget({ physicalBytes: 1000, fractions: { normal: 1 }, minimumBytes: 0 });
  let victim: ResourceCache<string, number> | null = null;
  const low = new ResourceCache<string, number>({
    maxBytes: 1000,
    budget,
    priority: BudgetPriority.Background,
    dispose: () => victim?.dispose(),
  });
  low.set("old", 0, { size: 800 });
  victim = new ResourceCache<string, number>({ maxBytes: 1000, budget, priority: BudgetPriority.High });
  assert.throws(() => victim!.set("k", 1, { size: 500 }), (e) => category(e) === "use-after-free");
  assert.equal(budget.usedBytes, 0, "the token the request got went back");
  low.dispose();
});

test("seeded re-entrant hooks: books always agree, every value leaves once, within maxBytes", () => {
  const next = xorshift32(0xcafe);
  const budget = new MemoryBudget({ physicalBytes: 4000, fractions: { normal: 1 }, minimumBytes: 0 });
  const left = new Map<number, DisposeReason>();
  let serial = 0;
  const ops = (c: ResourceCache<number, number>) => {
    switch (below(next, 5)) {
      case 0:
        return c.set(below(next, 8), ++serial, { size: 50 + below(next, 400) });
      case 1:
        return c.delete(below(next, 8));
      case 2:
        return c.trim(0.5);
      case 3:
        return budget.request(below(next, 2000), "other", BudgetPriority.High)?.release();
      default:
        return c.purge();
    }
  };
  let depth = 0;
  let closing = false; // a hook that calls the cache during dispose() gets "use-after-free" (tested above)
  const cache: ResourceCache<number, number> = new ResourceCache<number, number>({
    maxBytes: 1500,
    budget,
    dispose: (value, _key, reason) => {
      assert.equal(left.has(value), false, `value ${value} left twice`);
      left.set(value, reason);
      if (!closing && depth < 3 && below(next, 2) === 0) {
        depth++;
        try {
          ops(cache);
        } finally {
          depth--;
        }
      }
    },
  });
  for (let i = 0; i < 2000; i++) {
    ops(cache);
    assert.ok(cache.bytes >= 0 && cache.bytes <= 1500, `bytes ${cache.bytes}`);
    assert.equal(budget.stats().categories.cache?.usedBytes ?? 0, cache.bytes, "tokens match bytes");
    assert.equal(cache.stats().entries, cache.size);
  }
  const stored = serial;
  closing = true;
  cache.dispose();
  assert.equal(budget.usedBytes, 0);
  assert.ok(left.size <= stored && left.size > 0);
});

test("prefetchConcurrency holds when a prefetch starts from a settled generate's .then (t07)", async () => {
  const cache = new ResourceCache<string, number>({ maxBytes: 1 << 20, prefetchConcurrency: 1 });
  const pending = new Set<string>();
  let most = 0;
  const settle: Record<string, () => void> = {};
  const made: Record<string, Promise<{ value: number; size: number }>> = {};
  const generate = (key: string) => {
    pending.add(key);
    most = Math.max(most, pending.size);
    made[key] = new Promise((resolve) =>
      settle[key] = () => {
        pending.delete(key);
        resolve({ value: 1, size: 10 });
      }
    );
    return made[key];
  };
  const first = cache.prefetch([{ key: "A", probability: 0.9 }, { key: "B", probability: 0.8 }], generate);
  let second: Promise<unknown> = Promise.resolve();
  made.A.then(() => {
    second = cache.prefetch([{ key: "C", probability: 0.9 }], generate);
  });
  settle.A();
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const key of [...pending]) settle[key]();
  }
  await first;
  await second;
  assert.equal(most, 1);
  assert.deepEqual([cache.has("A"), cache.has("B"), cache.has("C")], [true, true, true]);
  cache.dispose();
});

test("a prediction's getter disposing the cache: prefetch throws use-after-free and generates nothing", () => {
  const cache = new ResourceCache<string, number>({ maxBytes: 1 << 20 });
  let generated = 0;
  const predictions = [{
    key: "a",
    get probability() {
      cache.dispose();
      return 0.9;
    },
  }, { key: "b", probability: 0.9 }];
  // Before: prefetch went on and generated every value for the disposed cache.
  assert.throws(() => cache.prefetch(predictions, () => ({ value: ++generated, size: 8 })), (e) => {
    return category(e) === "use-after-free";
  });
  assert.equal(generated, 0);
});
