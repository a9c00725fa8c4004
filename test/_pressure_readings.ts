// Memory readings at a chosen pressure level, for a PressureMonitor fed by
// hand (`read: () => next`): used by the budget, cache, respondToPressure and
// pressure-listener tests.
import type { MemoryStatus, PressureLevelValue } from "../mod.ts";

// Bytes available of 1000 at each level by the default bands.
const AVAILABLE: Record<PressureLevelValue, number> = { 0: 900, 1: 400, 2: 200, 3: 80, 4: 10 };

/** A reading of 1000 bytes that the default bands put at `level`, with `events` (cgroup events) if given. */
export function reading(level: PressureLevelValue, events: MemoryStatus["events"] = null): MemoryStatus {
  const availableBytes = AVAILABLE[level];
  return {
    totalBytes: 1000,
    availableBytes,
    limitBytes: null,
    usedBytes: 1000 - availableBytes,
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events,
  };
}
