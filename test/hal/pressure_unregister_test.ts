// A pressure callback unregistered while the monitor is dispatching a rise (issue 15 adversarial finding 6):
// it is not called in that dispatch, whoever unregistered it (an earlier callback, or itself).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryInterface, type MemoryStatus, PressureLevel, PressureMonitor } from "../../mod.ts";

function fakeMonitor(): { monitor: PressureMonitor; set(available: number): void } {
  let available = 90;
  const read = (): MemoryStatus => ({
    totalBytes: 100,
    availableBytes: available,
    limitBytes: null,
    usedBytes: 100 - available,
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  });
  const monitor = new PressureMonitor({ read, hysteresis: 1, intervalMs: 3_600_000 });
  return {
    monitor,
    set(value) {
      available = value;
      monitor.refresh();
    },
  };
}

test("a callback unregistered by an earlier one in the same dispatch is not called", () => {
  const { monitor, set } = fakeMonitor();
  using memory = new MemoryInterface({ pressure: monitor });
  const calls: string[] = [];
  memory.registerPressureCallback(PressureLevel.High, () => {
    calls.push("first");
    memory.unregisterPressureCallback(second);
  });
  const second = memory.registerPressureCallback(PressureLevel.High, () => calls.push("second"));
  const third = memory.registerPressureCallback(PressureLevel.High, () => calls.push("third"));
  set(1);
  assert.deepEqual(calls, ["first", "third"]);
  memory.unregisterPressureCallback(third);
  monitor.stop();
});

test("a callback unregistered before the microtask that reports a level already reached is not called", async () => {
  const { monitor, set } = fakeMonitor();
  set(1);
  using memory = new MemoryInterface({ pressure: monitor });
  let calls = 0;
  const id = memory.registerPressureCallback(PressureLevel.High, () => calls++);
  memory.unregisterPressureCallback(id);
  await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(calls, 0);
  const kept = memory.registerPressureCallback(PressureLevel.High, () => calls++);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(calls, 1, "a registered one is told");
  memory.unregisterPressureCallback(kept);
  monitor.stop();
});
