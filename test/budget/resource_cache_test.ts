// ResourceCache (issue 16 item 2): eviction by the design's score (each
// factor on its own, then together), limits, the dispose hook, trim/purge,
// budget tokens and reclaiming, pressure responses, prefetch, and a seeded
// model test of the books.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  BudgetPriority,
  type DisposeReason,
  MemoryBudget,
  PressureLevel,
  PressureMonitor,
  ResourceCache,
} from "../../mod.ts";
import { reading } from "../_pressure_readings.ts";

// A cache with only one factor of the score switched on, recording what left.
function only(factor: "age" | "size" | "cost" | "frequency", maxBytes = 300) {
  const left: string[] = [];
  const weights = { age: 0, size: 0, cost: 0, frequency: 0, [factor]: 1 };
  const cache = new ResourceCache<string, number>({ maxBytes, weights, dispose: (_v, key) => left.push(key) });
  return { cache, left };
}

test("each factor on its own picks its victim: oldest, largest, cheapest, least used", () => {
  const age = only("age");
  for (const key of ["a", "b", "c"]) age.cache.set(key, 0, { size: 100 });
  age.cache.get("a");
  age.cache.set("d", 0, { size: 100 });
  assert.deepEqual(age.left, ["b"], "b is the longest idle once a was read");

  const size = only("size");
  size.cache.set("small", 0, { size: 50 });
  size.cache.set("large", 0, { size: 200 });
  size.cache.set("new", 0, { size: 100 });
  assert.deepEqual(size.left, ["large"]);

  const cost = only("cost");
  cost.cache.set("dear", 0, { size: 100, cost: 9 });
  cost.cache.set("cheap", 0, { size: 100, cost: 1 });
  cost.cache.set("mid", 0, { size: 100, cost: 5 });
  cost.cache.set("new", 0, { size: 100, cost: 5 });
  assert.deepEqual(cost.left, ["cheap"]);

  const frequency = only("frequency");
  for (const key of ["a", "b", "c"]) frequency.cache.set(key, 0, { size: 100 });
  frequency.cache.get("a");
  frequency.cache.get("c");
  frequency.cache.set("d", 0, { size: 100 });
  assert.deepEqual(frequency.left, ["b"]);
});

test("the default weights combine the factors as the design does (cost inverted: dear entries stay)", () => {
  const left: string[] = [];
  const cache = new ResourceCache<string, number>({ maxBytes: 3000, dispose: (_v, key) => left.push(key) });
  cache.set("cheap", 0, { size: 1000, cost: 1 });
  cache.set("dear", 0, { size: 1000, cost: 50 });
  cache.set("other", 0, { size: 1000, cost: 10 });
  cache.get("cheap");
  cache.set("new", 0, { size: 1000, cost: 10 });
  // At clock 4: cheap 0 + 0.1 + 0.196 + 0.1; dear 0.3 + 0.1 + 0 + 0.2; other 0.15 + 0.1 + 0.16 + 0.2.
  assert.deepEqual(left, ["other"]);
  assert.equal(cache.stats().evictions, 1);
});

test("limits, replace, oversized entries, delete, trim and purge, each value disposed once with its reason", () => {
  const log: [string, number, DisposeReason][] = [];
  const cache = new ResourceCache<string, number>({ maxBytes: 1000, dispose: (v, k, r) => log.push([k, v, r]) });
  for (let i = 0; i < 10; i++) assert.equal(cache.set(`k${i}`, i, { size: 100, cost: i }), true);
  assert.deepEqual([cache.size, cache.bytes], [10, 1000]);
  assert.equal(cache.set("k0", 100, { size: 100 }), true);
  assert.deepEqual(log.pop(), ["k0", 0, "replace"]);
  assert.equal(cache.set("huge", -1, { size: 1001 }), false);
  assert.equal(log.length, 0, "a value that was not stored stays the caller's");
  assert.equal(cache.stats().rejected, 1);
  assert.equal(cache.delete("k5"), true);
  assert.equal(cache.delete("k5"), false);
  assert.deepEqual(log.pop(), ["k5", 5, "delete"]);
  assert.equal(cache.trim(0.3), 300, "900 bytes held: 270 wanted, three 100-byte entries");
  assert.deepEqual(log.map((e) => e[2]), ["trim", "trim", "trim"]);
  assert.equal(cache.trim(0), 0);
  log.length = 0;
  assert.equal(cache.purge(), 600);
  assert.equal(log.length, 6);
  assert.ok(log.every((e) => e[2] === "purge"));
  assert.deepEqual([cache.size, cache.bytes], [0, 0]);
  assert.equal(cache.set("zero", 0, { size: 0 }), true, "a zero-byte entry is fine");
});

