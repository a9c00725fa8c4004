// Issue 12 item 8: a listener for level L hears every rise from below L to L
// or above (a jump from Low straight to Critical included), once per rise: not
// again while the level stays at or above L, again after it fell below L and
// rose. Falls are never heard (the async iterator sees them).
import assert from "node:assert/strict";
import { test } from "node:test";
import { PressureLevel, type PressureLevelValue, PressureMonitor } from "../../mod.ts";
import { reading } from "../_pressure_readings.ts";
import { fixture, runChild } from "../_helpers.ts";

// A monitor fed a list of readings (hysteresis 1: each lower reading takes the level down one step),
// with one listener per level from Low to Critical recording what it heard.
function watch(start: PressureLevelValue) {
  let next = reading(start);
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  const heard: Record<number, PressureLevelValue[]> = { 1: [], 2: [], 3: [], 4: [] };
  for (const level of [1, 2, 3, 4] as PressureLevelValue[]) monitor.on(level, (now) => heard[level].push(now));
  const feed = (level: PressureLevelValue) => {
    next = reading(level);
    return monitor.refresh();
  };
  return { monitor, heard, feed };
}

test("a jump from Low straight to Critical is heard by the High, Medium and Critical listeners, once", () => {
  const { heard, feed } = watch(PressureLevel.Low);
  assert.equal(feed(PressureLevel.Critical), PressureLevel.Critical);
  assert.deepEqual(heard, { 1: [], 2: [4], 3: [4], 4: [4] }, "Low was already reached: its listener is silent");
  feed(PressureLevel.Critical);
  assert.deepEqual(heard, { 1: [], 2: [4], 3: [4], 4: [4] }, "staying is silent");
});

test("staying at or above L is silent, falling is silent, falling below L and rising again is heard again", () => {
  const { monitor, heard, feed } = watch(PressureLevel.None);
  const steps: [PressureLevelValue, PressureLevelValue, Record<number, PressureLevelValue[]>][] = [
    // [reading, level after it, what every listener has heard so far]
    [PressureLevel.High, PressureLevel.High, { 1: [3], 2: [3], 3: [3], 4: [] }],
    [PressureLevel.Critical, PressureLevel.Critical, { 1: [3], 2: [3], 3: [3], 4: [4] }],
    [PressureLevel.None, PressureLevel.High, { 1: [3], 2: [3], 3: [3], 4: [4] }], // falls one step: silent
    [PressureLevel.Critical, PressureLevel.Critical, { 1: [3], 2: [3], 3: [3], 4: [4, 4] }], // High stayed: silent
    [PressureLevel.None, PressureLevel.High, { 1: [3], 2: [3], 3: [3], 4: [4, 4] }],
    [PressureLevel.None, PressureLevel.Medium, { 1: [3], 2: [3], 3: [3], 4: [4, 4] }], // now below High
    [PressureLevel.High, PressureLevel.High, { 1: [3], 2: [3], 3: [3, 3], 4: [4, 4] }], // heard again
    [PressureLevel.None, PressureLevel.Medium, { 1: [3], 2: [3], 3: [3, 3], 4: [4, 4] }],
    [PressureLevel.None, PressureLevel.Low, { 1: [3], 2: [3], 3: [3, 3], 4: [4, 4] }],
    [PressureLevel.None, PressureLevel.None, { 1: [3], 2: [3], 3: [3, 3], 4: [4, 4] }],
    [PressureLevel.Medium, PressureLevel.Medium, { 1: [3, 2], 2: [3, 2], 3: [3, 3], 4: [4, 4] }],
    [PressureLevel.Critical, PressureLevel.Critical, { 1: [3, 2], 2: [3, 2], 3: [3, 3, 4], 4: [4, 4, 4] }],
  ];
  for (const [index, [level, after, expected]] of steps.entries()) {
    assert.equal(feed(level), after, `step ${index}: level`);
    assert.deepEqual(heard, expected, `step ${index}: heard`);
  }
  assert.equal(monitor.level, PressureLevel.Critical);
});

test("a rise from a cgroup event is heard like any other; a listener added above its level waits for a new rise", () => {
  let next = reading(PressureLevel.None, { high: 0, max: 0, oom: 0, oomKill: 0 });
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  const high: PressureLevelValue[] = [];
  monitor.on(PressureLevel.High, (level) => high.push(level));
  next = reading(PressureLevel.None, { high: 1, max: 0, oom: 0, oomKill: 0 });
  assert.equal(monitor.refresh(), PressureLevel.High);
  assert.deepEqual(high, [PressureLevel.High]);
  const late: PressureLevelValue[] = [];
  monitor.on(PressureLevel.Medium, (level) => late.push(level));
  next = reading(PressureLevel.High, { high: 1, max: 0, oom: 0, oomKill: 0 });
  monitor.refresh();
  assert.deepEqual(late, [], "the level was already above Medium when it was added");
  next = reading(PressureLevel.Low, { high: 1, max: 0, oom: 0, oomKill: 0 });
  monitor.refresh();
  monitor.refresh();
  assert.equal(monitor.level, PressureLevel.Low);
  next = reading(PressureLevel.Critical, { high: 1, max: 0, oom: 0, oomKill: 0 });
  monitor.refresh();
  assert.deepEqual(late, [PressureLevel.Critical]);
  assert.deepEqual(high, [PressureLevel.High, PressureLevel.Critical]);
});

