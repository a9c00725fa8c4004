// Issue 12 item 9: an impossible /proc/meminfo (MemTotal: 0, seen under
// LXCFS) is unknown, not "no memory left": the total comes from the next
// source, the runtime's os.totalmem() (sysinfo), and what is available from
// the cgroup's headroom or the runtime's os.freemem() when that is plausible.
// Fixtures, the real fallback source, and a real /proc/meminfo replaced the
// way LXCFS does it (a bind mount in the child's own mount namespace).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import process from "node:process";
import { test } from "node:test";
import { type FileReader, readLinuxStatus } from "../../src/pressure/memory_status.ts";
import { readMachineMemory } from "../../src/pressure/_machine_memory.ts";
import { AllocationError, nativeInfo, PressureLevel, pressureLevel, readMemoryStatus } from "../../mod.ts";
import {
  canBindMeminfo,
  makeGroup,
  pressureFixture,
  removeGroups,
  runPlaced,
  runtimeArgv,
  writableMemoryV1,
} from "./_children.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
// What LXCFS served in the reports: every figure 0.
const LXCFS_ZERO = "MemTotal:              0 kB\nMemFree:               0 kB\nMemAvailable:          0 kB\n" +
  "Buffers:               0 kB\nCached:                0 kB\n";

function files(map: Record<string, string>): FileReader {
  return (path) => map[path] ?? null;
}
const system = (totalBytes: number, freeBytes: number) => () => ({ totalBytes, freeBytes });
const V1_LIMITED = {
  "/proc/self/cgroup": "4:memory:/box\n0::/\n",
  "/proc/self/mountinfo": "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
  "/sys/fs/cgroup/memory/box/memory.usage_in_bytes": `${100 * MiB}\n`,
  "/sys/fs/cgroup/memory/box/memory.limit_in_bytes": `${512 * MiB}\n`,
};

test("MemTotal: 0 is unknown: the total and available come from the runtime's sysinfo view, not Critical", () => {
  const status = readLinuxStatus(files({ "/proc/meminfo": LXCFS_ZERO }), 4096, system(8 * GiB, 6 * GiB));
  assert.equal(status.totalSource, "sysinfo");
  assert.equal(status.totalBytes, 8 * GiB);
  assert.equal(status.availableBytes, 6 * GiB);
  assert.equal(status.usedBytes, 2 * GiB);
  assert.equal(pressureLevel(status), PressureLevel.None);
  // Also impossible: more available than the total.
  const inverted = readLinuxStatus(
    files({ "/proc/meminfo": "MemTotal: 1000 kB\nMemAvailable: 2000 kB\n" }),
    4096,
    system(8 * GiB, 6 * GiB),
  );
  assert.equal(inverted.totalSource, "sysinfo");
  // A possible file is used as is, without asking the runtime.
  const plain = readLinuxStatus(
    files({ "/proc/meminfo": "MemTotal: 1000 kB\nMemAvailable: 400 kB\n" }),
    4096,
    () => assert.fail("the fallback was asked although /proc/meminfo was possible"),
  );
  assert.equal(plain.totalSource, "meminfo");
  assert.equal(plain.totalBytes, 1000 * 1024);
});

test("MemTotal: 0 falls back to the real os.totalmem() of this runtime", () => {
  const status = readLinuxStatus(files({ "/proc/meminfo": LXCFS_ZERO, ...V1_LIMITED }));
  assert.equal(status.totalSource, "sysinfo");
  assert.equal(status.totalBytes, totalmem());
  assert.equal(status.limitBytes, 512 * MiB);
  assert.equal(status.availableBytes, 412 * MiB, "the cgroup's headroom, not 0 from the impossible file");
  assert.equal(pressureLevel(status), PressureLevel.None);
});

test("an impossible /proc/meminfo with a runtime free count of 0: the cgroup decides, else a platform error", () => {
  const limited = readLinuxStatus(files({ "/proc/meminfo": LXCFS_ZERO, ...V1_LIMITED }), 4096, system(8 * GiB, 0));
  assert.equal(limited.availableBytes, 412 * MiB);
  assert.equal(limited.totalBytes, 8 * GiB);
  assert.equal(pressureLevel(limited), PressureLevel.None);
  assert.throws(
    () => readLinuxStatus(files({ "/proc/meminfo": LXCFS_ZERO }), 4096, system(8 * GiB, 0)),
    (e: unknown) =>
      e instanceof AllocationError && e.category === "platform" && /MemTotal 0 kB/.test(e.message) &&
      /os\.freemem\(\) 0/.test(e.message) && /no cgroup/.test(e.message),
  );
  assert.throws(
    () => readLinuxStatus(files({}), 4096, () => null),
    (e: unknown) => e instanceof AllocationError && e.category === "platform" && /could not be read/.test(e.message),
  );
  assert.throws(
    () => readLinuxStatus(files({ "/proc/meminfo": LXCFS_ZERO }), 4096, system(0, 0)),
    (e: unknown) => e instanceof AllocationError && /os\.totalmem\(\) gives 0/.test(e.message),
  );
  assert.equal(readMachineMemory(LXCFS_ZERO, system(8 * GiB, 9 * GiB))?.availableBytes, null, "free > total");
  assert.equal(readMachineMemory(LXCFS_ZERO, system(Number.NaN, 1)), null);
});

