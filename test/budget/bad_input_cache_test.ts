// Bad input to ResourceCache: each row gets its documented error without a
// native call and leaves the cache as it was (prefetch checks its
// predictions synchronously, before any load starts).
import assert from "node:assert/strict";
import { ResourceCache } from "../../mod.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";
import { rangeBoundsTable } from "./_range_bounds.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

interface Arranged {
  cache: ResourceCache<string, number>;
  generated: string[];
}

function arrange(): Arranged {
  const cache = new ResourceCache<string, number>({ maxBytes: 1000 });
  cache.set("a", 1, { size: 100, cost: 2 });
  return { cache, generated: [] };
}

function unchanged({ cache, generated }: Arranged): void {
  assert.deepEqual(generated, [], "no load started");
  const stats = cache.stats();
  assert.deepEqual([stats.entries, stats.bytes, stats.evictions, stats.rejected], [1, 100, 0, 0]);
  assert.equal(cache.get("a"), 1);
  assert.equal(cache.set("b", 2, { size: 900 }), true);
}

const generate = (arranged: Arranged) => (key: string) => {
  arranged.generated.push(key);
  return { value: 0, size: 1 };
};
const prefetchWith = (predictions: unknown) => (a: Arranged) => a.cache.prefetch(any(predictions), generate(a));
const create = (options: unknown) => () => new ResourceCache(any(options));

const rows: BadInputRow<Arranged>[] = [
  { name: "set with size -1", act: ({ cache }) => cache.set("b", 2, { size: -1 }), expect: RangeError },
  { name: "set with size NaN", act: ({ cache }) => cache.set("b", 2, { size: NaN }), expect: RangeError },
  { name: "set with size 1.5", act: ({ cache }) => cache.set("b", 2, { size: 1.5 }), expect: RangeError },
  { name: "set with size '8'", act: ({ cache }) => cache.set("b", 2, { size: any("8") }), expect: TypeError },
  { name: "set without an entry", act: ({ cache }) => cache.set("b", 2, any(undefined)), expect: TypeError },
  { name: "set with cost NaN", act: ({ cache }) => cache.set("b", 2, { size: 8, cost: NaN }), expect: RangeError },
  { name: "set with cost -1", act: ({ cache }) => cache.set("b", 2, { size: 8, cost: -1 }), expect: RangeError },
  {
    name: "set with cost Infinity",
    act: ({ cache }) => cache.set("b", 2, { size: 8, cost: Infinity }),
    expect: RangeError,
  },
  { name: "set with cost '1'", act: ({ cache }) => cache.set("b", 2, { size: 8, cost: any("1") }), expect: TypeError },
  {
    name: "replacing a key with a bad size keeps the old value",
    act: ({ cache }) => cache.set("a", 5, { size: -5 }),
    expect: RangeError,
  },
  { name: "trim(1.5)", act: ({ cache }) => cache.trim(1.5), expect: RangeError },
  { name: "trim(-0.1)", act: ({ cache }) => cache.trim(-0.1), expect: RangeError },
  { name: "trim(NaN)", act: ({ cache }) => cache.trim(NaN), expect: RangeError },
  { name: "trim('half')", act: ({ cache }) => cache.trim(any("half")), expect: TypeError },
  { name: "prefetch with probability 1.5", act: prefetchWith([{ key: "x", probability: 1.5 }]), expect: RangeError },
  { name: "prefetch with probability -0.1", act: prefetchWith([{ key: "x", probability: -0.1 }]), expect: RangeError },
  { name: "prefetch with probability NaN", act: prefetchWith([{ key: "x", probability: NaN }]), expect: RangeError },
  {
    name: "prefetch with probability 'likely'",
    act: prefetchWith([{ key: "x", probability: "likely" }]),
    expect: TypeError,
  },
  {
    name: "prefetch with a good prediction before a bad one",
    act: prefetchWith([{ key: "x", probability: 0.9 }, { key: "y", probability: 2 }]),
    expect: RangeError,
  },
  { name: "prefetch(null)", act: prefetchWith(null), expect: TypeError },
  { name: "prefetch([5])", act: prefetchWith([5]), expect: TypeError },
  {
    name: "prefetch without a generate function",
    act: ({ cache }) => cache.prefetch([{ key: "x", probability: 1 }], any(null)),
    expect: TypeError,
  },
  { name: "new ResourceCache() without options", act: create(undefined), expect: TypeError },
  { name: "new ResourceCache({ maxBytes: 0 })", act: create({ maxBytes: 0 }), expect: RangeError },
  { name: "new ResourceCache({ maxBytes: NaN })", act: create({ maxBytes: NaN }), expect: RangeError },
  {
    name: "new ResourceCache with weights summing to 0",
    act: create({ maxBytes: 10, weights: { age: 0, size: 0, cost: 0, frequency: 0 } }),
    expect: RangeError,
  },
  {
    name: "new ResourceCache with a negative weight",
    act: create({ maxBytes: 10, weights: { age: -1 } }),
    expect: RangeError,
  },
  {
    name: "new ResourceCache with weight NaN",
    act: create({ maxBytes: 10, weights: { size: NaN } }),
    expect: RangeError,
  },
  {
    name: "new ResourceCache with an unknown weight",
    act: create({ maxBytes: 10, weights: { recency: 1 } }),
    expect: TypeError,
  },
  {
    name: "new ResourceCache with prefetchThreshold 2",
    act: create({ maxBytes: 10, prefetchThreshold: 2 }),
    expect: RangeError,
  },
  {
    name: "new ResourceCache with prefetchConcurrency 0",
    act: create({ maxBytes: 10, prefetchConcurrency: 0 }),
    expect: RangeError,
  },
  { name: "new ResourceCache with an unknown option", act: create({ maxBytes: 10, limit: 5 }), expect: TypeError },
  { name: "new ResourceCache with budget {}", act: create({ maxBytes: 10, budget: {} }), expect: TypeError },
  { name: "new ResourceCache with dispose 5", act: create({ maxBytes: 10, dispose: 5 }), expect: TypeError },
  {
    name: "new ResourceCache with sizeScale 'max'",
    act: create({ maxBytes: 10, sizeScale: "max" }),
    expect: TypeError,
  },
];