test("on() refuses None (the level never rises to it), levels out of range, and wrong types", () => {
  const monitor = new PressureMonitor({ read: () => reading(PressureLevel.None) });
  assert.throws(() => monitor.on(PressureLevel.None, () => {}), RangeError);
  for (const bad of [5, -1, 1.5, Number.NaN]) {
    assert.throws(() => monitor.on(bad as PressureLevelValue, () => {}), RangeError, String(bad));
  }
  assert.throws(() => monitor.on("3" as unknown as PressureLevelValue, () => {}), TypeError);
  assert.throws(() => monitor.on(PressureLevel.High, null as unknown as () => void), TypeError);
  assert.equal(typeof monitor.on(PressureLevel.Low, () => {}), "number");
});

test("a reading refresh() refuses (NaN, null, an events getter that throws) changes nothing", () => {
  const events = { high: 0, max: 0, oom: 0, oomKill: 0 };
  let next: unknown = reading(PressureLevel.Low, events);
  const monitor = new PressureMonitor({ read: () => next as ReturnType<typeof reading>, hysteresis: 1 });
  const before = monitor.status;
  const heard: PressureLevelValue[] = [];
  monitor.on(PressureLevel.Medium, (level) => heard.push(level));
  const throwingEvents = {
    ...reading(PressureLevel.Critical),
    events: {
      high: 0,
      oom: 0,
      oomKill: 0,
      get max(): number {
        throw new Error("events getter");
      },
    },
  };
  // Before: the monitor kept each refused reading as its status (NaN, null, the throwing events).
  for (const bad of [{ ...reading(PressureLevel.None), availableBytes: Number.NaN }, null, throwingEvents]) {
    next = bad;
    assert.throws(() => monitor.refresh());
    assert.equal(monitor.status, before, "the reading before the refused one is kept");
    assert.equal(monitor.level, PressureLevel.Low);
    assert.deepEqual(heard, []);
  }
  next = reading(PressureLevel.High, { ...events, high: 1 });
  assert.equal(monitor.refresh(), PressureLevel.High, "events are compared with the last reading taken");
});

test("a listener that refreshes during a change: the iterator hears both changes in order, followers end at the level", async () => {
  let next = reading(PressureLevel.None);
  const monitor = new PressureMonitor({ read: () => next, hysteresis: 1 });
  const seen: PressureLevelValue[] = [];
  const iterator = monitor[Symbol.asyncIterator]();
  const collect = (async () => {
    for (let i = 0; i < 2; i++) seen.push((await iterator.next()).value as PressureLevelValue);
    await iterator.return?.();
  })();
  await Promise.resolve(); // the iterator's sink is added at its first next()
  monitor.on(PressureLevel.Critical, () => {
    next = reading(PressureLevel.Low);
    monitor.refresh(); // falls one step, to High, inside the Critical dispatch
  });
  const late: PressureLevelValue[] = [];
  monitor.on(PressureLevel.Critical, (level) => late.push(level));
  next = reading(PressureLevel.Critical);
  monitor.refresh();
  await collect;
  assert.equal(monitor.level, PressureLevel.High);
  // Before: [High, Critical], so everything that follows the iterator ended at Critical.
  assert.deepEqual(seen, [PressureLevel.Critical, PressureLevel.High]);
  assert.deepEqual(late, [], "a rise undone before its listener's turn is not announced to it");
});

test("a reading the timer's refresh() refuses changes nothing, never ends the program, and is told by readError", () => {
  const child = runChild(fixture("monitor_bad_timed_reading.ts"));
  assert.equal(child.status, 0, child.stderr);
  const good = reading(PressureLevel.None).availableBytes;
  assert.deepEqual(JSON.parse(child.stdout.trim().split("\n").at(-1)!), {
    during: { error: true, available: good, running: true },
    after: { error: null, running: true, calls: true },
  });
});

test("the reader is not called with the monitor as `this` (a half-built monitor never escapes)", () => {
  let seen: unknown = "not called";
  const read = function (this: unknown) {
    seen = this;
    return reading(PressureLevel.None);
  };
  const monitor = new PressureMonitor({ read });
  assert.equal(seen, undefined);
  seen = "not called";
  monitor.refresh();
  assert.equal(seen, undefined);
  // Before: a reader that kept `this` and threw let a half-built monitor (status null) escape; it passed the
  // brand check and MemoryInterface then failed with the engine's TypeError reading its status.
  let leaked: unknown = null;
  assert.throws(() =>
    new PressureMonitor({
      read: function (this: unknown) {
        leaked = this;
        throw new Error("no reading");
      },
    })
  );
  assert.equal(leaked, undefined);
});
