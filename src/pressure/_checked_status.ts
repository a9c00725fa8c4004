// The one check of a MemoryStatus that comes from the user: pressureLevel's argument and what a PressureMonitor's
// `read` returns (to its constructor and to every refresh()). Every field is read once, into a plain copy, and
// checked before it is used, so no coercion runs user code (a getter runs at its one read, before any state
// changes) and what was checked is what is used: a wrong type is a TypeError, a number that is NaN, infinite or
// negative a RangeError (as is a fractional byte or event count). limitBytes, psi and events may be null or
// missing; limitFile and totalSource may be missing.
//
// The copy is frozen (psi and events too): the monitor keeps it and hands it out (`status`, listeners, the HAL's
// platform band and stats), so nothing read later can differ from what was checked, and no one who reads it can
// change what the next reader sees.
import { describe } from "../base/_validate.ts";
import type { MemoryStatus, PsiAverages } from "./memory_status.ts";

/** cgroup v2 `memory.events` counts. */
export type EventCounts = NonNullable<MemoryStatus["events"]>;

/**
 * A MemoryStatus whose every field was read once and checked: a frozen copy (its psi and events too), never the
 * object the reading came in. A missing limitBytes, psi or events is null; limitFile and totalSource are there
 * when the reading had them.
 */
export type CheckedStatus = Readonly<MemoryStatus>;

const SOURCES: readonly unknown[] = ["linux-cgroup-v2", "linux-cgroup-v1", "linux-meminfo", "darwin"];
const TOTAL_SOURCES: readonly unknown[] = ["meminfo", "sysinfo", "sysctl"];

// What a number field holds: bytes (a whole number from 0: memkit's readers only ever give whole bytes, and a
// fraction would reach the HAL's sizes, e.g. a stack whose capacity is 5000.5), a count of events (a safe integer
// from 0), or a PSI percentage (a finite number from 0). NaN would read as no pressure, a negative count as full
// pressure: neither is a reading.
type NumberKind = "bytes" | "count" | "percent";
const WANTED: Record<NumberKind, string> = {
  bytes: "a whole number of bytes from 0",
  count: "an integer from 0 (a count of cgroup events)",
  percent: "a finite number from 0",
};
function checkNumber(value: unknown, name: string, op: string, kind: NumberKind): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as 'status.${name}' must be a number: current value is ${describe(value)}`);
  }
  // Number.isInteger refuses NaN and the infinities too. Bytes are not held to safe integers: a cgroup v1
  // "unlimited" limit (9223372036854771712) is a whole number above 2^53 that memkit's reader may give.
  const ok = kind === "bytes"
    ? Number.isInteger(value) && value >= 0
    : kind === "count"
    ? Number.isSafeInteger(value) && value >= 0
    : value >= 0 && value < Infinity;
  if (!ok) {
    throw new RangeError(
      `Cannot ${op} as 'status.${name}' must be ${WANTED[kind]}: current value is ${describe(value)}`,
    );
  }
  return value;
}

// An object field that may be null or missing (then null).
function optionalObject(value: unknown, name: string, what: string, op: string): object | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "object") {
    throw new TypeError(
      `Cannot ${op} as 'status.${name}' must be ${what} or null: current value is ${describe(value)}`,
    );
  }
  return value;
}

function checkName(value: unknown, name: string, names: readonly unknown[], op: string, optional: boolean): void {
  if (optional && value === undefined) return;
  if (!names.includes(value)) {
    throw new TypeError(
      `Cannot ${op} as 'status.${name}' must be one of ${names.map((n) => `"${n}"`).join(", ")}: current value is ${
        describe(value)
      }`,
    );
  }
}

/**
 * Checks every field of `status` (read once each) and returns the checked copy, frozen.
 * @throws {TypeError} For a status that is not an object, or a field of the wrong type (missing, where required).
 * @throws {RangeError} For a number that is NaN, infinite or negative, or a byte or event count that is not a
 *   whole number.
 */
export function checkStatus(status: unknown, op: string): CheckedStatus {
  if (typeof status !== "object" || status === null) {
    throw new TypeError(`Cannot ${op} as 'status' must be a MemoryStatus: current value is ${describe(status)}`);
  }
  const s = status as Record<keyof MemoryStatus, unknown>;
  const availableBytes = checkNumber(s.availableBytes, "availableBytes", op, "bytes");
  const totalBytes = checkNumber(s.totalBytes, "totalBytes", op, "bytes");
  const limit = s.limitBytes;
  const limitBytes = limit === null || limit === undefined ? null : checkNumber(limit, "limitBytes", op, "bytes");
  const usedBytes = checkNumber(s.usedBytes, "usedBytes", op, "bytes");
  const rssBytes = checkNumber(s.rssBytes, "rssBytes", op, "bytes");
  const psiObject = optionalObject(s.psi, "psi", "PSI averages", op) as Record<keyof PsiAverages, unknown> | null;
  let psi: PsiAverages | null = null;
  if (psiObject !== null) {
    const some10 = psiObject.some10, some60 = psiObject.some60, full10 = psiObject.full10, full60 = psiObject.full60;
    psi = Object.freeze({
      some10: checkNumber(some10, "psi.some10", op, "percent"),
      some60: checkNumber(some60, "psi.some60", op, "percent"),
      full10: checkNumber(full10, "psi.full10", op, "percent"),
      full60: checkNumber(full60, "psi.full60", op, "percent"),
    });
  }
  const source = s.source;
  checkName(source, "source", SOURCES, op, false);
  const eventsObject = optionalObject(s.events, "events", "cgroup event counts", op) as
    | Record<keyof EventCounts, unknown>
    | null;
  let events: EventCounts | null = null;
  if (eventsObject !== null) {
    const high = eventsObject.high, max = eventsObject.max, oom = eventsObject.oom, oomKill = eventsObject.oomKill;
    events = Object.freeze({
      high: checkNumber(high, "events.high", op, "count"),
      max: checkNumber(max, "events.max", op, "count"),
      oom: checkNumber(oom, "events.oom", op, "count"),
      oomKill: checkNumber(oomKill, "events.oomKill", op, "count"),
    });
  }
  const limitFile = s.limitFile;
  if (limitFile !== undefined && limitFile !== null && typeof limitFile !== "string") {
    throw new TypeError(
      `Cannot ${op} as 'status.limitFile' must be a path or null: current value is ${describe(limitFile)}`,
    );
  }
  const totalSource = s.totalSource;
  checkName(totalSource, "totalSource", TOTAL_SOURCES, op, true);
  const checked: MemoryStatus = {
    totalBytes,
    availableBytes,
    limitBytes,
    usedBytes,
    rssBytes,
    psi,
    source: source as MemoryStatus["source"],
    events,
  };
  // The optional fields only when the reading had them, so a status made by hand compares equal to its copy.
  if (limitFile !== undefined) checked.limitFile = limitFile as string | null;
  if (totalSource !== undefined) checked.totalSource = totalSource as MemoryStatus["totalSource"];
  return Object.freeze(checked);
}