badInputTable("ResourceCache", rows.map((row) => ({ ...row, arrange, after: unchanged })));

const cacheOf = (options: unknown) => new ResourceCache<string, number>({ maxBytes: 1000, ...any(options) });
rangeBoundsTable("ResourceCache", [
  { name: "maxBytes", make: (v) => cacheOf({ maxBytes: v }), below: [0, -1], above: [2 ** 47 + 1, 2 ** 52] },
  ...(["age", "size", "cost", "frequency"] as const).map((w) => ({
    name: `weights.${w}`,
    make: (v: number) => cacheOf({ weights: { [w]: v } }),
    below: [-1, -1e9],
    above: [],
  })),
  { name: "priority", make: (v) => cacheOf({ priority: v }), below: [-1, -50], above: [101, 1e6] },
  { name: "prefetchThreshold", make: (v) => cacheOf({ prefetchThreshold: v }), below: [-0.1, -5], above: [1.1, 5] },
  { name: "prefetchConcurrency", make: (v) => cacheOf({ prefetchConcurrency: v }), below: [0, -1], above: [1025, 1e6] },
  { name: "evictionSamples", make: (v) => cacheOf({ evictionSamples: v }), below: [0, -1], above: [4097, 1e6] },
  { name: "set size", make: (v) => cacheOf({}).set("k", 1, { size: v }), below: [-1], above: [2 ** 53] },
  { name: "set cost", make: (v) => cacheOf({}).set("k", 1, { size: 1, cost: v }), below: [-1, -1e9], above: [] },
  { name: "trim fraction", make: (v) => cacheOf({}).trim(v), below: [-0.5, -1], above: [1.5, 9] },
]);
