// iOS apps know three pressure states (normal, warning, critical);
// memkit's monitor has five levels. One mapping, shared by the budget, the
// cache and the wiring, so they all answer the same level the same way.
import { PressureLevel, type PressureLevelValue } from "../pressure/pressure_level.ts";
import { followMonitorChanges, type PressureMonitor } from "../pressure/pressure_monitor.ts";

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
 * `onLevel` runs in a microtask after the change (never inside the
 * monitor's dispatch), in the order of the changes. Stopping lets go of
 * `onLevel` at once: a disposed budget or a stopped response is not kept
 * alive by the monitor until its next change.
 */
export function followLevels(monitor: PressureMonitor, onLevel: (level: PressureLevelValue) => void): () => void {
  let stopped = false;
  let unfollow: (() => void) | null = followMonitorChanges(monitor, (level) => {
    queueMicrotask(() => {
      if (stopped) return;
      try {
        onLevel(level);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    });
  });
  return () => {
    stopped = true;
    unfollow?.();
    unfollow = null;
  };
}
