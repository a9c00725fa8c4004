/**
 * How much memory the machine and this process's cgroup have left, read from
 * the operating system.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { native } from "../../ffi/native.ts";
import {
  type CgroupMount,
  parseKeyValues,
  parseLimit,
  parseMeminfo,
  parseMountinfo,
  parseProcCgroup,
  parsePsi,
  type PsiAverages,
} from "./_proc_parsers.ts";
import { readDarwinStatus } from "./_darwin_memory.ts";
import { AllocationError } from "../base/errors.ts";

export type { PsiAverages };

/**
 * A reading of the memory situation. Byte counts are plain numbers.
 *
 * @example
 * ```ts
 * import { type MemoryStatus, readMemoryStatus } from "@memkit/memkit";
 *
 * const status: MemoryStatus = readMemoryStatus();
 * console.log(`${(status.availableBytes / 2 ** 30).toFixed(1)} GiB available (${status.source})`);
 * ```
 */
export interface MemoryStatus {
  /** Physical memory of the machine (MemTotal). */
  totalBytes: number;
  /** What can still be used: the tighter of the machine's MemAvailable and the cgroup's headroom. */
  availableBytes: number;
  /** The tightest memory limit of this process's cgroup and its ancestors, or null when unlimited. */
  limitBytes: number | null;
  /** In use: the cgroup's working set (usage minus inactive file cache) when limited, else MemTotal − MemAvailable. */
  usedBytes: number;
  /** This process's resident set. */
  rssBytes: number;
  /** Pressure stall information (the cgroup's when it has its own, else the machine's), or null where unavailable. */
  psi: PsiAverages | null;
  /** Where the numbers came from. */
  source: "linux-cgroup-v2" | "linux-cgroup-v1" | "linux-meminfo" | "darwin";
  /** cgroup v2 `memory.events` counters (high, max, oom, oom_kill), or null. */
  events: { high: number; max: number; oom: number; oomKill: number } | null;
}

/** Reads a file as text, or null when it cannot be read. */
export type FileReader = (path: string) => string | null;

function join(base: string, path: string): string {
  return `${base.replace(/\/$/, "")}/${path.replace(/^\//, "")}`;
}

// The cgroup directory for `path` under `mount`, and its ancestors up to the
// mount point, leaf first. Inside containers the path may not resolve (it is
// relative to another namespace's root); then the mount point alone is used.
function cgroupDirectories(mount: CgroupMount, path: string, read: FileReader, probe: string): string[] {
  let relative = path;
  if (mount.root !== "/" && relative.startsWith(mount.root)) relative = relative.slice(mount.root.length);
  const leaf = join(mount.mountPoint, relative);
  const start = read(join(leaf, probe)) !== null ? leaf : mount.mountPoint;
  const directories: string[] = [];
  for (let dir = start; dir.length >= mount.mountPoint.length; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    directories.push(dir);
    if (dir === mount.mountPoint) break;
  }
  return directories;
}

function minimum(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length ? Math.min(...present) : null;
}

/**
 * Reads a Linux memory status through `read` (a path → text function), so it
 * can run on fixture files; {@linkcode readMemoryStatus} passes the real file
 * system. Unreadable sources degrade: no cgroup → "linux-meminfo"; no PSI → null.
 */
