// allocateAsync's outcomes, case by case (as its JSDoc states them): with
// timeoutMs 0 it answers as allocate(request) would, at once, whatever the
// pressure level; with a timeout, what waiting can cure ends in "timeout"
// (the cause says why), what it cannot fails at once with allocate's error.
// Each message says what to do.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { AllocationError, MemoryInterface, type MemoryStatus, PressureLevel, PressureMonitor } from "../../mod.ts";
import { HAS_PROC, runUnderMemlockLimit } from "./_locked_memory.ts";

const TOTAL = 1000;

/** A monitor over a 1000-byte machine whose readings the test sets; its timer never fires within a test. */
function monitorAt(availableBytes: number, hysteresis = 1): { monitor: PressureMonitor; set(bytes: number): void } {
  let available = availableBytes;
  const read = (): MemoryStatus => ({
    totalBytes: TOTAL,
    availableBytes: available,
    limitBytes: null,
    usedBytes: TOTAL - available,
    rssBytes: 0,
    psi: null,
    source: "linux-meminfo",
    events: null,
  });
  const monitor = new PressureMonitor({ read, hysteresis, intervalMs: 3_600_000 });
  return {
    monitor,
    set(bytes) {
      available = bytes;
      monitor.refresh();
    },
  };
}

/** The rejection of `promise` (fails when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail("it resolved");
}

const categoryOf = (error: unknown) => error instanceof AllocationError ? error.category : (error as Error).name;

test("allocateAsync with timeoutMs 0 under Critical pressure is served, as allocate is", async () => {
  const { monitor } = monitorAt(50); // 5 % available: Critical
  using memory = new MemoryInterface({ pressure: monitor });
  assert.equal(monitor.level, PressureLevel.Critical);
  const direct = memory.allocateTyped(64, "system");
  const now = await memory.allocateAsync({ size: 64 });
  const zero = await memory.allocateAsync({ size: 64, timeoutMs: 0 });
  assert.deepEqual([now.size, now.type, zero.size], [64, "system", 64]);
  assert.equal(memory.getMemoryStats("system").allocationCount, 3);
  for (const a of [direct, now, zero]) memory.deallocate(a);
});

test("allocateAsync with timeoutMs 0 under pressure and a full budget: allocate's limit-exceeded, with what to do", async () => {
  const { monitor } = monitorAt(50);
  using memory = new MemoryInterface({ budgets: { system: 1000 }, pressure: monitor });
  const held = memory.allocate(900);
  const error = await rejection(memory.allocateAsync({ size: 200 }));
  assert.equal(categoryOf(error), "limit-exceeded");
  assert.match(error.message, /budget of 1000 bytes has 100 left/);
  assert.match(error.message, /raise budgets\.system/);
  assert.match(error.message, /pass a timeoutMs/);
  assert.doesNotMatch(error.message, /pressure/, "pressure did not refuse it: the budget did");
  memory.deallocate(held);
});

test("allocate's refusal names the budget to raise and points to allocateAsync to wait", () => {
  using memory = new MemoryInterface({ budgets: { system: 1000 }, pressure: false });
  memory.allocate(900);
  const error = (() => {
    try {
      memory.allocate(200);
    } catch (e) {
      return e as Error;
    }
    assert.fail("allocate served it");
  })();
  assert.equal(categoryOf(error), "limit-exceeded");
  assert.equal(
    error.message,
    "Cannot allocate 200 bytes of system memory from the system allocator: the system budget of 1000 bytes has " +
      "100 left (raise budgets.system, or wait for memory to be freed with allocateAsync({ ..., timeoutMs }))",
  );
});

test("a full budget with a timeout ends in 'timeout', whose cause is the budget's limit-exceeded", async () => {
  using memory = new MemoryInterface({ budgets: { system: 1000 }, pressure: false });
  memory.allocate(900);
  const error = await rejection(memory.allocateAsync({ size: 200, timeoutMs: 30 }));
  assert.equal(categoryOf(error), "timeout");
  assert.equal(
    error.message,
    "Cannot allocate 200 bytes of system memory from the system allocator within 30 ms: the system budget of " +
      "1000 bytes has 100 left (raise budgets.system, or pass a longer timeoutMs)",
  );
  assert.equal(categoryOf(error.cause), "limit-exceeded");
});

test("a request larger than the whole budget fails at once with limit-exceeded, whatever the timeout", async () => {
  using memory = new MemoryInterface({ budgets: { pool: 1000 }, pressure: false });
  const started = performance.now();
  const error = await rejection(memory.allocateAsync({ size: 2000, type: "pool", timeoutMs: 60_000 }));
  assert.ok(performance.now() - started < 10_000, "it did not wait for the timeout");
  assert.equal(categoryOf(error), "limit-exceeded");
  assert.match(error.message, /the pool budget of 1000 bytes can never hold 2000/);
  assert.match(error.message, /raise budgets\.pool/);
  assert.match(error.message, /allowFallback: true/);
  assert.doesNotMatch(error.message, /timeoutMs/, "waiting cannot help, so it is not advised");
});

test("a full pool budget suggests allowFallback, and allowFallback serves it from the system type", async () => {
  using memory = new MemoryInterface({ budgets: { pool: 64 }, pressure: false });
  const held = memory.allocateTyped(64, "pool");
  const error = await rejection(memory.allocateAsync({ size: 64, type: "pool" }));
  assert.equal(categoryOf(error), "limit-exceeded");
  assert.match(
    error.message,
    /raise budgets\.pool, or pass allowFallback: true to try other allocators, or pass a timeoutMs/,
  );
  const fallback = await memory.allocateAsync({ size: 64, type: "pool", allowFallback: true });
  assert.equal(fallback.type, "system");
  memory.deallocate(fallback);
  memory.deallocate(held);
});

test("refusals by several candidates name each allocator once, without repeating the type asked for", () => {
  using memory = new MemoryInterface({ budgets: { pool: 64, system: 32 }, pressure: false });
  const held = memory.allocateTyped(64, "pool");
  assert.throws(() => memory.allocate({ size: 64, type: "pool", allowFallback: true }), (error: Error) => {
    assert.equal(categoryOf(error), "limit-exceeded");
    assert.equal(
      error.message,
      "Cannot allocate 64 bytes of pool memory: the pool allocator: the pool budget of 64 bytes has 0 left; " +
        "as system memory from the system allocator: the system budget of 32 bytes can never hold 64 " +
        "(raise budgets.pool or budgets.system, or wait for memory to be freed with allocateAsync({ ..., timeoutMs }))",
    );
    return true;
  });
  memory.deallocate(held);
});

test("pressure that holds a waiting request back ends in 'timeout' saying the level lags the reading", async () => {
  // Critical, then one reading with 90 % available: with hysteresis 3 the level is still Critical.
  const { monitor, set } = monitorAt(20, 3);
  using memory = new MemoryInterface({ pressure: monitor });
  set(900);
  assert.equal(monitor.level, PressureLevel.Critical);
  const error = await rejection(memory.allocateAsync({ size: 64, timeoutMs: 30 }));
  assert.equal(categoryOf(error), "timeout");
  assert.match(error.message, /^Cannot allocate 64 bytes of system memory within 30 ms: /);
  assert.match(error.message, /pressure level stayed at High or above for the whole wait \(Critical at its end/);
  assert.match(error.message, /last reading had 900 of 1000 bytes available/);
  assert.match(error.message, /falls one step per `hysteresis` lower readings/);
  assert.match(error.message, /pass a longer timeoutMs, or call allocate\(\)/);
  assert.equal(categoryOf(error.cause), "out-of-memory");
  assert.equal(memory.getMemoryStats().allocationCount, 0, "nothing was allocated");
});

// Adversarial finding (hal3, 3): the kernel's refusal to lock pages (RLIMIT_MEMLOCK) came out as the inner
// LockedPageAllocator's message, and allocateAsync rejected it at once whatever the timeout, while system
// memory's ENOMEM waits. Pages this process gives back make room under the limit, so now a block that fits
// under the limit waits (woken by deallocations) and ends in "timeout" with the refusal as cause; a block
// larger than the whole limit fails at once: no wait helps it.
test(
  "a refusal to lock pages (RLIMIT_MEMLOCK): said in the interface's words; allocateAsync waits when the block fits the limit",
  {
    skip: !HAS_PROC,
  },
  () => {
    const result = runUnderMemlockLimit(fileURLToPath(new URL("./_memlock_wait_child.ts", import.meta.url)), 64);
    if ("skip" in result) return void console.log(`skipped: ${result.skip}`);
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    assert.equal(report.sync.category, "platform");
    assert.match(
      report.sync.message,
      /^Cannot allocate 32768 bytes of audio memory from the system allocator: the kernel refused to lock 32768 bytes in RAM: mlock failed with ENOMEM/,
    );
    assert.match(report.sync.message, /RLIMIT_MEMLOCK here is 64 KiB/);
    assert.match(report.sync.message, /\(wait for memory to be freed with allocateAsync\(\{ \.\.\., timeoutMs \}\)\)$/);
    assert.doesNotMatch(report.sync.message, /LockedPageAllocator/);
    assert.equal(report.sync.causeCategory, "platform", "the allocator's error is the cause");
    assert.equal(report.unchanged, true, "the refused call changed no stats");
    assert.equal(report.short.category, "timeout");
    assert.ok(report.short.ms >= 25, `it waited: ${report.short.ms} ms`);
    assert.equal(report.short.causeCategory, "platform");
    assert.match(
      report.short.message,
      /^Cannot allocate 32768 bytes of audio memory from the system allocator within 30 ms: /,
    );
    assert.equal(report.beyond.category, "platform", "more than the whole limit: no wait helps");
    assert.ok(report.beyond.ms < 2500, `at once: ${report.beyond.ms} ms`);
    assert.doesNotMatch(report.beyond.message, /wait for memory/);
    assert.equal(report.served, true, "served once the held pages were given back");
  },
);
