// The memory headroom this process's cgroup path leaves it, for cgroup v2
// and v1's memory controller.
//
// Why each ancestor is measured on its own: a parent's limit is shared by
// its whole subtree, so a sibling's memory uses up our headroom too
// (automemlimit issue 31, sysinfo PR 1651). At every cgroup on the path from
// ours up to the mount point, the headroom is that cgroup's limit minus that
// cgroup's own (hierarchical) working set; the smallest headroom binds.
// v2's `memory.high` counts as a limit next to `memory.max` (the kernel
// throttles and reclaims hard above it; libuv PR 3744 and Node's
// `os.constrainedMemory()` take the smaller of the two).
import {
  type CgroupMount,
  parseKeyValues,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
  parsePsi,
  type PsiAverages,
} from "./_proc_parsers.ts";
import type { MemoryStatus } from "./memory_status.ts";

/** Reads a file as text, or null when it cannot be read. */
export type FileReader = (path: string) => string | null;

/** cgroup v2 `memory.events` counters. */
type CgroupEvents = NonNullable<MemoryStatus["events"]>;

/** What the cgroup path says about this process's memory. */
export interface CgroupMemory {
  source: "linux-cgroup-v2" | "linux-cgroup-v1";
  /** The limit of the cgroup with the least headroom, or null when no cgroup on the path has a limit. */
  limitBytes: number | null;
  /** The file that limit was read from, or null. */
  limitFile: string | null;
  /** limitBytes minus usedBytes (at least 0), or null without a limit. */
  headroomBytes: number | null;
  /** Working set (usage minus inactive file cache) of the cgroup that sets the limit, or of our own when unlimited. */
  usedBytes: number;
  /** Our own cgroup's v2 event counters, or null. */
  events: CgroupEvents | null;
  /** Our own cgroup's v2 PSI, or null. */
  psi: PsiAverages | null;
}

// One cgroup on the path that has a limit. `workingSet` is this cgroup's own
// (it covers its whole subtree). When its usage cannot be read, it is the
// largest working set read below it on the path: those are part of it, so the
// headroom is then an upper bound.
interface LimitedLevel {
  limit: number;
  limitFile: string;
  workingSet: number;
}

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

// The level with the least headroom; on a tie the smaller limit, then the one nearer our own cgroup.
function tightest(levels: LimitedLevel[]): LimitedLevel | null {
  let best: LimitedLevel | null = null;
  for (const level of levels) {
    if (best === null) {
      best = level;
      continue;
    }
    const headroom = level.limit - level.workingSet, bestHeadroom = best.limit - best.workingSet;
    if (headroom < bestHeadroom || (headroom === bestHeadroom && level.limit < best.limit)) best = level;
  }
  return best;
}

function result(
  source: CgroupMemory["source"],
  levels: LimitedLevel[],
  ownWorkingSet: number,
  events: CgroupEvents | null,
  psi: PsiAverages | null,
): CgroupMemory {
  const binding = tightest(levels);
  return {
    source,
    limitBytes: binding?.limit ?? null,
    limitFile: binding?.limitFile ?? null,
    headroomBytes: binding ? Math.max(0, binding.limit - binding.workingSet) : null,
    usedBytes: binding?.workingSet ?? ownWorkingSet,
    events,
    psi,
  };
}

