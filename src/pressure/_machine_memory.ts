// The machine's memory: /proc/meminfo, or the runtime's sysinfo view when
// /proc/meminfo is missing or impossible.
//
// Why a fallback: LXCFS serves containers their own /proc/meminfo, and has
// been seen to serve `MemTotal: 0 kB` (with MemAvailable 0). Taken at face
// value that reads as "no memory left", i.e. Critical forever. A total of 0,
// or one below what the same file calls available, is impossible, so the
// whole file is treated as unknown. The next source is the runtime's
// `os.totalmem()`, which both Deno and Bun take from sysinfo(2) (measured
// with strace), a system call LXCFS does not intercept. `os.freemem()` is no
// independent witness: both runtimes read /proc/meminfo for it (strace), and
// under such a file Deno's gives 0 (Bun's gave a plausible figure), so an
// available count of 0 from it is treated as unknown too.
import { freemem, totalmem } from "node:os";
import { granted } from "../../ffi/native.ts";
import { parseMeminfo } from "./_proc_parsers.ts";

/** The machine's memory as one source saw it. */
export interface MachineMemory {
  totalBytes: number;
  /** Null when the source that gave the total cannot say what is available. */
  availableBytes: number | null;
  /** "meminfo" for /proc/meminfo, "sysinfo" for the runtime's `os.totalmem()`/`os.freemem()`. */
  from: "meminfo" | "sysinfo";
}

/** The runtime's view of the machine (total and free bytes), or null when it cannot be asked. */
export type SystemMemoryReader = () => { totalBytes: number; freeBytes: number } | null;

/** `os.totalmem()` and `os.freemem()`; null where the runtime refuses (Deno without --allow-sys). */
export const runtimeSystemMemory: SystemMemoryReader = (): { totalBytes: number; freeBytes: number } | null => {
  // Asked first, so Deno never prompts (a terminal would wait for an answer).
  if (!granted({ name: "sys", kind: "systemMemoryInfo" })) return null;
  try {
    return { totalBytes: totalmem(), freeBytes: freemem() };
  } catch {
    return null;
  }
};

function positive(value: number | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value) && value > 0;
}

/**
 * The machine's total and available memory from `/proc/meminfo` text when it
 * is possible (MemTotal > 0 and not below MemAvailable), else from `system`;
 * null when neither gives a total.
 */
export function readMachineMemory(meminfo: string | null, system: SystemMemoryReader): MachineMemory | null {
  const values = parseMeminfo(meminfo ?? "");
  const total = values.get("MemTotal");
  // Kernels before 3.14 have no MemAvailable: estimate it as Chromium does.
  const available = values.get("MemAvailable") ??
    (values.get("MemFree") ?? 0) + (values.get("Buffers") ?? 0) + (values.get("Cached") ?? 0);
  if (positive(total) && available <= total) return { totalBytes: total, availableBytes: available, from: "meminfo" };
  const sys = system();
  if (sys === null || !positive(sys.totalBytes)) return null;
  const free = positive(sys.freeBytes) && sys.freeBytes <= sys.totalBytes ? sys.freeBytes : null;
  return { totalBytes: sys.totalBytes, availableBytes: free, from: "sysinfo" };
}

/** What `readMachineMemory` was given, for an error message. */
export function describeMachineSources(meminfo: string | null, system: SystemMemoryReader): string {
  const total = parseMeminfo(meminfo ?? "").get("MemTotal");
  const file = meminfo === null
    ? "/proc/meminfo could not be read"
    : total === undefined
    ? "/proc/meminfo has no MemTotal line"
    : `/proc/meminfo says MemTotal ${total / 1024} kB`;
  const sys = system();
  const runtime = sys === null
    ? "the runtime's os.totalmem() could not be called"
    : `the runtime's os.totalmem() gives ${sys.totalBytes} and os.freemem() ${sys.freeBytes}`;
  return `${file}, and ${runtime}`;
}
