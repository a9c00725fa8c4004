// Pressure callbacks fire when the level rises to theirs or above, with the
// available bytes and a pressure ratio; the platform band (constrained,
// moderate, relaxed) picks the thresholds from the memory the process may use.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MemoryInterface,
  type MemoryPressureInfo,
  type MemoryStatus,
  PressureLevel,
  pressureLevel,
  type PressureLevelValue,
  PressureMonitor,
  readMemoryStatus,
} from "../../mod.ts";
import { platformBand } from "../../src/hal/_platform_band.ts";
import { fileURLToPath } from "node:url";
import { runChild } from "../_helpers.ts";

const MiB = 1 << 20;

function status(totalBytes: number, availableBytes: number): MemoryStatus {
  return {
    totalBytes,
    availableBytes,
    limitBytes: null,
    usedBytes: totalBytes - availableBytes,
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  };
}

test("registerPressureCallback: called at its level or above, with available bytes and a ratio", async () => {
  const total = 8 * 2 ** 30;
  const share = (fraction: number) => Math.round(fraction * total); // byte counts are whole numbers
  let available = share(0.9);
  const monitor = new PressureMonitor({ read: () => status(total, available), hysteresis: 1 });
  using memory = new MemoryInterface({ pressure: monitor });
  const heard: { who: string; level: PressureLevelValue; info: MemoryPressureInfo }[] = [];
  const medium = memory.registerPressureCallback(
    PressureLevel.Medium,
    (level, info) => heard.push({ who: "medium", level, info }),
  );
  memory.registerPressureCallback(
    PressureLevel.Critical,
    (level, info) => heard.push({ who: "critical", level, info }),
  );
  const block = memory.allocate(1000);
  available = share(0.3); // Low: below both
  monitor.refresh();
  assert.equal(heard.length, 0);
  available = share(0.08); // High: Medium's listener hears it
  monitor.refresh();
  assert.deepEqual(heard.map((h) => [h.who, h.level]), [["medium", PressureLevel.High]]);
  const info = heard[0].info;
  assert.equal(info.availableBytes, share(0.08));
  assert.equal(info.totalBytes, total);
  assert.ok(Math.abs(info.pressureRatio - 0.92) < 1e-9);
  assert.equal(info.interfaceBytes, 1000);
  available = share(0.01); // Critical
  monitor.refresh();
  assert.deepEqual(
    heard.map((h) => h.who),
    ["medium", "critical"],
    "a rise within Medium's band does not call it again",
  );
  memory.unregisterPressureCallback(medium);
  available = share(0.9);
  monitor.refresh();
  available = share(0.08);
  monitor.refresh();
  assert.equal(heard.length, 2, "unregistered: not called");
  // Registering while the level is already there: called once, soon.
  const late: PressureLevelValue[] = [];
  memory.registerPressureCallback(PressureLevel.Low, (level) => late.push(level));
  await Promise.resolve();
  assert.deepEqual(late, [PressureLevel.High]);
  memory.deallocate(block);
  memory.dispose();
  available = share(0.01);
  monitor.refresh();
  assert.equal(late.length, 1, "dispose unregisters the callbacks from a monitor it does not own");
});

test("registerPressureCallback without a monitor: kept, never called", async () => {
  using memory = new MemoryInterface({ pressure: false });
  let calls = 0;
  const id = memory.registerPressureCallback(PressureLevel.Low, () => calls++);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(calls, 0);
  memory.unregisterPressureCallback(id);
  memory.unregisterPressureCallback(12345); // unknown: ignored
});

