// Bad readings: every field of a MemoryStatus that enters from the user (what a PressureMonitor's `read` returns,
// to refresh() and the constructor, and pressureLevel's argument) is checked the same way, before anything
// changes: a wrong type (a string, an object whose valueOf would have to run, a missing field) is a TypeError, a
// number that is NaN, infinite or negative (or a fractional byte or event count) a RangeError. No user valueOf runs.
// The monitor keeps, and hands out as `status`, its frozen checked copy, never the reader's object (before, a
// reader's object changed after the check, or a getter valid once, reached MemoryInterface's band and stats).
// Before, refresh() copied the cgroup `events` counts unchecked: 5, "9", NaN, -1 and objects passed, compared
// with coercion (valueOf ran), and `max: Infinity` raised the level to Critical.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type MemoryStatus, PressureLevel, pressureLevel, PressureMonitor } from "../../mod.ts";
import { type BadInputRow, badInputTable, type Expected } from "../_bad_input.ts";

const EVENTS = { high: 0, max: 0, oom: 0, oomKill: 0 };
const PSI = { some10: 0, some60: 0, full10: 0, full60: 0 };
// A full reading at None: 90 % available, PSI and cgroup events present.
const good = (): MemoryStatus => ({
  totalBytes: 1000,
  availableBytes: 900,
  limitBytes: 1000,
  usedBytes: 100,
  rssBytes: 10,
  psi: { ...PSI },
  source: "linux-cgroup-v2",
  events: { ...EVENTS },
  limitFile: "/sys/fs/cgroup/app/memory.max",
  totalSource: "meminfo",
});

let valueOfRan = 0;
// An object a coercion would turn into a number by calling user code.
const coercible = () => ({
  valueOf() {
    valueOfRan++;
    return 0;
  },
});

type Bad = [what: string, value: unknown, expect: Expected];
// What every number field refuses; `nullable` fields take null (and a missing one reads as null). A byte count or
// an event count (`whole`) must also be a whole number; a PSI average need not.
const numberCases = (nullable: boolean, whole = false): Bad[] => [
  ["'9'", "9", TypeError],
  ["an object with valueOf", coercible(), TypeError],
  ["true", true, TypeError],
  ...(nullable ? [] : [["missing", undefined, TypeError] as Bad, ["null", null, TypeError] as Bad]),
  ["NaN", Number.NaN, RangeError],
  ["-1", -1, RangeError],
  ["Infinity", Infinity, RangeError],
  ["-Infinity", -Infinity, RangeError],
  ...(whole ? [["1.5", 1.5, RangeError] as Bad, ["5000.5", 5000.5, RangeError] as Bad] : []),
];

// Each bad reading, as [name, reading, expected error].
const readings: [string, unknown, Expected][] = [
  ["null", null, TypeError],
  ["5", 5, TypeError],
  ["'status'", "status", TypeError],
];
for (const field of ["totalBytes", "availableBytes", "usedBytes", "rssBytes"]) {
  for (const [what, value, expect] of numberCases(false, true)) {
    readings.push([`${field}: ${what}`, { ...good(), [field]: value }, expect]);
  }
}
for (const [what, value, expect] of numberCases(true, true)) {
  readings.push([`limitBytes: ${what}`, { ...good(), limitBytes: value }, expect]);
}
const wrongFields: [string, unknown][] = [["psi", 5], ["psi", "high"], ["events", 5], ["events", "none"], [
  "events",
  true,
]];
for (const [field, value] of wrongFields) {
  readings.push([`${field}: ${JSON.stringify(value)}`, { ...good(), [field]: value }, TypeError]);
}
for (const field of Object.keys(PSI)) {
  for (const [what, value, expect] of numberCases(false)) {
    readings.push([`psi.${field}: ${what}`, { ...good(), psi: { ...PSI, [field]: value } }, expect]);
  }
}
for (const field of Object.keys(EVENTS)) {
  for (const [what, value, expect] of numberCases(false, true)) {
    readings.push([`events.${field}: ${what}`, { ...good(), events: { ...EVENTS, [field]: value } }, expect]);
  }
}
const wrongNames: [string, unknown][] = [
  ["source", 5],
  ["source", "windows"],
  ["source", undefined],
  ["limitFile", 5],
  ["totalSource", "bios"],
];
for (const [field, value] of wrongNames) {
  readings.push([`${field}: ${JSON.stringify(value) ?? "missing"}`, { ...good(), [field]: value }, TypeError]);
}