export function readLinuxStatus(read: FileReader, pageSize: number = native.pageSize): MemoryStatus {
  const meminfo = parseMeminfo(read("/proc/meminfo") ?? "");
  const total = meminfo.get("MemTotal");
  if (total === undefined) {
    throw new AllocationError("platform", "Cannot read /proc/meminfo: no MemTotal line (is /proc mounted?)");
  }
  // Kernels before 3.14 have no MemAvailable: estimate it as Chromium does.
  const machineAvailable = meminfo.get("MemAvailable") ??
    (meminfo.get("MemFree") ?? 0) + (meminfo.get("Buffers") ?? 0) + (meminfo.get("Cached") ?? 0);
  const statm = (read("/proc/self/statm") ?? "").trim().split(/\s+/);
  const rss = statm.length > 1 && /^\d+$/.test(statm[1]) ? Number(statm[1]) * pageSize : 0;
  let psi = parsePsi(read("/proc/pressure/memory") ?? "");

  const cgroup = parseProcCgroup(read("/proc/self/cgroup") ?? "");
  const mounts = parseMountinfo(read("/proc/self/mountinfo") ?? "");
  let source: MemoryStatus["source"] = "linux-meminfo";
  let limit: number | null = null;
  let used = total - machineAvailable;
  let available = machineAvailable;
  let events: MemoryStatus["events"] = null;

  if (mounts.v2 && cgroup.v2 !== null && read(join(mounts.v2.mountPoint, "cgroup.controllers"))?.includes("memory")) {
    const dirs = cgroupDirectories(mounts.v2, cgroup.v2, read, "memory.current");
    const current = parseLimit(read(join(dirs[0], "memory.current")) ?? "");
    if (current !== null) {
      source = "linux-cgroup-v2";
      limit = minimum(dirs.map((d) => parseLimit(read(join(d, "memory.max")) ?? "")));
      const stat = parseKeyValues(read(join(dirs[0], "memory.stat")) ?? "");
      const workingSet = Math.max(0, current - (stat.get("inactive_file") ?? 0));
      const e = parseKeyValues(read(join(dirs[0], "memory.events")) ?? "");
      if (e.size) {
        events = {
          high: e.get("high") ?? 0,
          max: e.get("max") ?? 0,
          oom: e.get("oom") ?? 0,
          oomKill: e.get("oom_kill") ?? 0,
        };
      }
      psi = parsePsi(read(join(dirs[0], "memory.pressure")) ?? "") ?? psi;
      if (limit !== null) {
        used = workingSet;
        available = Math.max(0, Math.min(machineAvailable, limit - workingSet));
      }
    }
  } else if (mounts.v1 && cgroup.v1 !== null) {
    const dirs = cgroupDirectories(mounts.v1, cgroup.v1, read, "memory.usage_in_bytes");
    const usage = parseLimit(read(join(dirs[0], "memory.usage_in_bytes")) ?? "");
    if (usage !== null) {
      source = "linux-cgroup-v1";
      const stat = parseKeyValues(read(join(dirs[0], "memory.stat")) ?? "");
      limit = minimum([
        ...dirs.map((d) => parseLimit(read(join(d, "memory.limit_in_bytes")) ?? "")),
        parseLimit(String(stat.get("hierarchical_memory_limit") ?? "")),
      ]);
      const workingSet = Math.max(0, usage - (stat.get("total_inactive_file") ?? stat.get("inactive_file") ?? 0));
      if (limit !== null) {
        used = workingSet;
        available = Math.max(0, Math.min(machineAvailable, limit - workingSet));
      }
    }
  }
  return {
    totalBytes: total,
    availableBytes: available,
    limitBytes: limit,
    usedBytes: used,
    rssBytes: rss,
    psi,
    source,
    events,
  };
}

/**
 * Reads the memory situation now: on Linux, this process's cgroup (v2, or
 * v1's memory controller, walking up to the tightest limit), `/proc/meminfo`,
 * PSI and the process's RSS. About 0.1 ms; cheap enough to poll every second.
 *
 * @returns The status; `source` names what was read.
 * On macOS it reads `hw.memsize`, `kern.memorystatus_vm_pressure_level` (the
 * kernel's verdict, reported through `psi`), `host_statistics64` and the
 * process's `phys_footprint` through FFI.
 *
 * @throws {AllocationError} "unsupported" on other systems, or when Deno denies reading `/proc` (the message
 *   is Deno's, naming the flag it needs: `--allow-read`, and `--allow-all` for `/proc` since Deno 2);
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
      try {
        return readFileSync(path, "utf8");
      } catch (error) {
        const name = (error as Error)?.name;
        if (name === "NotCapable" || name === "PermissionDenied") denied ??= error as Error;
        return null;
      }
    };
    try {
      return readLinuxStatus(read);
    } catch (error) {
      if (denied === null) throw error;
      throw new AllocationError(
        "unsupported",
        `Cannot read the memory status as Deno denied reading /proc: ${(denied as Error).message}`,
        { cause: denied },
      );
    }
  }
  if (native.os === "darwin") return readDarwinStatus();
  throw new AllocationError("unsupported", `Cannot read the memory status on ${native.os}`);
}