test("platform bands: constrained (≤ 32 MiB), moderate (≤ 128 MiB), relaxed; each with its own thresholds", () => {
  const dreamcast = platformBand(16 * MiB), psp = platformBand(32 * MiB);
  const web = platformBand(128 * MiB), desktop = platformBand(16 * 1024 * MiB);
  assert.deepEqual([dreamcast.band, psp.band, web.band, desktop.band], [
    "constrained",
    "constrained",
    "moderate",
    "relaxed",
  ]);
  // The design's constrained figures: Medium at 8 MiB free, High at 2 MiB free.
  assert.equal(dreamcast.thresholds.medium * 16 * MiB, 8 * MiB);
  assert.equal(dreamcast.thresholds.high * 16 * MiB, 2 * MiB);
  assert.deepEqual(desktop.thresholds, { low: 0.5, medium: 0.25, high: 0.1, critical: 0.05 });
  // The same share available means a different level in each band: 30 % free.
  const level = (band: ReturnType<typeof platformBand>, total: number) =>
    pressureLevel(status(total, Math.round(0.3 * total)), band.thresholds);
  assert.equal(level(dreamcast, 16 * MiB), PressureLevel.Medium, "16 MiB with 4.8 MiB free: Medium");
  assert.equal(level(web, 100 * MiB), PressureLevel.Medium, "moderate: Medium from 35 %");
  assert.equal(level(desktop, 16 * 1024 * MiB), PressureLevel.Low, "relaxed: only Low");
});

test("the interface's band comes from the memory this process may use (cgroup limit, else physical)", () => {
  using memory = new MemoryInterface({ pressure: false });
  const s = readMemoryStatus();
  const usable = s.limitBytes ?? s.totalBytes;
  assert.equal(memory.platform.totalBytes, usable);
  assert.deepEqual(memory.platform, platformBand(usable));
  const monitor = new PressureMonitor({ read: () => ({ ...status(24 * MiB, 20 * MiB), limitBytes: 24 * MiB }) });
  using small = new MemoryInterface({ pressure: monitor });
  assert.deepEqual([small.platform.band, small.platform.totalBytes], ["constrained", 24 * MiB]);
  assert.equal(small.getMemoryStats().totalBytes, 24 * MiB);
});

// The interface reads the monitor's checked reading, never the reader's object: before, `status` was that object,
// and the platform band, the stack's size, getMemoryStats() and the callbacks' info read it again, unchecked.
test("the interface reads only the monitor's checked reading: a reader's object changed after the check changes nothing", () => {
  const limit = 64 * MiB;
  const good = () => ({ ...status(8 * 2 ** 30, 4 * 2 ** 30), limitBytes: limit });
  const changes: [string, (s: Record<string, unknown>) => void][] = [
    ["limitBytes NaN", (s) => (s.limitBytes = Number.NaN)],
    ["limitBytes -1", (s) => (s.limitBytes = -1)],
    ["limitBytes 5000.5", (s) => (s.limitBytes = 5000.5)],
    ["totalBytes 'zzz' and limitBytes null", (s) => (s.limitBytes = null, s.totalBytes = "zzz")],
  ];
  for (const [what, change] of changes) {
    const raw = good();
    const monitor = new PressureMonitor({ read: () => raw });
    change(raw as unknown as Record<string, unknown>);
    using memory = new MemoryInterface({ pressure: monitor });
    assert.deepEqual(memory.platform, platformBand(limit), what);
    assert.equal(memory.getMemoryStats().totalBytes, limit, what);
    const block = memory.allocateTyped(100, "stack");
    const stack = memory.getMemoryStats("stack");
    assert.deepEqual([stack.totalBytes, stack.usedBytes], [1 * MiB, 100], what);
    memory.deallocate(block);
    monitor.stop();
  }
  // A getter that is valid once (at the check) and "zzz" after it.
  let reads = 0;
  const shifty = Object.defineProperty({ ...status(8 * 2 ** 30, 4 * 2 ** 30) }, "totalBytes", {
    enumerable: true,
    get: () => reads++ === 0 ? 8 * 2 ** 30 : "zzz",
  });
  const monitor = new PressureMonitor({ read: () => shifty });
  using memory = new MemoryInterface({ pressure: monitor });
  assert.deepEqual(memory.platform, platformBand(8 * 2 ** 30));
  assert.equal(memory.getMemoryStats().totalBytes, 8 * 2 ** 30);
  assert.equal(reads, 1, "the interface ran no getter of the reading");
  monitor.stop();
});