interface Arranged {
  monitor: PressureMonitor;
  feed: (reading: unknown) => void;
  heard: number[];
  before: MemoryStatus;
}

// A monitor at Low whose last reading has events; its listener hears every rise.
function arrange(): Arranged {
  let next: unknown = { ...good(), availableBytes: 400, usedBytes: 600 };
  const monitor = new PressureMonitor({ read: () => next as MemoryStatus, hysteresis: 1 });
  const heard: number[] = [];
  monitor.on(PressureLevel.Medium, (level) => heard.push(level));
  valueOfRan = 0;
  return { monitor, feed: (reading) => (next = reading), heard, before: monitor.status };
}

// Nothing changed: status, level and the events compared next time are those of the last good reading.
function unchanged({ monitor, feed, heard, before }: Arranged): void {
  assert.equal(valueOfRan, 0, "no user valueOf ran");
  assert.equal(monitor.status, before);
  assert.equal(monitor.level, PressureLevel.Low);
  assert.deepEqual(heard, []);
  feed({ ...good(), availableBytes: 400, usedBytes: 600, events: { ...EVENTS, high: 1 } });
  assert.equal(monitor.refresh(), PressureLevel.High, "a new `high` event is still seen against the last reading");
  assert.deepEqual(heard, [PressureLevel.High]);
}

const rows: BadInputRow<Arranged>[] = [];
for (const [name, reading, expect] of readings) {
  rows.push({
    name: `refresh() of a reading with ${name}`,
    arrange,
    act: ({ monitor, feed }) => {
      feed(reading);
      monitor.refresh();
    },
    expect,
    after: unchanged,
  });
  rows.push({
    name: `new PressureMonitor whose first reading has ${name}`,
    arrange,
    act: () => new PressureMonitor({ read: () => reading as MemoryStatus }),
    expect,
    after: () => assert.equal(valueOfRan, 0, "no user valueOf ran"),
  });
  rows.push({
    name: `pressureLevel of a status with ${name}`,
    arrange,
    act: () => pressureLevel(reading as MemoryStatus),
    expect,
    after: () => assert.equal(valueOfRan, 0, "no user valueOf ran"),
  });
}
badInputTable("pressure readings", rows);

test("the fields a MemoryStatus may leave out or set to null are accepted, and a full reading is", () => {
  const { limitFile: _file, totalSource: _source, ...bare } = good();
  const accepted: [string, unknown][] = [
    ["a full reading", good()],
    ["no limitFile or totalSource", bare],
    ["limitBytes, psi, events and limitFile null", {
      ...good(),
      limitBytes: null,
      psi: null,
      events: null,
      limitFile: null,
    }],
    ["limitBytes, psi and events missing", { ...good(), limitBytes: undefined, psi: undefined, events: undefined }],
    ["zeros everywhere", { ...good(), totalBytes: 0, availableBytes: 0, usedBytes: 0, rssBytes: 0, limitBytes: 0 }],
  ];
  for (const [what, reading] of accepted) {
    const monitor = new PressureMonitor({ read: () => reading as MemoryStatus });
    assert.equal(monitor.refresh(), pressureLevel(reading as MemoryStatus), what);
    // The monitor keeps its checked copy (a missing limitBytes, psi or events reads as null), not the reading.
    const r = reading as MemoryStatus;
    assert.notEqual(monitor.status, reading, what);
    assert.deepEqual(monitor.status, {
      ...r,
      limitBytes: r.limitBytes ?? null,
      psi: r.psi ?? null,
      events: r.events ?? null,
    }, what);
  }
});

