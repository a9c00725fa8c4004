// Issue 12 items 6 and 7: the headroom of a nested cgroup is the tightest of
// (limit − that cgroup's own working set) over every ancestor with a limit,
// siblings included; cgroup v2's memory.high is a limit too, and the status
// names the file that set the limit. Fixtures for v2 and v1, and a real v1
// hierarchy with a real sibling process.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { type FileReader, readLinuxStatus } from "../../src/pressure/memory_status.ts";
import { nativeInfo, PressureLevel, pressureLevel } from "../../mod.ts";
import {
  endChild,
  makeGroup,
  pressureFixture,
  removeGroups,
  runPlaced,
  runtimeArgv,
  startPlaced,
  waitForLine,
  writableMemoryV1,
} from "./_children.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const MEMINFO = "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8192000 kB\n";
const V2 = {
  "/proc/meminfo": MEMINFO,
  "/proc/self/mountinfo": "30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
  "/sys/fs/cgroup/cgroup.controllers": "cpu io memory pids\n",
};

function files(map: Record<string, string>): FileReader {
  return (path) => map[path] ?? null;
}

test("v2 fixture (issue 6): parent limit 1 GiB, 900 MiB used by its subtree, own cgroup small → 124 MiB", () => {
  const read = (parentUsed: number) =>
    readLinuxStatus(
      files({
        ...V2,
        "/proc/self/cgroup": "0::/parent/own\n",
        "/sys/fs/cgroup/parent/own/memory.current": `${100 * MiB}\n`,
        "/sys/fs/cgroup/parent/own/memory.max": "max\n",
        "/sys/fs/cgroup/parent/own/memory.high": "max\n",
        "/sys/fs/cgroup/parent/memory.current": `${parentUsed}\n`,
        "/sys/fs/cgroup/parent/memory.max": `${GiB}\n`,
        "/sys/fs/cgroup/parent/memory.high": "max\n",
      }),
      4096,
    );
  const status = read(900 * MiB);
  assert.equal(status.availableBytes, 124 * MiB, "the parent's limit minus the parent's usage, not minus ours");
  assert.equal(status.limitBytes, GiB);
  assert.equal(status.usedBytes, 900 * MiB, "the binding cgroup's working set");
  assert.equal(status.limitFile, "/sys/fs/cgroup/parent/memory.max");
  // 124 MiB of 1 GiB is 12.1 %: Medium by the design's bands (High starts at 10 %).
  assert.equal(pressureLevel(status), PressureLevel.Medium);
  assert.equal(pressureLevel(read(950 * MiB)), PressureLevel.High, "74 MiB of 1 GiB left (7.2 %)");
  assert.equal(read(1100 * MiB).availableBytes, 0, "a parent over its limit leaves nothing");
});

test("v2 fixture: the least headroom binds, not the smallest limit; ties name the smaller limit, then ours", () => {
  const tree = (ownMax: string, parentUsed: number, parentMax: string) =>
    readLinuxStatus(
      files({
        ...V2,
        "/proc/self/cgroup": "0::/a/b/own\n",
        "/sys/fs/cgroup/a/b/own/memory.current": `${100 * MiB}\n`,
        "/sys/fs/cgroup/a/b/own/memory.stat": `anon 1\ninactive_file ${20 * MiB}\n`,
        "/sys/fs/cgroup/a/b/own/memory.max": ownMax,
        "/sys/fs/cgroup/a/b/memory.current": `${parentUsed}\n`,
        "/sys/fs/cgroup/a/b/memory.stat": `inactive_file ${50 * MiB}\n`,
        "/sys/fs/cgroup/a/b/memory.max": parentMax,
        "/sys/fs/cgroup/a/memory.current": `${3 * GiB}\n`,
        "/sys/fs/cgroup/a/memory.max": `${4 * GiB}\n`,
      }),
      4096,
    );
  // Own: 512 − 80 = 432 MiB. Parent: 1024 − (850 − 50) = 224 MiB. Grandparent: 4 GiB − 3 GiB = 1 GiB.
  const parentBinds = tree(`${512 * MiB}\n`, 850 * MiB, `${GiB}\n`);
  assert.equal(parentBinds.availableBytes, 224 * MiB);
  assert.equal(parentBinds.limitBytes, GiB, "the parent's limit, though ours is smaller");
  assert.equal(parentBinds.limitFile, "/sys/fs/cgroup/a/b/memory.max");
  assert.equal(parentBinds.usedBytes, 800 * MiB, "the parent's working set (inactive file cache excluded)");
  // Own: 512 − 80 = 432 MiB. Parent: 1024 − (150 − 50) = 924 MiB.
  const ownBinds = tree(`${512 * MiB}\n`, 150 * MiB, `${GiB}\n`);
  assert.equal(ownBinds.availableBytes, 432 * MiB);
  assert.equal(ownBinds.limitFile, "/sys/fs/cgroup/a/b/own/memory.max");
  assert.equal(ownBinds.usedBytes, 80 * MiB);
  // Equal headroom (432 MiB) at own (512 − 80) and parent (1024 − (642 − 50)): the smaller limit is named.
  const tie = tree(`${512 * MiB}\n`, 642 * MiB, `${GiB}\n`);
  assert.equal(tie.availableBytes, 432 * MiB);
  assert.equal(tie.limitFile, "/sys/fs/cgroup/a/b/own/memory.max");
  // Unlimited all the way up: the machine decides.
  const none = readLinuxStatus(files({
    ...V2,
    "/proc/self/cgroup": "0::/x\n",
    "/sys/fs/cgroup/x/memory.current": `${100 * MiB}\n`,
    "/sys/fs/cgroup/x/memory.max": "max\n",
  }));
  assert.equal(none.limitBytes, null);
  assert.equal(none.limitFile, null);
  assert.equal(none.availableBytes, 8192000 * 1024);
});

