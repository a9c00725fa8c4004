/**
 * Memory pressure as a level, from a {@linkcode MemoryStatus}.
 *
 * @module
 */
import { describe, parseOptions, z } from "../base/_validate.ts";
import type { MemoryStatus } from "./memory_status.ts";

/**
 * The pressure levels, lowest first.
 *
 * @example
 * ```ts
 * import { PressureLevel, pressureLevel, readMemoryStatus } from "@memkit/memkit";
 *
 * if (pressureLevel(readMemoryStatus()) >= PressureLevel.High) console.log("shed caches");
 * ```
 */
export const PressureLevel = { None: 0, Low: 1, Medium: 2, High: 3, Critical: 4 } as const;

/**
 * One of {@linkcode PressureLevel}'s values.
 *
 * @example
 * ```ts
 * import { PressureLevel, type PressureLevelValue } from "@memkit/memkit";
 *
 * const level: PressureLevelValue = PressureLevel.Medium;
 * ```
 */
export type PressureLevelValue = typeof PressureLevel[keyof typeof PressureLevel];

/**
 * Where the levels begin. Available memory is a fraction of the limit (the
 * cgroup's, else the machine's); PSI values are percentages of stalled time.
 * The defaults are the usual bands (None above 50 % available, Low at or
 * below 50 %, Medium at or below 25 %, High at or below 10 %, Critical at or
 * below 5 %) and PSI bands after GLib, systemd and lmkd.
 *
 * @example
 * ```ts
 * import { pressureLevel, type PressureThresholds, readMemoryStatus } from "@memkit/memkit";
 *
 * const cautious: PressureThresholds = { low: 0.6, medium: 0.4, high: 0.2, critical: 0.1 };
 * pressureLevel(readMemoryStatus(), cautious);
 * ```
 */
export interface PressureThresholds {
  /** Available fraction at or below which the level is at least Low. @default {0.5} */
  low?: number;
  /** Available fraction at or below which the level is at least Medium. @default {0.25} */
  medium?: number;
  /** Available fraction at or below which the level is at least High. @default {0.1} */
  high?: number;
  /** Available fraction at or below which the level is Critical. @default {0.05} */
  critical?: number;
  /** PSI `some` avg10 (%) from which the level is at least Low. @default {5} */
  psiSomeLow?: number;
  /** PSI `some` avg10 (%) from which the level is at least Medium. @default {10} */
  psiSomeMedium?: number;
  /** PSI `full` avg10 (%) from which the level is at least High. @default {5} */
  psiFullHigh?: number;
  /** PSI `full` avg10 (%) from which the level is Critical. @default {25} */
  psiFullCritical?: number;
}

// Bands are fractions of the limit (0.1 is 10 %), PSI thresholds percentages: the messages say which.
const fraction = z.number().min(0, "must be a fraction from 0 to 1 (0.1 is 10 %)").max(
  1,
  "must be a fraction from 0 to 1 (0.1 is 10 %)",
);
const percent = z.number().min(0, "must be at least 0").max(100, "must be at most 100");
const ThresholdsSchema = z.object({
  low: fraction.optional(),
  medium: fraction.optional(),
  high: fraction.optional(),
  critical: fraction.optional(),
  psiSomeLow: percent.optional(),
  psiSomeMedium: percent.optional(),
  psiFullHigh: percent.optional(),
  psiFullCritical: percent.optional(),
}).strict();

/** The thresholds with every default filled in, validated once. */
export function resolveThresholds(
  thresholds: PressureThresholds | undefined,
  op: string,
): Required<PressureThresholds> {
  if (thresholds !== undefined && (typeof thresholds !== "object" || thresholds === null)) {
    throw new TypeError(`Cannot ${op} as 'thresholds' must be an object: current value is ${describe(thresholds)}`);
  }
  const t = parseOptions(ThresholdsSchema, thresholds, op);
  const resolved = {
    low: t.low ?? 0.5,
    medium: t.medium ?? 0.25,
    high: t.high ?? 0.1,
    critical: t.critical ?? 0.05,
    psiSomeLow: t.psiSomeLow ?? 5,
    psiSomeMedium: t.psiSomeMedium ?? 10,
    psiFullHigh: t.psiFullHigh ?? 5,
    psiFullCritical: t.psiFullCritical ?? 25,
  };
  if (!(resolved.low >= resolved.medium && resolved.medium >= resolved.high && resolved.high >= resolved.critical)) {
    throw new RangeError(
      `Cannot ${op} as the thresholds must not increase from low to critical: current values are ` +
        `${resolved.low}, ${resolved.medium}, ${resolved.high}, ${resolved.critical}`,
    );
  }
  return resolved;
}