test("a fractional byte count is refused with a RangeError naming the field; PSI averages may be fractional", () => {
  for (const field of ["totalBytes", "availableBytes", "limitBytes", "usedBytes", "rssBytes"]) {
    const reading = { ...good(), [field]: 500.5 } as MemoryStatus;
    assert.throws(() => new PressureMonitor({ read: () => reading }), (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(
        e.message,
        new RegExp(
          `^Cannot create PressureMonitor .* as 'status\\.${field}' must be a whole number of bytes from 0: current value is 500\\.5$`,
        ),
      );
      return true;
    });
    assert.throws(() => pressureLevel(reading), RangeError, field);
  }
  const psi = { some10: 0.25, some60: 0.5, full10: 0.125, full60: 1.5 };
  assert.equal(pressureLevel({ ...good(), psi }), PressureLevel.None);
});

test("status is the checked copy, frozen: the reader's object changed afterwards, or a getter, changes nothing", () => {
  // The reader's object, changed after the monitor checked it (before, `status` was that object: NaN, -1 and
  // "zzz" reached MemoryInterface's platform band and stats).
  const raw = good() as MemoryStatus & Record<string, unknown>;
  const monitor = new PressureMonitor({ read: () => raw, hysteresis: 1 });
  const status = monitor.status;
  assert.notEqual(status, raw);
  assert.ok(Object.isFrozen(status) && Object.isFrozen(status.psi) && Object.isFrozen(status.events));
  assert.deepEqual(status, good());
  raw.limitBytes = Number.NaN;
  raw.totalBytes = -1;
  raw.psi!.full10 = 99;
  raw.events!.oom = -1;
  assert.deepEqual(monitor.status, good(), "the reader's object changed, the monitor's reading did not");
  assert.throws(() => {
    (monitor.status as { limitBytes: unknown }).limitBytes = "zzz";
  }, TypeError);
  assert.equal(monitor.status.limitBytes, 1000);

  // A getter valid at the check and "zzz" afterwards: it runs once per reading, at the check.
  let reads = 0;
  const shifty = { ...good() } as Record<string, unknown>;
  Object.defineProperty(shifty, "limitBytes", { enumerable: true, get: () => reads++ === 0 ? 1000 : "zzz" });
  const heard: MemoryStatus[] = [];
  const watched = new PressureMonitor({ read: () => shifty as unknown as MemoryStatus, hysteresis: 1 });
  watched.on(PressureLevel.Low, (_level, s) => heard.push(s));
  assert.equal(reads, 1);
  for (let i = 0; i < 3; i++) assert.equal(watched.status.limitBytes, 1000);
  assert.equal(reads, 1, "reading `status` runs no getter of the reader's object");
  // A refresh() runs the getter again (its second read: "zzz"), which is refused; the checked copy stays.
  assert.throws(() => watched.refresh(), TypeError);
  assert.equal(watched.status.limitBytes, 1000);
  // A listener is told the same checked copy `status` gives.
  let next: MemoryStatus = good();
  const fed = new PressureMonitor({ read: () => next, hysteresis: 1 });
  fed.on(PressureLevel.Low, (_level, s) => heard.push(s));
  next = { ...good(), availableBytes: 300, usedBytes: 700 };
  const told = next;
  fed.refresh();
  assert.equal(heard.length, 1);
  assert.notEqual(heard[0], told);
  assert.equal(heard[0], fed.status);
  assert.ok(Object.isFrozen(heard[0]));
  // pressureLevel's argument is only read, never kept or frozen.
  const mine = good();
  pressureLevel(mine);
  assert.ok(!Object.isFrozen(mine));
});

test("a getter of a reading runs once per refresh(), before the monitor changes; one that throws changes nothing", () => {
  const reads: Record<string, number> = {};
  const counted = (reading: Record<string, unknown>) => {
    const out = {};
    for (const [key, value] of Object.entries(reading)) {
      Object.defineProperty(out, key, {
        enumerable: true,
        get: () => (reads[key] = (reads[key] ?? 0) + 1, value),
      });
    }
    return out;
  };
  const monitor = new PressureMonitor({
    read: () => ({ ...good(), events: counted(EVENTS), psi: counted(PSI) }) as unknown as MemoryStatus,
  });
  for (const key of Object.keys(reads)) reads[key] = 0;
  monitor.refresh();
  assert.deepEqual(reads, { high: 1, max: 1, oom: 1, oomKill: 1, some10: 1, some60: 1, full10: 1, full60: 1 });
});
