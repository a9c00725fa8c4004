// MemoryBudget (issue 16 item 1): totals per pressure and thermal state,
// grants and refusals, reclaimers asked below the request's priority, the
// total following a monitor's level both ways, the design's size classes.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BudgetPriority,
  BudgetToken,
  MemoryBudget,
  PressureLevel,
  type PressureLevelValue,
  PressureMonitor,
  readMemoryStatus,
} from "../../mod.ts";
import { reading } from "../_pressure_readings.ts";

const MiB = 2 ** 20;

test("the total is 1/2, 1/3, 1/4 of physical by pressure and loses 10 %, 30 % or all but the minimum by heat", () => {
  const budget = new MemoryBudget({ physicalBytes: 1200 * MiB, minimumBytes: 10 * MiB });
  assert.equal(budget.totalBytes, 600 * MiB);
  const byLevel = [0, 1, 2, 3, 4].map((level) => budget.adaptToPressure(level as PressureLevelValue));
  assert.deepEqual(byLevel, [600 * MiB, 600 * MiB, 400 * MiB, 400 * MiB, 300 * MiB]);
  assert.equal(budget.stats().pressure, "critical");
  assert.equal(budget.adaptToThermalState("fair"), Math.floor(300 * MiB * 0.9));
  assert.equal(budget.adaptToThermalState("serious"), Math.floor(300 * MiB * 0.7));
  assert.equal(budget.adaptToThermalState("critical"), 10 * MiB);
  assert.equal(budget.adaptToPressure(PressureLevel.None), 10 * MiB, "thermal critical holds whatever the pressure");
  assert.equal(budget.adaptToThermalState("unknown"), 600 * MiB);
  assert.equal(budget.adaptToThermalState("nominal"), 600 * MiB);
  // Configured fractions and reductions; the minimum is a floor for both.
  const custom = new MemoryBudget({
    physicalBytes: 1000,
    fractions: { normal: 1, warning: 0.5, critical: 0.2 },
    thermalReductions: { fair: 0.5 },
    minimumBytes: 150,
  });
  assert.equal(custom.totalBytes, 1000);
  assert.equal(custom.adaptToPressure(PressureLevel.High), 500);
  assert.equal(custom.adaptToThermalState("fair"), 250);
  assert.equal(custom.adaptToPressure(PressureLevel.Critical), 150, "200 × 0.5 = 100 is below the minimum");
});

test("without physicalBytes the budget starts from the real limit (cgroup included) and the default minimum is 1/8", () => {
  const status = readMemoryStatus();
  const real = status.limitBytes !== null && status.limitBytes < status.totalBytes
    ? status.limitBytes
    : status.totalBytes;
  const budget = new MemoryBudget();
  assert.equal(budget.stats().physicalBytes, real);
  assert.equal(budget.totalBytes, Math.floor(real / 2));
  assert.equal(budget.adaptToThermalState("critical"), Math.floor(real / 8));
});

test("request grants until the total, counts per category, and a released token gives its bytes back once", () => {
  const budget = new MemoryBudget({ physicalBytes: 2000, categories: ["videoFrames", "ui"] });
  const a = budget.request(600, "videoFrames")!;
  const b = budget.request(300, "ui", BudgetPriority.High)!;
  assert.ok(a instanceof BudgetToken && b instanceof BudgetToken);
  assert.deepEqual([a.size, a.category, a.priority], [600, "videoFrames", BudgetPriority.Normal]);
  assert.equal(budget.request(101, "videoFrames"), null, "1000 total, 900 used");
  assert.deepEqual([
    budget.accepts("ui"),
    budget.accepts("effects"),
    budget.accepts(""),
    new MemoryBudget({ physicalBytes: 8 }).accepts("any"),
  ], [true, false, false, true]);
  assert.equal(budget.request(1001, "ui", BudgetPriority.Critical), null, "larger than the total");
  const zero = budget.request(0, "ui")!;
  assert.equal(zero.size, 0);
  zero.release();
  let stats = budget.stats();
  assert.deepEqual(stats.categories.videoFrames, { usedBytes: 600, peakBytes: 600, tokens: 1, granted: 1, refused: 1 });
  assert.deepEqual(stats.categories.ui, { usedBytes: 300, peakBytes: 300, tokens: 1, granted: 2, refused: 1 });
  assert.deepEqual([stats.usedBytes, stats.availableBytes, stats.peakBytes], [900, 100, 900]);
  a.release();
  a.release();
  assert.equal(a.released, true);
  {
    using c = budget.request(700, "videoFrames")!;
    assert.equal(c.released, false);
    assert.equal(budget.usedBytes, 1000);
  }
  stats = budget.stats();
  assert.deepEqual(stats.categories.videoFrames, { usedBytes: 0, peakBytes: 700, tokens: 0, granted: 2, refused: 1 });
  assert.equal(stats.usedBytes, 300);
  assert.equal(stats.peakBytes, 1000);
});