test("readMemoryStatus() on this machine: /proc/meminfo is possible and is used", () => {
  const status = readMemoryStatus();
  assert.equal(status.totalSource, "meminfo");
  assert.ok(status.totalBytes > 0);
});

test("real LXCFS-style /proc/meminfo (MemTotal: 0 bind-mounted in the child's namespace)", async (t) => {
  const can = canBindMeminfo();
  if (!can.ok) {
    console.log(`skipped: cannot bind-mount over /proc/meminfo (${can.reason})`);
    t.skip?.(can.reason);
    return;
  }
  const dir = mkdtempSync(`${tmpdir()}/memkit-meminfo-`);
  const fake = `${dir}/meminfo`;
  writeFileSync(fake, LXCFS_ZERO);
  const where = writableMemoryV1();
  const group = "mountPoint" in where
    ? `${where.mountPoint}/memkit-lxcfs-${nativeInfo().runtime}-${process.pid}`
    : null;
  try {
    // Unlimited (this test's own cgroup): the runtime's free count decides.
    const free = runPlaced(runtimeArgv(pressureFixture("print_status.ts")), { meminfo: fake });
    assert.equal(free.status, 0, free.stderr);
    const seen = JSON.parse(free.stdout.trim().split("\n").at(-1)!);
    console.log(`unlimited: os.totalmem() ${seen.totalmem}, os.freemem() ${seen.freemem} under the fake file`);
    if (seen.freemem > 0 && seen.freemem <= seen.totalmem) {
      assert.ok(seen.status, JSON.stringify(seen));
      assert.equal(seen.status.totalSource, "sysinfo");
      assert.equal(seen.status.totalBytes, seen.totalmem);
      assert.ok(seen.status.availableBytes > 0);
      assert.ok(seen.level < PressureLevel.Critical, `level ${seen.level}`);
    } else if (seen.status) {
      // Only a cgroup limit (on a machine where this test runs inside one) can then say what is available.
      assert.notEqual(seen.status.limitBytes, null, JSON.stringify(seen));
      assert.equal(seen.status.totalSource, "sysinfo");
    } else {
      assert.equal(seen.error?.category, "platform", JSON.stringify(seen));
      assert.match(seen.error.message, /MemTotal 0 kB/);
    }
    // In a memory cgroup with a limit, as LXCFS containers are: the cgroup's headroom.
    if (group === null) {
      console.log(`skipped the limited case: ${"reason" in where ? where.reason : ""}`);
      return;
    }
    makeGroup(group, 512 * MiB);
    const boxed = runPlaced(runtimeArgv(pressureFixture("print_status.ts")), { cgroup: group, meminfo: fake });
    assert.equal(boxed.status, 0, boxed.stderr);
    const inBox = JSON.parse(boxed.stdout.trim().split("\n").at(-1)!);
    assert.ok(inBox.status, JSON.stringify(inBox));
    assert.equal(inBox.status.totalSource, "sysinfo");
    assert.equal(inBox.status.totalBytes, inBox.totalmem);
    assert.equal(inBox.status.limitBytes, 512 * MiB);
    assert.equal(inBox.status.limitFile, `${group}/memory.limit_in_bytes`);
    assert.ok(inBox.status.availableBytes > 256 * MiB, `available ${inBox.status.availableBytes}`);
    // The headroom decides the band; PSI (under cgroup v1 the whole machine's stalls, which other processes
    // make) may only raise the level.
    assert.ok(pressureLevel({ ...inBox.status, psi: null }) <= PressureLevel.Low, JSON.stringify(inBox));
    assert.ok(inBox.level >= pressureLevel({ ...inBox.status, psi: null }), JSON.stringify(inBox));
  } finally {
    if (group !== null) await removeGroups([group]);
    rmSync(dir, { recursive: true, force: true });
  }
});
