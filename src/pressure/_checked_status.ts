// The one check of a MemoryStatus that comes from the user: pressureLevel's argument and what a PressureMonitor's
// `read` returns (to its constructor and to every refresh()). Every field is read once, into a plain copy, and
// checked before it is used, so no coercion runs user code (a getter runs at its one read, before any state
// changes) and what was checked is what is used: a wrong type is a TypeError, a number that is NaN, infinite or
// negative a RangeError (as is a fractional event count). limitBytes, psi and events may be null or missing;
// limitFile and totalSource may be missing.
import { describe } from "../base/_validate.ts";
import type { MemoryStatus, PsiAverages } from "./memory_status.ts";

/** cgroup v2 `memory.events` counts. */
export type EventCounts = NonNullable<MemoryStatus["events"]>;

/** The fields a level is computed from, read once from a status whose every field was checked. */
export interface CheckedStatus {
  readonly availableBytes: number;
  readonly totalBytes: number;
  readonly limitBytes: number | null;
  readonly psi: PsiAverages | null;
  readonly events: EventCounts | null;
}

const SOURCES: readonly unknown[] = ["linux-cgroup-v2", "linux-cgroup-v1", "linux-meminfo", "darwin"];
const TOTAL_SOURCES: readonly unknown[] = ["meminfo", "sysinfo", "sysctl"];

// A byte count or PSI percentage: a finite number from 0 (NaN would read as no pressure, a negative count as full
// pressure: neither is a reading). A count of events must also be an integer.
function checkNumber(value: unknown, name: string, op: string, count = false): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${op} as 'status.${name}' must be a number: current value is ${describe(value)}`);
  }
  if (count ? !(Number.isSafeInteger(value) && value >= 0) : !(value >= 0 && value < Infinity)) {
    const wanted = count ? "an integer from 0 (a count of cgroup events)" : "a finite number from 0";
    throw new RangeError(`Cannot ${op} as 'status.${name}' must be ${wanted}: current value is ${describe(value)}`);
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
 * Checks every field of `status` (read once each) and returns what a level is computed from.
 * @throws {TypeError} For a status that is not an object, or a field of the wrong type (missing, where required).
 * @throws {RangeError} For a number that is NaN, infinite or negative, or an event count that is not an integer.
 */
export function checkStatus(status: unknown, op: string): CheckedStatus {
  if (typeof status !== "object" || status === null) {
    throw new TypeError(`Cannot ${op} as 'status' must be a MemoryStatus: current value is ${describe(status)}`);
  }
  const s = status as Record<keyof MemoryStatus, unknown>;
  const availableBytes = checkNumber(s.availableBytes, "availableBytes", op);
  const totalBytes = checkNumber(s.totalBytes, "totalBytes", op);
  const limit = s.limitBytes;
  const limitBytes = limit === null || limit === undefined ? null : checkNumber(limit, "limitBytes", op);
  checkNumber(s.usedBytes, "usedBytes", op);
  checkNumber(s.rssBytes, "rssBytes", op);
  const psiObject = optionalObject(s.psi, "psi", "PSI averages", op) as Record<keyof PsiAverages, unknown> | null;
  let psi: PsiAverages | null = null;
  if (psiObject !== null) {
    const some10 = psiObject.some10, some60 = psiObject.some60, full10 = psiObject.full10, full60 = psiObject.full60;
    psi = {
      some10: checkNumber(some10, "psi.some10", op),
      some60: checkNumber(some60, "psi.some60", op),
      full10: checkNumber(full10, "psi.full10", op),
      full60: checkNumber(full60, "psi.full60", op),
    };
  }
  checkName(s.source, "source", SOURCES, op, false);
  const eventsObject = optionalObject(s.events, "events", "cgroup event counts", op) as
    | Record<keyof EventCounts, unknown>
    | null;
  let events: EventCounts | null = null;
  if (eventsObject !== null) {
    const high = eventsObject.high, max = eventsObject.max, oom = eventsObject.oom, oomKill = eventsObject.oomKill;
    events = {
      high: checkNumber(high, "events.high", op, true),
      max: checkNumber(max, "events.max", op, true),
      oom: checkNumber(oom, "events.oom", op, true),
      oomKill: checkNumber(oomKill, "events.oomKill", op, true),
    };
  }
  const limitFile = s.limitFile;
  if (limitFile !== undefined && limitFile !== null && typeof limitFile !== "string") {
    throw new TypeError(
      `Cannot ${op} as 'status.limitFile' must be a path or null: current value is ${describe(limitFile)}`,
    );
  }
  checkName(s.totalSource, "totalSource", TOTAL_SOURCES, op, true);
  return { availableBytes, totalBytes, limitBytes, psi, events };
}