test("a subclass whose `status` getter lies: the interface reads the monitor's own checked reading", () => {
  class Lying extends PressureMonitor {
    override get status(): MemoryStatus {
      return { ...super.status, limitBytes: "zzz" as unknown as number };
    }
  }
  const monitor = new Lying({ read: () => ({ ...status(8 * 2 ** 30, 4 * 2 ** 30), limitBytes: 64 * MiB }) });
  using memory = new MemoryInterface({ pressure: monitor });
  assert.deepEqual(memory.platform, platformBand(64 * MiB));
  assert.equal(memory.getMemoryStats().totalBytes, 64 * MiB);
  monitor.stop();
});

test("a fractional byte count is refused by the monitor, naming the field (before: a StackAllocator's 'capacity' error)", () => {
  assert.throws(
    () => new PressureMonitor({ read: () => ({ ...status(8 * 2 ** 30, 4 * 2 ** 30), limitBytes: 5000.5 }) }),
    (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(e.message, /'status\.limitBytes' must be a whole number of bytes from 0: current value is 5000\.5$/);
      return true;
    },
  );
});

test("a limit below a page: the stack is one page, its stats never show fewer bytes than it holds in use", () => {
  for (const limit of [0, 1, 4095]) {
    const monitor = new PressureMonitor({ read: () => ({ ...status(8 * 2 ** 30, 0), limitBytes: limit }) });
    using memory = new MemoryInterface({ pressure: monitor });
    assert.equal(memory.platform.totalBytes, limit);
    const block = memory.allocateTyped(100, "stack");
    const stats = memory.getMemoryStats("stack");
    // Before: totalBytes 1 with usedBytes 100.
    assert.deepEqual([stats.totalBytes, stats.usedBytes, stats.freeBytes], [4096, 100, 3996], `limit ${limit}`);
    assert.throws(() => memory.allocateTyped(5000, "stack"), (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(
        e.message,
        new RegExp(
          `the stack holds 4096 bytes, the size budgets\\.stack sets, capped at the ${limit} ${
            limit === 1 ? "byte" : "bytes"
          } this process may use, raised to one page of 4096 bytes, the least a stack holds \\(pass allowFallback`,
        ),
      );
      return true;
    });
    memory.deallocate(block);
    // A stack budget still bounds what the stack type may hold, and its stats say so.
    using budgeted = new MemoryInterface({ pressure: monitor, budgets: { stack: 1000 } });
    assert.equal(budgeted.getMemoryStats("stack").totalBytes, 1000);
    monitor.stop();
  }
});

// Finding 8 of the fourth new user: a pressure callback that throws killed the Deno process at once (Bun printed
// it as uncaught and went on). Callbacks are isolated as an Arena's observers are: the error goes to
// console.error with memkit's prefix, the other callbacks still run, nothing else changes. Both paths: the call
// soon after registering at a level already reached, and the monitor's dispatch on a rise.
test("a pressure callback that throws: logged with memkit's prefix, the others still run, the process lives", () => {
  const child = runChild(fileURLToPath(new URL("./_pressure_throw_child.ts", import.meta.url)), {}, [], 60_000);
  assert.equal(child.signal, null, child.stderr);
  assert.equal(child.status, 0, child.stderr);
  const report = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(report, { heard: ["low 3", "high 3", "--", "low 3", "high 3"], level: PressureLevel.High });
  for (const when of ["registered late", "on a rise"]) {
    assert.match(
      child.stderr,
      new RegExp(`memkit: a pressure callback threw[^\\n]*\\n?[^]*callback bug \\(${when}\\)`),
    );
  }
});
