// Platform thresholds by size: a process that may use at most 32 MiB
// (a console, a small container) is "constrained", up to 128 MiB (a browser
// tab, a phone app's share) "moderate", anything larger "relaxed". Each band
// sets where the pressure levels begin, as the available fraction of that total.
import type { PlatformMemory } from "./memory_types.ts";

const MiB = 1 << 20;

/** The largest totals of the constrained and moderate bands. */
export const CONSTRAINED_MAX = 32 * MiB;
export const MODERATE_MAX = 128 * MiB;

/**
 * The band and thresholds for a process that may use `totalBytes`.
 * - constrained: by free bytes, as small consoles set them (Medium at 8 MiB
 *   free, High at 2 MiB), with Low at 12 MiB and Critical at 1 MiB: on 16 MiB
 *   that is 75 / 50 / 12.5 / 6.25 % available;
 * - moderate: earlier than the defaults (60 / 35 / 15 / 8 %), as there is little
 *   room to absorb a burst;
 * - relaxed: the table that every `PressureMonitor` uses by default
 *   (50 / 25 / 10 / 5 %).
 */
export function platformBand(totalBytes: number): PlatformMemory {
  // Frozen: MemoryInterface.platform hands this object out, and getMemoryStats() reads its totalBytes.
  const band = bandOf(totalBytes);
  Object.freeze(band.thresholds);
  return Object.freeze(band);
}

function bandOf(totalBytes: number): PlatformMemory {
  if (totalBytes <= CONSTRAINED_MAX) {
    const share = (free: number) => totalBytes > 0 ? Math.min(1, free / totalBytes) : 1;
    return {
      band: "constrained",
      totalBytes,
      thresholds: { low: share(12 * MiB), medium: share(8 * MiB), high: share(2 * MiB), critical: share(1 * MiB) },
    };
  }
  if (totalBytes <= MODERATE_MAX) {
    return { band: "moderate", totalBytes, thresholds: { low: 0.6, medium: 0.35, high: 0.15, critical: 0.08 } };
  }
  return { band: "relaxed", totalBytes, thresholds: { low: 0.5, medium: 0.25, high: 0.1, critical: 0.05 } };
}
