// Bad input to MemoryBudget: each row gets its documented error without a
// native call and leaves the budget as it was.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryBudget } from "../../mod.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";
import { rangeBoundsTable } from "./_range_bounds.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

function arrange(): MemoryBudget {
  const budget = new MemoryBudget({ physicalBytes: 1 << 20, categories: ["videoFrames", "ui"] });
  budget.request(1000, "ui");
  return budget;
}

// Nothing changed: the one token is still counted, and the budget still grants.
function unchanged(budget: MemoryBudget): void {
  const stats = budget.stats();
  assert.equal(stats.usedBytes, 1000);
  assert.equal(stats.totalBytes, 1 << 19);
  assert.deepEqual(Object.keys(stats.categories), ["videoFrames", "ui"]);
  assert.equal(stats.categories.videoFrames.refused, 0);
  budget.request(24, "videoFrames")!.release();
}

const create = (options: unknown) => () => new MemoryBudget(any(options));
const rows: BadInputRow<MemoryBudget>[] = [
  { name: "request(-1)", act: (b) => b.request(-1, "ui"), expect: RangeError },
  { name: "request(NaN)", act: (b) => b.request(NaN, "ui"), expect: RangeError },
  { name: "request(1.5)", act: (b) => b.request(1.5, "ui"), expect: RangeError },
  { name: "request(2^53)", act: (b) => b.request(2 ** 53, "ui"), expect: RangeError },
  { name: "request('64')", act: (b) => b.request(any("64"), "ui"), expect: TypeError },
  { name: "request of an undeclared category", act: (b) => b.request(64, "effects"), expect: TypeError },
  { name: "request with category ''", act: (b) => b.request(64, ""), expect: TypeError },
  { name: "request with category 7", act: (b) => b.request(64, any(7)), expect: TypeError },
  { name: "request with priority 101", act: (b) => b.request(64, "ui", 101), expect: RangeError },
  { name: "request with priority -1", act: (b) => b.request(64, "ui", -1), expect: RangeError },
  { name: "request with priority NaN", act: (b) => b.request(64, "ui", NaN), expect: RangeError },
  { name: "request with priority 'high'", act: (b) => b.request(64, "ui", any("high")), expect: TypeError },
  { name: "addReclaimer(null)", act: (b) => b.addReclaimer(any(null)), expect: TypeError },
  {
    name: "addReclaimer with priority 1000",
    act: (b) => b.addReclaimer(() => 0, { priority: 1000 }),
    expect: RangeError,
  },
  { name: "addReclaimer with options 5", act: (b) => b.addReclaimer(() => 0, any(5)), expect: TypeError },
  { name: "adaptToPressure(5)", act: (b) => b.adaptToPressure(any(5)), expect: RangeError },
  { name: "adaptToPressure('high')", act: (b) => b.adaptToPressure(any("high")), expect: TypeError },
  { name: "adaptToThermalState('hot')", act: (b) => b.adaptToThermalState(any("hot")), expect: TypeError },
  { name: "new MemoryBudget({ physicalBytes: -1 })", act: create({ physicalBytes: -1 }), expect: RangeError },
  { name: "new MemoryBudget({ physicalBytes: NaN })", act: create({ physicalBytes: NaN }), expect: RangeError },
  { name: "new MemoryBudget with fraction 0", act: create({ fractions: { normal: 0 } }), expect: RangeError },
  { name: "new MemoryBudget with fraction 1.5", act: create({ fractions: { warning: 1.5 } }), expect: RangeError },
  {
    name: "new MemoryBudget with fractions growing with pressure",
    act: create({ physicalBytes: 100, fractions: { normal: 0.2, warning: 0.5 } }),
    expect: RangeError,
  },
  {
    name: "new MemoryBudget with thermal reduction 1",
    act: create({ thermalReductions: { fair: 1 } }),
    expect: RangeError,
  },
  {
    name: "new MemoryBudget with minimumBytes above the normal total",
    act: create({ physicalBytes: 100, minimumBytes: 51 }),
    expect: RangeError,
  },
  { name: "new MemoryBudget with categories []", act: create({ categories: [] }), expect: TypeError },
  { name: "new MemoryBudget with a repeated category", act: create({ categories: ["a", "a"] }), expect: TypeError },
  { name: "new MemoryBudget with an unknown option", act: create({ physicalBytes: 100, limit: 5 }), expect: TypeError },
  { name: "new MemoryBudget with pressure {}", act: create({ physicalBytes: 100, pressure: {} }), expect: TypeError },
  { name: "new MemoryBudget(5)", act: create(5), expect: TypeError },
];

badInputTable("MemoryBudget", rows.map((row) => ({ ...row, arrange, after: unchanged })));

test("an option of the wrong type is named with its article ('an array', 'an object')", () => {
  assert.throws(() => new MemoryBudget({ categories: 5 as never }), { message: /'categories' must be an array:/ });
  assert.throws(() => new MemoryBudget({ fractions: 5 as never }), { message: /'fractions' must be an object:/ });
});

const MAX = 2 ** 47;
const budgetOf = (options: unknown) => new MemoryBudget({ physicalBytes: 1 << 20, ...any(options) });
rangeBoundsTable("MemoryBudget", [
  {
    name: "physicalBytes",
    make: (v) => new MemoryBudget({ physicalBytes: v }),
    below: [0, -1, -(2 ** 31)],
    above: [MAX + 1, 2 ** 52],
  },
  {
    name: "fractions.normal",
    make: (v) => budgetOf({ fractions: { normal: v, warning: 0.01, critical: 0.01 } }),
    below: [0, -1],
    above: [1.5, 10],
  },
  {
    name: "fractions.warning",
    make: (v) => budgetOf({ fractions: { normal: 1, warning: v, critical: 1e-9 } }),
    below: [0, -1],
    above: [1.5, 10],
  },
  {
    name: "fractions.critical",
    make: (v) => budgetOf({ fractions: { normal: 1, warning: 1, critical: v } }),
    below: [0, -1],
    above: [1.5, 10],
  },
  {
    name: "thermalReductions.fair",
    make: (v) => budgetOf({ thermalReductions: { fair: v } }),
    below: [-1],
    above: [1, 5],
  },
  {
    name: "thermalReductions.serious",
    make: (v) => budgetOf({ thermalReductions: { serious: v } }),
    below: [-0.5, -1],
    above: [1, 5],
  },
  // The real maximum is the normal total (half of 1 MiB here), whatever the value above it.
  {
    name: "minimumBytes",
    make: (v) => budgetOf({ minimumBytes: v }),
    below: [-1, -(2 ** 40)],
    above: [2 ** 19 + 1, MAX + 1],
  },
  { name: "request size", make: (v) => budgetOf({}).request(v, "ui"), below: [-1], above: [2 ** 53, MAX + 1] },
  { name: "request priority", make: (v) => budgetOf({}).request(1, "ui", v), below: [-1, -100], above: [101, 1e9] },
  {
    name: "addReclaimer priority",
    make: (v) => budgetOf({}).addReclaimer(() => 0, { priority: v }),
    below: [-1, -100],
    above: [101, 1e9],
  },
  { name: "adaptToPressure level", make: (v) => budgetOf({}).adaptToPressure(any(v)), below: [-1], above: [5, 100] },
]);
