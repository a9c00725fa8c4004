// allocateAsync: waits up to timeoutMs for headroom under the type's budget
// (woken by deallocate and endFrame), holds requests back while pressure is
// High or Critical (woken when the level falls), and fails with
// AllocationError("timeout"). The monitor here reads a status the test sets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, MemoryInterface, type MemoryStatus, PressureLevel, PressureMonitor } from "../../mod.ts";

const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
const GiB = 2 ** 30;

/** A monitor whose readings say `available` of 8 GiB is free (the default thresholds: 10 % is High). */
function fakeMonitor(): { monitor: PressureMonitor; set(availableFraction: number): void } {
  let available = 0.9;
  const read = (): MemoryStatus => ({
    totalBytes: 8 * GiB,
    // Whole bytes, as a reading's byte counts must be.
    availableBytes: Math.round(available * 8 * GiB),
    limitBytes: null,
    usedBytes: 8 * GiB - Math.round(available * 8 * GiB),
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  });
  const monitor = new PressureMonitor({ read, hysteresis: 1, intervalMs: 10 });
  return {
    monitor,
    set(fraction) {
      available = fraction;
      monitor.refresh();
    },
  };
}

test("allocateAsync: a request over the budget waits, and a deallocation wakes it", async () => {
  using memory = new MemoryInterface({ budgets: { pool: 4096 }, pressure: false });
  const held = memory.allocateTyped(4096, "pool");
  let settled = false;
  const waiting = memory.allocateAsync({ size: 1024, type: "pool", timeoutMs: 5_000 }).finally(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(settled, false, "no headroom: it waits");
  const started = performance.now();
  memory.deallocate(held);
  const block = await waiting;
  assert.ok(performance.now() - started < 1_000, "woken by the deallocation, long before the timeout");
  assert.deepEqual([block.size, block.type], [1024, "pool"]);
  assert.equal(memory.getMemoryStats("pool").usedBytes, 1024);
  memory.deallocate(block);
});

test("allocateAsync: endFrame() wakes a request waiting for temporary memory", async () => {
  using memory = new MemoryInterface({ budgets: { temporary: 64 << 10 }, pressure: false });
  memory.allocateTyped(60 << 10, "temporary");
  const waiting = memory.allocateAsync({ size: 16 << 10, type: "temporary", timeoutMs: 5_000 });
  await new Promise((resolve) => setTimeout(resolve, 20));
  memory.endFrame();
  const block = await waiting;
  assert.equal(block.size, 16 << 10);
});

test("allocateAsync: the timeout fails with AllocationError('timeout') naming why, and changes nothing", async () => {
  using memory = new MemoryInterface({ budgets: { system: 1000 }, pressure: false });
  const held = memory.allocate(900);
  const started = performance.now();
  await assert.rejects(memory.allocateAsync({ size: 200, timeoutMs: 50 }), (error: unknown) => {
    assert.ok(isCategory("timeout")(error));
    assert.match((error as Error).message, /within 50 ms/);
    assert.match((error as Error).message, /budget of 1000 bytes has 100 left/);
    assert.ok(isCategory("limit-exceeded")((error as Error).cause));
    return true;
  });
  assert.ok(performance.now() - started >= 45, "it waited for the timeout");
  assert.equal(memory.getMemoryStats("system").usedBytes, 900);
  assert.equal(memory.getMemoryStats("system").allocationCount, 1);
  memory.deallocate(held);
});

test("allocateAsync: timeoutMs 0 (the default) fails at once with the reason itself", async () => {
  using memory = new MemoryInterface({ budgets: { system: 1000 }, pressure: false });
  memory.allocate(900);
  await assert.rejects(memory.allocateAsync({ size: 200 }), isCategory("limit-exceeded"));
  await assert.rejects(memory.allocateAsync({ size: 200, timeoutMs: 0 }), isCategory("limit-exceeded"));
});

test("allocateAsync: a request that can never fit fails at once, whatever the timeout", async () => {
  using memory = new MemoryInterface({ budgets: { pool: 1000 }, pressure: false });
  await assert.rejects(
    memory.allocateAsync({ size: 2000, type: "pool", timeoutMs: 60_000 }),
    isCategory("limit-exceeded"),
  );
  await assert.rejects(memory.allocateAsync({ size: 5000, type: "pool", timeoutMs: 60_000 }), RangeError);
});

test("allocateAsync: held back while pressure is High, woken when it falls", async () => {
  const { monitor, set } = fakeMonitor();
  using memory = new MemoryInterface({ pressure: monitor });
  set(0.08); // 8 % available: High
  assert.equal(monitor.level, PressureLevel.High);
  assert.ok(memory.allocate(64), "allocate itself never waits, and pressure does not refuse it");
  let settled = false;
  const waiting = memory.allocateAsync({ size: 64, timeoutMs: 5_000 }).finally(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(settled, false, "a waiting allocation is deferred at High");
  set(0.6); // None
  const block = await waiting;
  assert.equal(block.size, 64);
});

test("allocateAsync: pressure that stays High ends in a timeout that says so", async () => {
  const { monitor, set } = fakeMonitor();
  using memory = new MemoryInterface({ pressure: monitor });
  set(0.02); // Critical
  await assert.rejects(memory.allocateAsync({ size: 64, timeoutMs: 40 }), (error: unknown) => {
    assert.ok(isCategory("timeout")(error));
    assert.match(
      (error as Error).message,
      /pressure level stayed at High or above for the whole wait \(Critical at its end/,
    );
    return true;
  });
});

test("allocateAsync: waiters are served in order, and dispose rejects the rest", async () => {
  const memory = new MemoryInterface({ budgets: { pool: 256 }, pressure: false });
  const held = memory.allocateTyped(256, "pool");
  const order: number[] = [];
  const first = memory.allocateAsync({ size: 200, type: "pool", timeoutMs: 5_000 }).then((a) => (order.push(1), a));
  const second = memory.allocateAsync({ size: 200, type: "pool", timeoutMs: 5_000 }).then((a) => (order.push(2), a));
  memory.deallocate(held);
  const a = await first;
  assert.deepEqual(order, [1], "the first waiter got the room; the second still waits");
  memory.deallocate(a);
  await second;
  assert.deepEqual(order, [1, 2]);
  const third = memory.allocateAsync({ size: 200, type: "pool", timeoutMs: 5_000 });
  memory.dispose();
  await assert.rejects(third, isCategory("use-after-free"));
  await assert.rejects(memory.allocateAsync({ size: 1 }), isCategory("use-after-free"));
});

test("allocate never waits: a timeoutMs above 0 is a TypeError pointing to allocateAsync", () => {
  using memory = new MemoryInterface({ pressure: false });
  assert.throws(() => memory.allocate({ size: 64, timeoutMs: 1000 }), /allocateAsync/);
});