function readV2(mount: CgroupMount, path: string, read: FileReader): CgroupMemory | null {
  const dirs = cgroupDirectories(mount, path, read, "memory.current");
  const workingSetOf = (dir: string): number | null => {
    const current = parseLimit(read(join(dir, "memory.current")) ?? "");
    if (current === null) return null;
    // v2's memory.stat is hierarchical: inactive_file covers the subtree, like memory.current.
    return Math.max(0, current - (parseKeyValues(read(join(dir, "memory.stat")) ?? "").get("inactive_file") ?? 0));
  };
  const own = workingSetOf(dirs[0]);
  if (own === null) return null;
  const levels: LimitedLevel[] = [];
  let below = own; // invariant: the largest working set read so far, i.e. at or below `dir`
  for (const dir of dirs) {
    const workingSet = dir === dirs[0] ? own : workingSetOf(dir) ?? below;
    below = Math.max(below, workingSet);
    // memory.max first, so that on a tie the hard limit is the one named.
    for (const file of ["memory.max", "memory.high"]) {
      const limit = parseLimit(read(join(dir, file)) ?? "");
      if (limit !== null) levels.push({ limit, limitFile: join(dir, file), workingSet: below });
    }
  }
  const e = parseKeyValues(read(join(dirs[0], "memory.events")) ?? "");
  // A value that is not a count (the kernel writes none) reads as 0, as a missing one does: the monitor refuses a
  // reading with a negative, fractional or unsafe count.
  const count = (key: string) => {
    const value = e.get(key);
    return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : 0;
  };
  const events = e.size
    ? { high: count("high"), max: count("max"), oom: count("oom"), oomKill: count("oom_kill") }
    : null;
  return result("linux-cgroup-v2", levels, own, events, parsePsi(read(join(dirs[0], "memory.pressure")) ?? ""));
}

function readV1(mount: CgroupMount, path: string, read: FileReader): CgroupMemory | null {
  const dirs = cgroupDirectories(mount, path, read, "memory.usage_in_bytes");
  const statOf = (dir: string) => parseKeyValues(read(join(dir, "memory.stat")) ?? "");
  const workingSetOf = (dir: string, stat: Map<string, number>): number | null => {
    const usage = parseLimit(read(join(dir, "memory.usage_in_bytes")) ?? "");
    if (usage === null) return null;
    return Math.max(0, usage - (stat.get("total_inactive_file") ?? stat.get("inactive_file") ?? 0));
  };
  const ownStat = statOf(dirs[0]);
  const own = workingSetOf(dirs[0], ownStat);
  if (own === null) return null;
  const levels: LimitedLevel[] = [];
  let below = own; // invariant: the largest working set read so far, i.e. at or below `dir`
  for (const dir of dirs) {
    const limitFile = join(dir, "memory.limit_in_bytes");
    const limit = parseLimit(read(limitFile) ?? "");
    // Only limited cgroups need their usage (the root's memory.stat is long).
    if (limit === null) continue;
    below = Math.max(below, dir === dirs[0] ? own : workingSetOf(dir, statOf(dir)) ?? below);
    levels.push({ limit, limitFile, workingSet: below });
  }
  // The kernel's own minimum over all ancestors, including those above the
  // mount's root that a container cannot see (and whose usage it cannot
  // read: everything on the visible path is part of it).
  const hierarchical = parseLimit(String(ownStat.get("hierarchical_memory_limit") ?? ""));
  if (hierarchical !== null && levels.every((level) => hierarchical < level.limit)) {
    const top = dirs.at(-1)!;
    const workingSet = Math.max(below, top === dirs[0] ? own : workingSetOf(top, statOf(top)) ?? below);
    levels.push({ limit: hierarchical, limitFile: join(dirs[0], "memory.stat"), workingSet });
  }
  return result("linux-cgroup-v1", levels, own, null, null);
}

/**
 * Reads this process's memory cgroup (v2 when its memory controller is on,
 * else v1's), or null without one or when its usage cannot be read.
 */
export function readCgroupMemory(read: FileReader): CgroupMemory | null {
  const cgroup = parseProcCgroup(read("/proc/self/cgroup") ?? "");
  const mounts = parseMountinfo(read("/proc/self/mountinfo") ?? "");
  if (mounts.v2 && cgroup.v2 !== null && read(join(mounts.v2.mountPoint, "cgroup.controllers"))?.includes("memory")) {
    return readV2(mounts.v2, cgroup.v2, read);
  }
  if (mounts.v1 && cgroup.v1 !== null) return readV1(mounts.v1, cgroup.v1, read);
  return null;
}
