// respondToPressure (issue 16 item 6) with a monitor fed by hand: every
// change moves the budget and the frame pools, entering warning trims the
// caches 30 %, entering critical purges them and compacts the heaps; falling
// back restores the limits; disposed targets are skipped; stop() ends it.
// The real-memory test (a child in a memory cgroup) is respond_to_pressure_cgroup_test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FramePool,
  MemoryBudget,
  PressureLevel,
  type PressureLevelValue,
  PressureMonitor,
  ResourceCache,
  ResourceHeap,
  respondToPressure,
} from "../../mod.ts";
import { requestGC } from "../../ffi/native.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";
import { reading } from "../_pressure_readings.ts";

const MiB = 2 ** 20;
const hd = { width: 640, height: 480, bytesPerPixel: 4 };
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function setup() {
  let next = reading(PressureLevel.None);
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  const feed = async (level: PressureLevelValue) => {
    next = reading(level);
    monitor.refresh();
    await settle();
  };
  const budget = new MemoryBudget({ physicalBytes: 1200 * MiB });
  const cache = new ResourceCache<number, number>({ maxBytes: 100 * MiB, budget });
  for (let i = 0; i < 10; i++) cache.set(i, i, { size: MiB });
  const pool = new FramePool({ maxFrames: 6 });
  const a = pool.acquireFrameSet(hd)!, b = pool.acquireFrameSet(hd)!;
  a.release();
  b.release(); // six idle frames
  const heap = new ResourceHeap({ capacity: 4 * MiB });
  const resource = heap.allocate(2 * MiB)!;
  resource.bytes.fill(1); // touched, then freed: compaction has whole free pages to give back
  heap.free(resource);
  return { monitor, feed, budget, cache, pool, heap };
}

test("warning trims the caches 30 % once, critical purges and compacts, falling back restores the limits", async () => {
  const { monitor, feed, budget, cache, pool, heap } = setup();
  using response = respondToPressure(monitor, { budget, caches: [cache], framePools: [pool], heaps: [heap] });
  assert.equal(response.stats().state, "normal");
  await feed(PressureLevel.Medium);
  let stats = response.stats();
  assert.deepEqual([stats.state, stats.warnings, stats.trimmedBytes], ["warning", 1, 3 * MiB]);
  assert.equal(cache.bytes, 7 * MiB);
  assert.equal(budget.totalBytes, 400 * MiB);
  assert.equal(pool.stats().formats[0].frames, 3, "half of maxFrames at warning: three idle frames unmapped");
  await feed(PressureLevel.High);
  assert.equal(response.stats().warnings, 1, "High is still warning: no second trim");
  assert.equal(cache.bytes, 7 * MiB);
  await feed(PressureLevel.Critical);
  stats = response.stats();
  assert.equal(stats.criticals, 1);
  assert.equal(stats.purgedBytes, 7 * MiB);
  assert.equal(cache.bytes, 0);
  assert.equal(budget.totalBytes, 300 * MiB);
  assert.ok(stats.compactedBytes >= 2 * MiB, `compacted ${stats.compactedBytes}`);
  assert.ok(stats.unmappedFrameBytes > 0);
  const one = pool.acquireFrameSet(hd)!;
  assert.equal(pool.acquireFrameSet(hd), null, "one set at critical");
  one.release();
  // Pressure goes away: the totals and pool limits come back, the cache fills again.
  for (let i = 0; i < 4; i++) await feed(PressureLevel.None);
  assert.equal(monitor.level, PressureLevel.None);
  assert.equal(response.stats().state, "normal");
  assert.equal(budget.totalBytes, 600 * MiB);
  const x = pool.acquireFrameSet(hd)!, y = pool.acquireFrameSet(hd);
  assert.ok(y !== null, "two sets again");
  x.release();
  y.release();
  assert.equal(cache.set(1, 1, { size: MiB }), true);
  // A second rise is answered again.
  await feed(PressureLevel.Critical);
  assert.equal(response.stats().criticals, 2);
  assert.equal(cache.bytes, 0);
});