// A reclaimer over tokens it holds: frees the newest first until `wanted` bytes went back.
function holder(budget: MemoryBudget, name: string, priority: number, sizes: number[], log: string[]) {
  const tokens = sizes.map((size) => budget.request(size, name, priority)!);
  budget.addReclaimer((wanted) => {
    log.push(`${name}:${wanted}`);
    let freed = 0;
    while (freed < wanted && tokens.length > 0) {
      const token = tokens.pop()!;
      freed += token.size;
      token.release();
    }
    return freed;
  }, { priority });
  return tokens;
}

test("a request that does not fit asks reclaimers below its priority, lowest first, for what is missing", () => {
  const budget = new MemoryBudget({ physicalBytes: 2000, minimumBytes: 0 });
  const log: string[] = [];
  const low = holder(budget, "low", BudgetPriority.Low, [100, 100], log);
  const background = holder(budget, "background", BudgetPriority.Background, [100, 100], log);
  const high = holder(budget, "high", BudgetPriority.High, [400], log);
  assert.equal(budget.usedBytes, 800);
  // 350 missing: background (lowest) gives 200, then low gives 200 (two tokens for 150), high is not asked.
  const normal = budget.request(550, "normal", BudgetPriority.Normal);
  assert.ok(normal !== null);
  assert.deepEqual(log, ["background:350", "low:150"]);
  assert.deepEqual([background.length, low.length, high.length], [0, 0, 1]);
  assert.equal(budget.usedBytes, 950);
  const stats = budget.stats();
  assert.equal(stats.reclaimCalls, 2);
  assert.equal(stats.reclaimedBytes, 400, "measured from released tokens");
  // Equal priority is not below: a Normal request asks only background and low (empty now), never High.
  log.length = 0;
  assert.equal(budget.request(500, "normal", BudgetPriority.Normal), null);
  assert.deepEqual(log, ["background:450", "low:450"]);
  assert.equal(high.length, 1);
  assert.equal(budget.stats().categories.normal.refused, 1);
  // A critical request makes High give way.
  assert.ok(budget.request(400, "critical", BudgetPriority.Critical) !== null);
  assert.equal(high.length, 0);
});

test("a reclaimer that frees nothing leaves the request refused; an unregistered one is not asked", () => {
  const budget = new MemoryBudget({ physicalBytes: 200, minimumBytes: 0 });
  let asked = 0;
  const remove = budget.addReclaimer(() => (asked++, 0), { priority: BudgetPriority.Background });
  const held = budget.request(80, "a")!;
  assert.equal(budget.request(40, "b"), null);
  assert.equal(asked, 1);
  remove();
  assert.equal(budget.request(40, "b"), null);
  assert.equal(asked, 1);
  held.release();
});

test("a request made by a reclaimer while it runs does not ask the reclaimers again", () => {
  const budget = new MemoryBudget({ physicalBytes: 200, minimumBytes: 0 });
  let nested: unknown = "not asked";
  let calls = 0;
  const held = budget.request(90, "a", BudgetPriority.Background)!;
  budget.addReclaimer(() => {
    calls++;
    nested = budget.request(50, "b", BudgetPriority.Critical); // does not fit, and no recursion
    held.release();
    return 90;
  }, { priority: BudgetPriority.Background });
  const token = budget.request(50, "c", BudgetPriority.High);
  assert.equal(calls, 1);
  assert.equal(nested, null);
  assert.ok(token !== null);
});

