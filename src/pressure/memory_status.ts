/**
 * How much memory the machine and this process's cgroup have left, read from
 * the operating system.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { granted, native } from "../../ffi/native.ts";
import { parsePsi, type PsiAverages } from "./_proc_parsers.ts";
import { type FileReader, readCgroupMemory } from "./_cgroup_memory.ts";
import {
  describeMachineSources,
  readMachineMemory,
  runtimeSystemMemory,
  type SystemMemoryReader,
} from "./_machine_memory.ts";
import { readDarwinStatus } from "./_darwin_memory.ts";
import { AllocationError } from "../base/errors.ts";

export type { FileReader, PsiAverages, SystemMemoryReader };

/**
 * A reading of the memory situation. Byte counts are plain numbers.
 *
 * Invariant on Linux when a cgroup limit binds: `usedBytes + availableBytes === limitBytes`, unless the machine's
 * MemAvailable is tighter still (then `availableBytes` is that) or the cgroup is over its limit (then 0).
 *
 * @example
 * ```ts
 * import { type MemoryStatus, readMemoryStatus } from "@memkit/memkit";
 *
 * const status: MemoryStatus = readMemoryStatus();
 * console.log(`${(status.availableBytes / 2 ** 30).toFixed(1)} GiB available (${status.source})`);
 * if (status.limitFile) console.log(`limited to ${status.limitBytes} bytes by ${status.limitFile}`);
 * ```
 */
export interface MemoryStatus {
  /** Physical memory of the machine, in bytes (MemTotal; see `totalSource`). */
  totalBytes: number;
  /**
   * Bytes that can still be used: the tightest of the machine's MemAvailable and, at each cgroup from this
   * process's up to the root that has a limit, that limit minus that cgroup's working set (which includes
   * siblings' memory: a parent's limit is shared by its whole subtree).
   */
  availableBytes: number;
  /**
   * The limit, in bytes, of the cgroup that leaves the least headroom (not necessarily the smallest limit on the
   * path), or null when no cgroup on the path has one. On cgroup v2 a cgroup's limit is the smaller of
   * `memory.max` and `memory.high`.
   */
  limitBytes: number | null;
  /**
   * In use, in bytes: the working set (usage minus inactive file cache) of the cgroup that sets `limitBytes`,
   * its whole subtree, when limited; else MemTotal − MemAvailable.
   */
  usedBytes: number;
  /** This process's resident set, in bytes. */
  rssBytes: number;
  /** Pressure stall information (the cgroup's when it has its own, else the machine's), or null where unavailable. */
  psi: PsiAverages | null;
  /** Where the numbers came from. */
  source: "linux-cgroup-v2" | "linux-cgroup-v1" | "linux-meminfo" | "darwin";
  /** cgroup v2 `memory.events` counters (high, max, oom, oom_kill) of this process's cgroup, or null. */
  events: { high: number; max: number; oom: number; oomKill: number } | null;
  /**
   * The file `limitBytes` was read from (e.g. `/sys/fs/cgroup/app/memory.high`; on v1 a `memory.stat` when the
   * limit is its `hierarchical_memory_limit`), or null without a limit. Optional so that statuses made by
   * hand (e.g. for `PressureMonitor`'s `read`) need not name it; {@linkcode readMemoryStatus} always sets it.
   */
  limitFile?: string | null;
  /**
   * Where `totalBytes` came from: `"meminfo"` (/proc/meminfo), `"sysinfo"` (the runtime's `os.totalmem()`, used
   * when /proc/meminfo is missing or impossible, e.g. `MemTotal: 0` under LXCFS) or `"sysctl"` (macOS
   * `hw.memsize`). Absent from statuses made by hand; {@linkcode readMemoryStatus} always sets it.
   */
  totalSource?: "meminfo" | "sysinfo" | "sysctl";
}

/**
 * Reads a Linux memory status through `read` (a path → text function), so it
 * can run on fixture files; {@linkcode readMemoryStatus} passes the real file
 * system. Unreadable sources degrade: no cgroup → "linux-meminfo"; no PSI →
 * null; a missing or impossible /proc/meminfo → the runtime's `os.totalmem()`
 * (`system`, injectable too).
 *
 * @throws {AllocationError} "platform" when no source gives the machine's total, or nothing says what is
 *   available (an impossible /proc/meminfo, a runtime free count of 0 and no cgroup limit).
 */