test("v2 fixture: an ancestor whose usage cannot be read counts the largest working set read below it", () => {
  const status = (middleCurrent?: string) =>
    readLinuxStatus(files({
      ...V2,
      "/proc/self/cgroup": "0::/p/m/own\n",
      "/sys/fs/cgroup/p/m/own/memory.current": `${300 * MiB}\n`,
      ...(middleCurrent === undefined ? {} : { "/sys/fs/cgroup/p/m/memory.current": middleCurrent }),
      "/sys/fs/cgroup/p/memory.max": `${GiB}\n`,
    }));
  assert.equal(status().availableBytes, GiB - 300 * MiB, "ours is part of the parent's usage: an upper bound");
  assert.equal(status().limitFile, "/sys/fs/cgroup/p/memory.max");
  assert.equal(status(`${500 * MiB}\n`).availableBytes, GiB - 500 * MiB, "the middle cgroup's 500 MiB is part of it");
});

test("v2 fixture (issue 7): memory.high is a limit; the smaller of high and max wins and is named", () => {
  const status = readLinuxStatus(files({
    ...V2,
    "/proc/self/cgroup": "0::/svc\n",
    "/sys/fs/cgroup/svc/memory.current": `${250 * MiB}\n`,
    "/sys/fs/cgroup/svc/memory.high": `${256 * MiB}\n`,
    "/sys/fs/cgroup/svc/memory.max": "max\n",
  }));
  assert.equal(status.limitBytes, 256 * MiB);
  assert.equal(status.limitFile, "/sys/fs/cgroup/svc/memory.high");
  assert.equal(status.availableBytes, 6 * MiB);
  assert.equal(pressureLevel(status), PressureLevel.Critical);
  const both = (high: string, max: string) =>
    readLinuxStatus(files({
      ...V2,
      "/proc/self/cgroup": "0::/svc\n",
      "/sys/fs/cgroup/svc/memory.current": `${100 * MiB}\n`,
      "/sys/fs/cgroup/svc/memory.high": high,
      "/sys/fs/cgroup/svc/memory.max": max,
    }));
  assert.equal(both(`${512 * MiB}`, `${384 * MiB}`).limitFile, "/sys/fs/cgroup/svc/memory.max", "max is smaller");
  assert.equal(both(`${384 * MiB}`, `${512 * MiB}`).limitFile, "/sys/fs/cgroup/svc/memory.high", "high is smaller");
  assert.equal(both(`${384 * MiB}`, `${384 * MiB}`).limitFile, "/sys/fs/cgroup/svc/memory.max", "a tie names max");
  // memory.high set on an ancestor applies to the whole subtree, like its memory.max.
  const ancestor = readLinuxStatus(files({
    ...V2,
    "/proc/self/cgroup": "0::/slice/svc\n",
    "/sys/fs/cgroup/slice/svc/memory.current": `${10 * MiB}\n`,
    "/sys/fs/cgroup/slice/memory.current": `${200 * MiB}\n`,
    "/sys/fs/cgroup/slice/memory.high": `${256 * MiB}\n`,
    "/sys/fs/cgroup/slice/memory.max": `${GiB}\n`,
  }));
  assert.equal(ancestor.limitBytes, 256 * MiB);
  assert.equal(ancestor.limitFile, "/sys/fs/cgroup/slice/memory.high");
  assert.equal(ancestor.availableBytes, 56 * MiB);
});

