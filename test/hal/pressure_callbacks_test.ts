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
  let available = 0.9 * total;
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
  available = 0.3 * total; // Low: below both
  monitor.refresh();
  assert.equal(heard.length, 0);
  available = 0.08 * total; // High: Medium's listener hears it
  monitor.refresh();
  assert.deepEqual(heard.map((h) => [h.who, h.level]), [["medium", PressureLevel.High]]);
  const info = heard[0].info;
  assert.equal(info.availableBytes, 0.08 * total);
  assert.equal(info.totalBytes, total);
  assert.ok(Math.abs(info.pressureRatio - 0.92) < 1e-9);
  assert.equal(info.interfaceBytes, 1000);
  available = 0.01 * total; // Critical
  monitor.refresh();
  assert.deepEqual(
    heard.map((h) => h.who),
    ["medium", "critical"],
    "a rise within Medium's band does not call it again",
  );
  memory.unregisterPressureCallback(medium);
  available = 0.9 * total;
  monitor.refresh();
  available = 0.08 * total;
  monitor.refresh();
  assert.equal(heard.length, 2, "unregistered: not called");
  // Registering while the level is already there: called once, soon.
  const late: PressureLevelValue[] = [];
  memory.registerPressureCallback(PressureLevel.Low, (level) => late.push(level));
  await Promise.resolve();
  assert.deepEqual(late, [PressureLevel.High]);
  memory.deallocate(block);
  memory.dispose();
  available = 0.01 * total;
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
    pressureLevel(status(total, 0.3 * total), band.thresholds);
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