export function readLinuxStatus(
  read: FileReader,
  pageSize: number = native.pageSize,
  system: SystemMemoryReader = runtimeSystemMemory,
): MemoryStatus {
  const meminfo = read("/proc/meminfo");
  const machine = readMachineMemory(meminfo, system);
  if (machine === null) {
    throw new AllocationError(
      "platform",
      `Cannot read the memory status as no source gives the machine's total: ${
        describeMachineSources(meminfo, system)
      }`,
    );
  }
  const statm = (read("/proc/self/statm") ?? "").trim().split(/\s+/);
  const rss = statm.length > 1 && /^\d+$/.test(statm[1]) ? Number(statm[1]) * pageSize : 0;
  const machinePsi = parsePsi(read("/proc/pressure/memory") ?? "");
  const cgroup = readCgroupMemory(read);
  const headroom = cgroup?.headroomBytes ?? null;

  let available: number;
  let used: number;
  if (headroom !== null) {
    available = machine.availableBytes === null ? headroom : Math.min(machine.availableBytes, headroom);
    used = cgroup!.usedBytes;
  } else if (machine.availableBytes !== null) {
    available = machine.availableBytes;
    used = machine.totalBytes - machine.availableBytes;
  } else {
    throw new AllocationError(
      "platform",
      `Cannot read the memory status as nothing says how much is available: ${
        describeMachineSources(meminfo, system)
      }, and no cgroup on this process's path has a memory limit`,
    );
  }
  return {
    totalBytes: machine.totalBytes,
    availableBytes: available,
    limitBytes: cgroup?.limitBytes ?? null,
    usedBytes: used,
    rssBytes: rss,
    psi: cgroup?.psi ?? machinePsi,
    source: cgroup?.source ?? "linux-meminfo",
    events: cgroup?.events ?? null,
    limitFile: cgroup?.limitFile ?? null,
    totalSource: machine.from,
  };
}

/**
 * Reads the memory situation now: on Linux, this process's cgroup (v2, or
 * v1's memory controller) and each of its ancestors up to the root, where the
 * one with the least headroom (its limit minus its own working set, siblings
 * included) binds; `/proc/meminfo` (or, when that is missing or impossible,
 * the runtime's `os.totalmem()`), PSI and the process's RSS. About 0.2 ms
 * (0.15–0.2 ms measured here); cheap enough to poll every second.
 *
 * @returns The status; `source` names what was read.
 * On macOS it reads `hw.memsize`, `kern.memorystatus_vm_pressure_level` (the
 * kernel's verdict, reported through `psi`), `host_statistics64` and the
 * process's `phys_footprint` through FFI.
 *
 * @throws {AllocationError} "unsupported" on other systems, or when Deno denies reading `/proc` (Deno 2 reads
 *   it only with `--allow-all`; memkit asks before reading, so Deno never prompts);
 *   "platform" when the sources are unreadable.
 *
 * @example
 * ```ts
 * import { pressureLevel, readMemoryStatus } from "@memkit/memkit";
 *
 * const status = readMemoryStatus();
 * console.log(status.source, status.limitBytes ?? "no limit", pressureLevel(status));
 * ```
 */
export function readMemoryStatus(): MemoryStatus {
  if (native.os === "linux") {
    // Deno refuses /proc without a permission (NotCapable: --allow-read, and
    // since Deno 2 --allow-all for /proc): say so instead of "no MemTotal".
    let denied: Error | null = null;
    const read: FileReader = (path) => {
      // Asked first, so Deno never prompts (a terminal would wait for an answer).
      if (!granted({ name: "read", path })) {
        denied ??= new Error(`no permission to read ${path}`);
        return null;
      }
      try {
        return readFileSync(path, "utf8");
      } catch (error) {
        const name = (error as Error)?.name;
        if (name === "NotCapable" || name === "PermissionDenied") denied ??= error as Error;
        return null;
      }
    };
    let status: MemoryStatus | null = null;
    let failure: unknown = null;
    try {
      status = readLinuxStatus(read);
    } catch (error) {
      failure = error;
    }
    // A denied file means a partial status (e.g. the runtime's sysinfo total without the cgroup's limit): refuse
    // it even when the fallbacks produced one.
    if (denied !== null) {
      throw new AllocationError(
        "unsupported",
        `Cannot read the memory status as Deno denied reading /proc (${
          (denied as Error).message
        }): Deno 2 reads /proc only with --allow-all (-A)`,
        { cause: denied },
      );
    }
    if (status === null) throw failure;
    return status;
  }
  if (native.os === "darwin") return readDarwinStatus();
  throw new AllocationError("unsupported", `Cannot read the memory status on ${native.os}`);
}