test("v1 fixture: each ancestor's own usage counts; a limit hidden above the mount counts the visible top's", () => {
  const base = {
    "/proc/meminfo": MEMINFO,
    "/proc/self/cgroup": "4:memory:/parent/own\n0::/\n",
    "/proc/self/mountinfo": "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
    "/sys/fs/cgroup/memory/parent/own/memory.usage_in_bytes": `${40 * MiB}\n`,
    "/sys/fs/cgroup/memory/parent/own/memory.limit_in_bytes": "9223372036854771712\n",
    "/sys/fs/cgroup/memory/parent/memory.usage_in_bytes": `${340 * MiB}\n`,
    "/sys/fs/cgroup/memory/parent/memory.stat": `cache 1\ntotal_inactive_file ${10 * MiB}\n`,
    "/sys/fs/cgroup/memory/parent/memory.limit_in_bytes": `${512 * MiB}\n`,
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
  };
  const status = readLinuxStatus(files({
    ...base,
    "/sys/fs/cgroup/memory/parent/own/memory.stat": `hierarchical_memory_limit ${512 * MiB}\ntotal_inactive_file 0\n`,
  }));
  assert.equal(status.source, "linux-cgroup-v1");
  assert.equal(status.availableBytes, 182 * MiB, "512 − (340 − 10): the sibling's memory counts");
  assert.equal(status.limitFile, "/sys/fs/cgroup/memory/parent/memory.limit_in_bytes");
  // A container's view: the mount shows its own subtree; the limit is set above it, where only the kernel's
  // hierarchical_memory_limit shows it. Everything visible is inside that cgroup, so the top's usage counts.
  const hidden = (topUsage: string | undefined) =>
    readLinuxStatus(files({
      "/proc/meminfo": MEMINFO,
      "/proc/self/cgroup": "4:memory:/docker/abc/app\n0::/\n",
      "/proc/self/mountinfo": "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
      "/sys/fs/cgroup/memory/app/memory.usage_in_bytes": `${40 * MiB}\n`,
      "/sys/fs/cgroup/memory/app/memory.limit_in_bytes": "9223372036854771712\n",
      "/sys/fs/cgroup/memory/app/memory.stat": `hierarchical_memory_limit ${256 * MiB}\ntotal_inactive_file 0\n`,
      "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
      ...(topUsage === undefined ? {} : { "/sys/fs/cgroup/memory/memory.usage_in_bytes": topUsage }),
    }));
  const container = hidden(`${150 * MiB}\n`);
  assert.equal(container.limitBytes, 256 * MiB);
  assert.equal(container.availableBytes, 106 * MiB, "256 − the container's 150 MiB");
  assert.equal(container.limitFile, "/sys/fs/cgroup/memory/app/memory.stat");
  assert.equal(hidden(undefined).availableBytes, 216 * MiB, "the top unreadable: 256 − our own 40 MiB");
});

test("real cgroup v1 hierarchy: a sibling holding 300 MiB under a 512 MiB parent shrinks our headroom", async (t) => {
  const where = writableMemoryV1();
  if ("reason" in where) {
    console.log(`skipped: ${where.reason}`);
    t.skip?.(where.reason);
    return;
  }
  const parent = `${where.mountPoint}/memkit-nest-${nativeInfo().runtime}-${process.pid}`;
  const groups = [parent, `${parent}/hog`, `${parent}/probe`];
  try {
    makeGroup(parent, 512 * MiB);
    makeGroup(`${parent}/hog`);
    makeGroup(`${parent}/probe`);
  } catch (error) {
    await removeGroups(groups);
    console.log(`skipped: cannot create memory cgroups (${(error as Error).message})`);
    t.skip?.(`cannot create memory cgroups: ${(error as Error).message}`);
    return;
  }
  const hog = startPlaced(runtimeArgv(pressureFixture("hold_memory.ts"), ["300"]), { cgroup: `${parent}/hog` });
  try {
    await waitForLine(hog, /^ready /, 90_000);
    const probe = runPlaced(runtimeArgv(pressureFixture("print_status.ts"), [parent]), { cgroup: `${parent}/probe` });
    assert.equal(probe.status, 0, probe.stderr);
    const seen = JSON.parse(probe.stdout.trim().split("\n").at(-1)!);
    assert.ok(seen.status, JSON.stringify(seen));
    const { status, before, after } = seen;
    const limit = 512 * MiB;
    const right = (u: { usage: number; inactive: number }) => limit - (u.usage - u.inactive);
    const report = `reported ${(status.availableBytes / MiB).toFixed(1)} MiB; parent limit − parent working set ` +
      `${(right(before) / MiB).toFixed(1)} MiB before the read, ${(right(after) / MiB).toFixed(1)} MiB after`;
    console.log(report);
    assert.equal(status.source, "linux-cgroup-v1");
    assert.equal(status.limitBytes, limit);
    assert.equal(status.limitFile, `${parent}/memory.limit_in_bytes`);
    assert.ok(status.usedBytes >= 300 * MiB, `used ${status.usedBytes}: the sibling's 300 MiB count`);
    // The probe's own memory moves a little between its reads: allow 16 MiB either side.
    const low = Math.min(right(before), right(after)) - 16 * MiB;
    const high = Math.max(right(before), right(after)) + 16 * MiB;
    assert.ok(status.availableBytes >= low && status.availableBytes <= high, report);
    assert.ok(status.availableBytes < limit - 300 * MiB, `below 212 MiB: ${report}`);
    assert.ok(seen.level >= PressureLevel.Low, `level ${seen.level}`);
    assert.equal(Number(readFileSync(`${parent}/memory.limit_in_bytes`, "utf8")), limit);
  } finally {
    await endChild(hog);
    await removeGroups(groups);
  }
});
