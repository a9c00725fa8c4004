// A PressureMonitor passed as `pressure` is started by the interface when it
// is not running (else its level would stay at its first reading: no
// callback, no deferral) and stopped when the last interface that started it
// is disposed; a monitor the caller started is left running.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryInterface, type MemoryStatus, PressureLevel, PressureMonitor } from "../../mod.ts";

/** A monitor over a 1000-byte machine sampling every 10 ms, with the bytes available set by the test. */
function monitorOver(): { monitor: PressureMonitor; reads: () => number; set(bytes: number): void } {
  let available = 900, reads = 0;
  const read = (): MemoryStatus => {
    reads++;
    return {
      totalBytes: 1000,
      availableBytes: available,
      limitBytes: null,
      usedBytes: 1000 - available,
      rssBytes: 0,
      psi: null,
      source: "linux-meminfo",
      events: null,
    };
  };
  const monitor = new PressureMonitor({ read, intervalMs: 10, hysteresis: 1 });
  return { monitor, reads: () => reads, set: (bytes) => (available = bytes) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits up to 5 s for `done()`. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await sleep(10);
}

test("a monitor passed in and not running is started: it samples, and callbacks hear a rise", async () => {
  const { monitor, reads, set } = monitorOver();
  assert.equal(monitor.running, false);
  const memory = new MemoryInterface({ pressure: monitor });
  assert.equal(monitor.running, true, "the interface started it");
  const heard: number[] = [];
  memory.registerPressureCallback(PressureLevel.High, (level) => heard.push(level));
  set(20); // 2 %: Critical, seen only by a monitor that samples
  await until(() => heard.length > 0);
  assert.deepEqual(heard, [PressureLevel.Critical]);
  assert.ok(reads() > 1, "read on the monitor's timer, not only at its creation");
  memory.dispose();
  assert.equal(monitor.running, false, "stopped by the interface that started it");
  const after = reads();
  await sleep(50);
  assert.equal(reads(), after, "no more readings");
});

test("a monitor the caller started stays running after dispose", () => {
  const { monitor } = monitorOver();
  monitor.start();
  const memory = new MemoryInterface({ pressure: monitor });
  memory.dispose();
  assert.equal(monitor.running, true, "the caller started it; the caller stops it");
  monitor.stop();
});

test("two interfaces sharing a monitor they started: it stops with the last one", () => {
  const { monitor } = monitorOver();
  const first = new MemoryInterface({ pressure: monitor });
  const second = new MemoryInterface({ pressure: monitor });
  first.dispose();
  assert.equal(monitor.running, true, "the second interface still uses it");
  second.dispose();
  assert.equal(monitor.running, false);
});

test("a started monitor holds allocateAsync back once a reading reaches High", async () => {
  const { monitor, set } = monitorOver();
  using memory = new MemoryInterface({ pressure: monitor });
  set(50); // 5 %: Critical at the next sample
  await until(() => monitor.level === PressureLevel.Critical);
  assert.equal(monitor.level, PressureLevel.Critical, "the level followed the readings without refresh()");
  let settled = false;
  const waiting = memory.allocateAsync({ size: 64, timeoutMs: 5_000 }).finally(() => (settled = true));
  await sleep(40);
  assert.equal(settled, false, "deferred while Critical");
  set(900);
  const block = await waiting;
  assert.equal(block.size, 64);
});