test("get counts hits, hit bytes and the recreation cost saved; has counts nothing", () => {
  const cache = new ResourceCache<string, string>({ maxBytes: 100 });
  cache.set("a", "A", { size: 10, cost: 7 });
  assert.equal(cache.get("a"), "A");
  assert.equal(cache.get("a"), "A");
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.has("a"), true);
  const stats = cache.stats();
  assert.deepEqual(
    [stats.hits, stats.misses, stats.hitBytes, stats.costSaved, stats.hitRatio],
    [2, 1, 20, 14, 2 / 3],
  );
});

test("with a budget, entries hold tokens and a higher-priority request makes the cache evict", () => {
  const budget = new MemoryBudget({ physicalBytes: 2000, minimumBytes: 0, categories: ["thumbnails", "frames"] });
  const left: string[] = [];
  const cache = new ResourceCache<string, number>({
    maxBytes: 10_000,
    budget,
    category: "thumbnails",
    dispose: (_v, key) => left.push(key),
  });
  for (let i = 0; i < 8; i++) cache.set(`t${i}`, i, { size: 100 });
  assert.equal(budget.stats().categories.thumbnails.usedBytes, 800);
  assert.equal(budget.stats().categories.thumbnails.granted, 8, "one grant per entry, nothing else");
  const frame = budget.request(500, "frames", BudgetPriority.High); // 1000 total: 300 missing
  assert.ok(frame !== null);
  assert.equal(left.length, 3);
  assert.equal(cache.bytes, 500);
  assert.equal(budget.stats().categories.thumbnails.usedBytes, 500);
  // The budget is full: a new entry evicts the cache's own entries until the budget grants it.
  assert.equal(cache.set("t8", 8, { size: 200 }), true);
  assert.equal(cache.bytes, 500);
  assert.equal(cache.set("whole", 9, { size: 1001 }), false, "larger than the whole budget");
  frame!.release();
  cache.dispose();
  assert.equal(budget.usedBytes, 0, "dispose gives every token back");
  assert.equal(budget.request(900, "frames", BudgetPriority.High)?.size, 900, "the reclaimer is gone");
  assert.throws(
    () => new ResourceCache({ maxBytes: 100, budget, category: "effects" }),
    TypeError,
    "a category the budget does not declare",
  );
});

test("pressure: a rise to warning (Medium) trims 30 %, Critical purges, a disposed cache is left alone", () => {
  let next = reading(PressureLevel.None);
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  const cache = new ResourceCache<number, number>({ maxBytes: 1000, pressure: monitor });
  for (let i = 0; i < 10; i++) cache.set(i, i, { size: 100 });
  next = reading(PressureLevel.Medium);
  monitor.refresh();
  assert.equal(cache.bytes, 700);
  next = reading(PressureLevel.Critical);
  monitor.refresh();
  assert.equal(cache.bytes, 0);
  cache.dispose();
  next = reading(PressureLevel.None);
  for (let i = 0; i < 5; i++) monitor.refresh();
  next = reading(PressureLevel.Critical);
  monitor.refresh(); // would throw use-after-free inside the listener if the cache still listened
  assert.throws(() => cache.get(1), (e) => e instanceof AllocationError && e.category === "use-after-free");
  assert.throws(() => cache.set(1, 1, { size: 1 }), AllocationError);
  cache.dispose();
});

