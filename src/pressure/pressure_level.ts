/**
 * Memory pressure as a level, from a {@linkcode MemoryStatus}.
 *
 * @module
 */
import { describe, parseOptions, z } from "../base/_validate.ts";
import type { MemoryStatus } from "./memory_status.ts";
import { type CheckedStatus, checkStatus } from "./_checked_status.ts";

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
 * @throws {TypeError} For a status that is not a MemoryStatus (not an object, a field missing or of the wrong type,
 *   e.g. a string or an object for a number: no coercion runs), or mistyped thresholds.
 * @throws {RangeError} For a status with NaN, infinite or negative figures (any of them, cgroup event counts and PSI
 *   averages included; a byte count or event count must also be a whole number), or thresholds out of range or
 *   out of order.
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
  return levelOf(checkStatus(status, "compute the pressure level"), t);
}

/** The level of a checked status (the monitor's hot path: its thresholds are resolved once). */
export function levelOf(status: CheckedStatus, t: Required<PressureThresholds>): PressureLevelValue {
  const capacity = status.limitBytes ?? status.totalBytes;
  const ratio = capacity > 0 ? status.availableBytes / capacity : 0;
  let level: PressureLevelValue = PressureLevel.None;
  if (ratio <= t.critical) level = PressureLevel.Critical;
  else if (ratio <= t.high) level = PressureLevel.High;
  else if (ratio <= t.medium) level = PressureLevel.Medium;
  else if (ratio <= t.low) level = PressureLevel.Low;
  const psi = status.psi;
  if (psi !== null) {
    let fromPsi: PressureLevelValue = PressureLevel.None;
    if (psi.full10 >= t.psiFullCritical) fromPsi = PressureLevel.Critical;
    else if (psi.full10 >= t.psiFullHigh) fromPsi = PressureLevel.High;
    else if (psi.some10 >= t.psiSomeMedium) fromPsi = PressureLevel.Medium;
    else if (psi.some10 >= t.psiSomeLow) fromPsi = PressureLevel.Low;
    if (fromPsi > level) level = fromPsi;
  }
  return level;
}
