// Parsers for Linux memory sources: /proc/meminfo, PSI files, cgroup files,
// /proc/self/cgroup and /proc/self/mountinfo. Pure functions of text, so they
// are tested on fixtures; malformed input gives null or skips the line, never
// an exception.

/** PSI averages, in percent of wall time. */
export interface PsiAverages {
  /** Share of time at least one task stalled on memory, over 10 s. */
  some10: number;
  /** The same over 60 s. */
  some60: number;
  /** Share of time all tasks stalled at once, over 10 s. */
  full10: number;
  /** The same over 60 s. */
  full60: number;
}

/** `/proc/meminfo` values in bytes (MemTotal, MemAvailable, ...), by key. */
export function parseMeminfo(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    values.set(match[1], line.trimEnd().endsWith("kB") ? value * 1024 : value);
  }
  return values;
}

/** A PSI file (`some avg10=… avg60=…`, `full …`), or null when it has no `some` line. */
export function parsePsi(text: string): PsiAverages | null {
  const read = (kind: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${kind} `));
    if (!line) return null;
    // A figure that is not a decimal (`1.2.3`) makes no match rather than NaN: the line is malformed.
    const avg10 = /avg10=(\d+(?:\.\d+)?)(?!\S)/.exec(line);
    const avg60 = /avg60=(\d+(?:\.\d+)?)(?!\S)/.exec(line);
    if (!avg10 || !avg60) return null;
    return { avg10: Number(avg10[1]), avg60: Number(avg60[1]) };
  };
  const some = read("some");
  if (!some) return null;
  // Kernels before 5.x (and the old /proc/mempressure) have no `full` line.
  const full = read("full") ?? { avg10: 0, avg60: 0 };
  return { some10: some.avg10, some60: some.avg60, full10: full.avg10, full60: full.avg60 };
}

/** `key value` lines (memory.stat, memory.events) as numbers, by key. */
export function parseKeyValues(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value, extra] = line.trim().split(/\s+/);
    if (!key || value === undefined || extra !== undefined) continue;
    const number = Number(value);
    if (Number.isFinite(number)) values.set(key, number);
  }
  return values;
}

/**
 * A byte count from a cgroup file: `"max"` (v2) and values from 2^62 up
 * (v1's "unlimited" is 9223372036854771712) read as null, as does garbage.
 */
export function parseLimit(text: string): number | null {
  const value = text.trim();
  if (value === "max" || !/^\d+$/.test(value)) return null;
  const number = Number(value);
  return number >= 2 ** 62 ? null : number;
}

/** This process's memory cgroup from `/proc/self/cgroup`: the v2 path, the v1 memory path, or null. */
export function parseProcCgroup(text: string): { v2: string | null; v1: string | null } {
  let v2: string | null = null;
  let v1: string | null = null;
  for (const line of text.split("\n")) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    if (match[1] === "0" && match[2] === "") v2 = match[3];
    else if (match[2].split(",").includes("memory")) v1 = match[3];
  }
  return { v2, v1 };
}

/** A cgroup mount from `/proc/self/mountinfo`. */
export interface CgroupMount {
  /** Path inside the cgroup hierarchy that is mounted. */
  root: string;
  /** Where it is mounted. */
  mountPoint: string;
}

/** The cgroup2 mount and the v1 memory-controller mount, where present. */
export function parseMountinfo(text: string): { v2: CgroupMount | null; v1: CgroupMount | null } {
  let v2: CgroupMount | null = null;
  let v1: CgroupMount | null = null;
  for (const line of text.split("\n")) {
    const [before, after] = line.split(" - ");
    if (!after) continue;
    const fields = before.split(" ");
    const [fstype, , superOptions = ""] = after.split(" ");
    if (fields.length < 5) continue;
    const mount = { root: fields[3], mountPoint: fields[4] };
    if (fstype === "cgroup2") v2 ??= mount;
    else if (fstype === "cgroup" && superOptions.split(",").includes("memory")) v1 ??= mount;
  }
  return { v2, v1 };
}
