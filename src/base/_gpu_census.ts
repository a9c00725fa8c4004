// GPU buffers memkit created and nobody destroyed yet, for the leak report at
// exit (src/debug/_exit_report.ts). Kept in base so the debug family can read
// it without depending on the GPU family. One Set operation per buffer
// created and per buffer destroyed.
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

// Captured at load: the leak check at exit reads this list, and a program may replace the Set iterator
// before it exits (a no-op one hid every leak but the global allocator's).
const apply = Reflect.apply;
const setValues = Set.prototype.values;
const setIteratorNext: () => IteratorResult<unknown> = Object.getPrototypeOf(new Set().values()).next;

/** Every live buffer, oldest first (read with the built-ins captured at load). */
export function gpuCensusEntries(): GpuCensusEntry[] {
  const out: GpuCensusEntry[] = [];
  const iterator = apply(setValues, live, []);
  for (
    let step = apply(setIteratorNext, iterator, []) as IteratorResult<never>;
    !step.done;
    step = apply(setIteratorNext, iterator, []) as IteratorResult<never>
  ) {
    out[out.length] = step.value;
  }
  return out;
}
