// Bad readings: every field of a MemoryStatus that enters from the user (what a PressureMonitor's `read` returns,
// to refresh() and the constructor, and pressureLevel's argument) is checked the same way, before anything
// changes: a wrong type (a string, an object whose valueOf would have to run, a missing field) is a TypeError, a
// number that is NaN, infinite or negative (or a fractional event count) a RangeError. No user valueOf runs.
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
// What every number field refuses; `nullable` fields take null (and a missing one reads as null).
const numberCases = (nullable: boolean, count = false): Bad[] => [
  ["'9'", "9", TypeError],
  ["an object with valueOf", coercible(), TypeError],
  ["true", true, TypeError],
  ...(nullable ? [] : [["missing", undefined, TypeError] as Bad, ["null", null, TypeError] as Bad]),
  ["NaN", Number.NaN, RangeError],
  ["-1", -1, RangeError],
  ["Infinity", Infinity, RangeError],
  ["-Infinity", -Infinity, RangeError],
  ...(count ? [["1.5", 1.5, RangeError] as Bad] : []),
];

// Each bad reading, as [name, reading, expected error].
const readings: [string, unknown, Expected][] = [
  ["null", null, TypeError],
  ["5", 5, TypeError],
  ["'status'", "status", TypeError],
];
for (const field of ["totalBytes", "availableBytes", "usedBytes", "rssBytes"]) {
  for (const [what, value, expect] of numberCases(false)) {
    readings.push([`${field}: ${what}`, { ...good(), [field]: value }, expect]);
  }
}
for (const [what, value, expect] of numberCases(true)) {
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
    assert.equal(monitor.status, reading, what);
  }
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
