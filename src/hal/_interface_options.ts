// MemoryInterface's options, checked with zod at the public boundary.
import { MAX_BLOCK_SIZE, parseOptions, typeCheck, z } from "../base/_validate.ts";
import { isPressureMonitor, type PressureMonitor } from "../pressure/pressure_monitor.ts";
import { TYPES } from "./_request.ts";
import type { MemoryInterfaceOptions, MemoryType } from "./memory_types.ts";

// The range first: a number past 2^53 is out of range, not "not an integer".
const budget = z.number().min(0, "must be at least 0").max(MAX_BLOCK_SIZE, `must be at most ${MAX_BLOCK_SIZE}`)
  .int("must be an integer").optional();

const OptionsSchema = z.object({
  budgets: z.object(Object.fromEntries(TYPES.map((t) => [t, budget]))).strict().optional(),
  pressure: typeCheck<PressureMonitor | false>(
    // A brand check: a Proxy of a monitor passes instanceof, then fails on its private fields.
    (v) => v === false || isPressureMonitor(v),
    "must be a PressureMonitor made by new PressureMonitor (not a Proxy of one) or false",
  ).optional(),
}).strict();

/** The options, checked: budgets by type (absent: none), and the monitor (undefined: one of its own). */
export function parseInterfaceOptions(
  options: MemoryInterfaceOptions | undefined,
): { budgets: Partial<Record<MemoryType, number>>; pressure: PressureMonitor | false | undefined } {
  const parsed = parseOptions(OptionsSchema, options, "create MemoryInterface");
  return { budgets: (parsed.budgets ?? {}) as Partial<Record<MemoryType, number>>, pressure: parsed.pressure };
}