test("disposed targets are skipped, stop() ends the responses, a monitor already high is answered at once", async () => {
  const { monitor, feed, budget, cache, pool, heap } = setup();
  const other = new ResourceCache<number, number>({ maxBytes: MiB });
  other.set(1, 1, { size: 100 });
  cache.dispose();
  pool.dispose();
  heap.dispose();
  const response = respondToPressure(monitor, { budget, caches: [cache, other], framePools: [pool], heaps: [heap] });
  await feed(PressureLevel.Critical);
  assert.equal(other.bytes, 0, "the live cache was purged, the disposed ones skipped");
  assert.equal(response.stats().purgedBytes, 100);
  response.dispose(); // the same as stop()
  response.stop(); // a second end does nothing
  for (let i = 0; i < 4; i++) await feed(PressureLevel.None);
  assert.equal(budget.totalBytes, 300 * MiB, "stopped: the total stays where the last response left it");
  // Already at Critical when wired: answered at once, synchronously.
  const late = new ResourceCache<number, number>({ maxBytes: MiB });
  late.set(1, 1, { size: 10 });
  await feed(PressureLevel.Critical);
  using again = respondToPressure(monitor, { caches: [late], gc: false });
  assert.equal(late.bytes, 0);
  assert.deepEqual([again.stats().criticals, again.stats().collections], [1, 0]);
});

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;
const monitor = () => new PressureMonitor({ read: () => reading(PressureLevel.None) });
const rows: BadInputRow<PressureMonitor>[] = [
  {
    name: "a monitor that is not a PressureMonitor",
    act: () => respondToPressure(any({ level: 0 }), {}),
    expect: TypeError,
  },
  { name: "targets null", act: (m) => respondToPressure(m, any(null)), expect: TypeError },
  { name: "caches holding a Map", act: (m) => respondToPressure(m, { caches: [any(new Map())] }), expect: TypeError },
  { name: "framePools not an array", act: (m) => respondToPressure(m, { framePools: any({}) }), expect: TypeError },
  { name: "heaps holding a number", act: (m) => respondToPressure(m, { heaps: [any(5)] }), expect: TypeError },
  { name: "budget {}", act: (m) => respondToPressure(m, { budget: any({}) }), expect: TypeError },
  { name: "an unknown target", act: (m) => respondToPressure(m, any({ pools: [] })), expect: TypeError },
  { name: "gc 'yes'", act: (m) => respondToPressure(m, { gc: any("yes") }), expect: TypeError },
];
badInputTable("respondToPressure", rows.map((row) => ({ ...row, arrange: monitor })));

test("a listener that refreshes inside a change: the budget and the response end at the monitor's level", async () => {
  let next = reading(PressureLevel.None);
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  const followed = new MemoryBudget({ physicalBytes: 1200, minimumBytes: 0, pressure: monitor });
  const budget = new MemoryBudget({ physicalBytes: 1200, minimumBytes: 0 });
  using response = respondToPressure(monitor, { budget, gc: false });
  monitor.on(PressureLevel.Critical, () => {
    next = reading(PressureLevel.Low);
    monitor.refresh(); // a second reading: one step down, to High, inside the Critical dispatch
  });
  next = reading(PressureLevel.Critical);
  monitor.refresh();
  await settle();
  assert.equal(monitor.level, PressureLevel.High);
  // Before: both stayed at critical (a total of 300), as the later change reached them first.
  assert.deepEqual([followed.stats().pressure, followed.totalBytes], ["warning", 400]);
  assert.deepEqual([budget.stats().pressure, budget.totalBytes], ["warning", 400]);
  assert.equal(response.stats().state, "warning");
  assert.equal(response.stats().criticals, 1, "the critical response ran, then the fall was followed");
  followed[Symbol.dispose]();
});

test("a disposed budget or a stopped response is let go by the monitor at once, not at its next change", async () => {
  const monitor = new PressureMonitor({ read: () => reading(PressureLevel.None), hysteresis: 1 });
  const refs: WeakRef<object>[] = [];
  (() => {
    for (let i = 0; i < 8; i++) {
      const budget = new MemoryBudget({ physicalBytes: MiB, pressure: monitor });
      budget[Symbol.dispose]();
      refs.push(new WeakRef(budget));
      const cache = new ResourceCache<number, number>({ maxBytes: MiB });
      respondToPressure(monitor, { caches: [cache] }).stop();
      refs.push(new WeakRef(cache));
    }
  })();
  const pause = () => new Promise((wake) => setTimeout(wake, 5));
  for (let round = 0; round < 50 && refs.some((ref) => ref.deref() !== undefined); round++) {
    await pause(); // (a deref() keeps its target alive until the job that called it ends)
    requestGC();
    await pause();
  }
  // Before: all 16 stayed reachable from the monitor (an async iterator's sink each) until its level changed.
  assert.equal(refs.filter((ref) => ref.deref() !== undefined).length, 0, "every disposed follower was collected");
  assert.equal(monitor.level, PressureLevel.None, "the level never changed");
});