/**
 * The pressure level of a status: from the available fraction by the bands,
 * raised (never lowered) by PSI. cgroup events raise the level in
 * {@linkcode PressureMonitor}, which sees them change between samples.
 *
 * @param status A reading, e.g. from {@linkcode readMemoryStatus}.
 * @param thresholds Where the levels begin (defaults as documented).
 * @returns The level, from PressureLevel.None to PressureLevel.Critical.
 * @throws {TypeError} For a status without numbers, or mistyped thresholds.
 * @throws {RangeError} For a status with NaN, infinite or negative figures, or thresholds out of range or out of order.
 *
 * @example
 * ```ts
 * import { PressureLevel, pressureLevel } from "@memkit/memkit";
 * import assert from "node:assert/strict";
 *
 * const status = {
 *   totalBytes: 8e9, availableBytes: 0.6e9, limitBytes: null, usedBytes: 7.4e9, rssBytes: 1e8,
 *   psi: null, source: "linux-meminfo" as const, events: null,
 * };
 * assert.equal(pressureLevel(status), PressureLevel.High); // 7.5 % available
 * ```
 */
export function pressureLevel(status: MemoryStatus, thresholds?: PressureThresholds): PressureLevelValue {
  const t = resolveThresholds(thresholds, "compute the pressure level");
  return levelOf(status, t);
}

function checkNumber(value: unknown, name: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot compute the pressure level as 'status.${name}' must be a number: current value is ${describe(value)}`,
    );
  }
  // NaN would read as no pressure, a negative count as full pressure: neither is a reading.
  if (!(value >= 0 && value < Infinity)) {
    throw new RangeError(
      `Cannot compute the pressure level as 'status.${name}' must be a finite number from 0: current value is ${
        describe(value)
      }`,
    );
  }
}

/** pressureLevel with resolved thresholds (the monitor's hot path). */
export function levelOf(status: MemoryStatus, t: Required<PressureThresholds>): PressureLevelValue {
  if (typeof status !== "object" || status === null) {
    throw new TypeError(
      `Cannot compute the pressure level as 'status' must be a MemoryStatus: current value is ${describe(status)}`,
    );
  }
  // Each field is read once and checked before it is used: no coercion runs user code.
  const available = status.availableBytes, limit = status.limitBytes, total = status.totalBytes, psi = status.psi;
  checkNumber(available, "availableBytes");
  checkNumber(total, "totalBytes");
  if (limit !== null && limit !== undefined) checkNumber(limit, "limitBytes");
  const capacity = limit ?? total;
  const ratio = capacity > 0 ? available / capacity : 0;
  let level: PressureLevelValue = PressureLevel.None;
  if (ratio <= t.critical) level = PressureLevel.Critical;
  else if (ratio <= t.high) level = PressureLevel.High;
  else if (ratio <= t.medium) level = PressureLevel.Medium;
  else if (ratio <= t.low) level = PressureLevel.Low;
  if (psi !== null && psi !== undefined) {
    if (typeof psi !== "object") {
      throw new TypeError(
        `Cannot compute the pressure level as 'status.psi' must be PSI averages or null: current value is ${
          describe(psi)
        }`,
      );
    }
    const full10 = psi.full10, some10 = psi.some10;
    checkNumber(full10, "psi.full10");
    checkNumber(some10, "psi.some10");
    let fromPsi: PressureLevelValue = PressureLevel.None;
    if (full10 >= t.psiFullCritical) fromPsi = PressureLevel.Critical;
    else if (full10 >= t.psiFullHigh) fromPsi = PressureLevel.High;
    else if (some10 >= t.psiSomeMedium) fromPsi = PressureLevel.Medium;
    else if (some10 >= t.psiSomeLow) fromPsi = PressureLevel.Low;
    if (fromPsi > level) level = fromPsi;
  }
  return level;
}