test("a reclaimer removed by an earlier reclaimer of the same pass is not called", async () => {
  const budget = new MemoryBudget({ physicalBytes: 2000, minimumBytes: 0 });
  budget.request(900, "pinned", BudgetPriority.Background);
  const calls: string[] = [];
  let removeSecond = () => {};
  budget.addReclaimer(() => {
    calls.push("first");
    removeSecond(); // the second belongs to something the first shut down
    return 0;
  }, { priority: BudgetPriority.Background });
  removeSecond = budget.addReclaimer(() => {
    calls.push("second");
    throw new Error("a reclaimer of something closed");
  }, { priority: BudgetPriority.Low });
  assert.equal(budget.request(500, "ui", BudgetPriority.High), null);
  // Before: the second was called from the pass's snapshot, and its error ended the process from a microtask.
  assert.deepEqual(calls, ["first"]);
  assert.equal(budget.stats().reclaimCalls, 1);
  await new Promise((resolve) => setTimeout(resolve, 0));
});

test("a total lowered by a reclaimer during a pass asks every reclaimer for the excess once the pass ends", () => {
  const budget = new MemoryBudget({ physicalBytes: 2000, minimumBytes: 0 }); // normal 1000, critical 500
  budget.request(600, "pinned", BudgetPriority.Background);
  const cache = [budget.request(300, "cache", 90)!];
  const asked: number[] = [];
  budget.addReclaimer((wanted) => {
    asked.push(wanted);
    for (const token of cache.splice(0)) token.release();
    return 300;
  }, { priority: 90 });
  budget.addReclaimer(() => (budget.adaptToPressure(PressureLevel.Critical), 0), {
    priority: BudgetPriority.Background,
  });
  // 200 does not fit (900 of 1000 used); the Background reclaimer lowers the total to 500 while it is asked.
  assert.equal(budget.request(200, "ui", BudgetPriority.Normal), null);
  // Before: the priority-90 reclaimer (above the request's) was never asked and the budget stayed at 900 of 500.
  assert.deepEqual(asked, [400]);
  assert.deepEqual([budget.totalBytes, budget.usedBytes], [500, 600]);
  assert.equal(budget.stats().reclaimCalls, 3);
});

test("a total falling below what is used asks every reclaimer, whatever its priority, for the excess", () => {
  const budget = new MemoryBudget({ physicalBytes: 1200, minimumBytes: 0 });
  const log: string[] = [];
  const low = holder(budget, "low", BudgetPriority.Low, [100], log);
  const critical = holder(budget, "critical", BudgetPriority.Critical, [250, 100], log);
  assert.equal(budget.usedBytes, 450);
  budget.adaptToPressure(PressureLevel.Critical); // 300 total: 150 too much; low gives 100, critical the rest
  assert.deepEqual(log, ["low:150", "critical:50"]);
  assert.deepEqual([low.length, critical.length], [0, 1]);
  assert.equal(budget.usedBytes, 250);
  assert.equal(budget.request(51, "low", BudgetPriority.Critical), null, "reclaimers hold nothing below Critical now");
});

test("a budget given a monitor follows its level up and back down", async () => {
  let next = reading(PressureLevel.High);
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  using budget = new MemoryBudget({ physicalBytes: 1200, pressure: monitor });
  assert.equal(budget.totalBytes, 400, "the monitor's level at construction");
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  next = reading(PressureLevel.Critical);
  monitor.refresh();
  await settle();
  assert.equal(budget.totalBytes, 300);
  next = reading(PressureLevel.None);
  for (let i = 0; i < 4; i++) monitor.refresh();
  await settle();
  assert.equal(monitor.level, PressureLevel.None);
  assert.equal(budget.totalBytes, 600);
  budget[Symbol.dispose]();
  next = reading(PressureLevel.Critical);
  monitor.refresh();
  await settle();
  assert.equal(budget.totalBytes, 600, "a disposed budget no longer follows");
});

test("recommendedLimit follows the design's size classes (≥ 6 GB 40 %, ≥ 4 GB 30 %, else 25 %)", () => {
  const limit = (physicalBytes: number) => new MemoryBudget({ physicalBytes }).recommendedLimit();
  assert.equal(limit(16e9), 6.4e9);
  assert.equal(limit(6e9), 2.4e9);
  assert.equal(limit(6e9 - 1), Math.floor((6e9 - 1) * 0.3));
  assert.equal(limit(4e9), 1.2e9);
  assert.equal(limit(4e9 - 1), Math.floor((4e9 - 1) * 0.25));
  assert.equal(limit(1e9), 2.5e8);
});