test("prefetch: above the threshold only, most likely first, bounded concurrency, failures and rejects reported", async () => {
  const disposed: [string, DisposeReason][] = [];
  const cache = new ResourceCache<string, string>({
    maxBytes: 1000,
    prefetchConcurrency: 2,
    dispose: (_v, key, reason) => disposed.push([key, reason]),
  });
  cache.set("cached", "c", { size: 10 });
  let running = 0, most = 0;
  const started: string[] = [];
  const generate = async (key: string) => {
    started.push(key);
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    running--;
    if (key === "broken") throw new Error("decoder failed");
    if (key === "huge") return { value: key, size: 5000 };
    if (key === "bad") return { value: key, size: -1 };
    return { value: key.toUpperCase(), size: 100, cost: 3 };
  };
  const report = await cache.prefetch([
    { key: "b", probability: 0.8 },
    { key: "a", probability: 0.95 },
    { key: "low", probability: 0.7 }, // not above 0.7
    { key: "cached", probability: 0.99 },
    { key: "broken", probability: 0.9 },
    { key: "huge", probability: 0.75 },
    { key: "bad", probability: 0.71 },
    { key: "a", probability: 0.9 }, // already loading
  ], generate);
  assert.deepEqual(started, ["a", "broken", "b", "huge", "bad"], "most likely first");
  assert.equal(most, 2);
  assert.deepEqual(report.loaded.sort(), ["a", "b"]);
  assert.deepEqual(report.failed.map((f) => f.key).sort(), ["bad", "broken"]);
  assert.ok(report.failed.find((f) => f.key === "bad")!.error instanceof RangeError);
  assert.equal(report.skipped, 4, "low, cached, the second a, huge (not taken)");
  assert.deepEqual(disposed, [["huge", "rejected"]]);
  assert.equal(cache.get("a"), "A");
  assert.equal(cache.has("low"), false);
  // A key set while its value was being made: the made value goes to dispose.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const pending = cache.prefetch([{ key: "race", probability: 1 }], async (key) => {
    await gate;
    return { value: key, size: 10 };
  });
  cache.set("race", "set by hand", { size: 10 });
  release();
  assert.equal((await pending).skipped, 1);
  assert.equal(cache.get("race"), "set by hand");
  assert.deepEqual(disposed.at(-1), ["race", "rejected"]);
  // A custom threshold.
  const eager = new ResourceCache<string, string>({ maxBytes: 100, prefetchThreshold: 0.2 });
  assert.deepEqual((await eager.prefetch([{ key: "x", probability: 0.3 }], (k) => ({ value: k, size: 1 }))).loaded, [
    "x",
  ]);
});

test("a seeded model: random sets, gets, deletes and trims keep the books and dispose each value exactly once", () => {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out = new Map<number, number>(); // value id → times disposed
  const model = new Map<string, { id: number; size: number }>();
  let nextId = 0;
  const cache = new ResourceCache<string, number>({
    maxBytes: 5000,
    evictionSamples: 8, // sampling path: more entries than samples
    dispose: (id, key) => {
      out.set(id, (out.get(id) ?? 0) + 1);
      assert.equal(model.get(key)?.id, id, "what leaves is what the key held");
      model.delete(key);
    },
  });
  for (let step = 0; step < 5000; step++) {
    const key = `k${Math.floor(rand() * 200)}`;
    const r = rand();
    if (r < 0.5) {
      const size = Math.floor(rand() * 400);
      const id = nextId++;
      if (cache.set(key, id, { size, cost: rand() * 10 })) model.set(key, { id, size });
      else out.set(id, 0);
    } else if (r < 0.85) assert.equal(cache.get(key), model.get(key)?.id);
    else if (r < 0.97) cache.delete(key);
    else cache.trim(rand());
    let bytes = 0;
    for (const { size } of model.values()) bytes += size;
    assert.equal(cache.bytes, bytes);
    assert.equal(cache.size, model.size);
    assert.ok(cache.bytes <= 5000);
  }
  cache.purge();
  assert.equal(model.size, 0);
  for (let id = 0; id < nextId; id++) {
    assert.equal(out.get(id), out.has(id) && out.get(id) === 0 ? 0 : 1, `value ${id}`);
  }
});
