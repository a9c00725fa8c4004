// iOS apps know three pressure states (normal, warning, critical);
// memkit's monitor has five levels. One mapping, shared by the budget, the
// cache and the wiring, so they all answer the same level the same way.
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import type { PressureMonitor } from "../pressure/pressure_monitor.ts";

/** The pressure state as iOS names it. */
export type DesignPressure = "normal" | "warning" | "critical";

/** None and Low → normal; Medium and High (under 25 % available) → warning; Critical → critical. */
export function designPressure(level: PressureLevelValue): DesignPressure {
  if (level >= PressureLevel.Critical) return "critical";
  if (level >= PressureLevel.Medium) return "warning";
  return "normal";
}

/**
 * Calls `onLevel` with every level change of `monitor`, falls included
 * (`monitor.on` hears only rises), until the returned function is called.
 * The changes come through the monitor's async iterator, so `onLevel` runs
 * in a microtask after the change. After stopping, the iterator is left at
 * the monitor's next change (an async generator cannot be left while it waits).
 */
export function followLevels(monitor: PressureMonitor, onLevel: (level: PressureLevelValue) => void): () => void {
  let stopped = false;
  const iterator = monitor[Symbol.asyncIterator]();
  (async () => {
    while (!stopped) {
      const next = await iterator.next();
      if (stopped || next.done) break;
      try {
        onLevel(next.value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    await iterator.return?.();
  })();
  return () => {
    stopped = true;
  };
}
