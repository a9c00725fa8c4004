// GPU buffers memkit created and nobody destroyed yet, for the leak report at
// exit (src/debug/_exit_report.ts). Kept in base so the debug family can read
// it without depending on the GPU family. One Set operation per buffer
// created and per buffer destroyed.
import { valuesOf } from "./_captured_set.ts";
import { censusSite } from "./_native_census.ts";

/** A live GPU buffer. */
export interface GpuCensusEntry {
  /** The device's label, or "GPU device" when it has none. */
  readonly device: string;
  readonly label: string;
  readonly size: number;
  /** The usage flags as names ("VERTEX|COPY_DST"). */
  readonly usage: string;
  /** Where it was created (the first frame outside memkit), when allocation sites are traced. */
  readonly site: string | null;
}

const live = new Set<GpuCensusEntry>();

/** Counts a buffer just created. */
export function enterGpuCensus(device: string, label: string, size: number, usage: string): GpuCensusEntry {
  const entry: GpuCensusEntry = { device, label, size, usage, site: censusSite() };
  live.add(entry);
  return entry;
}

/** The buffer was destroyed (or its device is gone). */
export function leaveGpuCensus(entry: GpuCensusEntry): void {
  live.delete(entry);
}

/** Every live buffer, oldest first (read with built-ins captured at load: see _captured_set.ts). */
export function gpuCensusEntries(): GpuCensusEntry[] {
  return valuesOf(live);
}
