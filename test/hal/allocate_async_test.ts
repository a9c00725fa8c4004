// allocateAsync: waits up to timeoutMs for headroom under the type's budget
// (woken by deallocate and endFrame), holds requests back while pressure is
// High or Critical (woken when the level falls), and fails with
// AllocationError("timeout"). The monitor here reads a status the test sets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  AllocationError,
  type MemoryAllocation,
  MemoryInterface,
  type MemoryStatus,
  nativeInfo,
  PressureLevel,
  PressureMonitor,
} from "../../mod.ts";
import { runChild } from "../_helpers.ts";

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

// Waiters that compete for the same budget are served in the order they came (the fair-semaphore rule): one
// that cannot be served yet holds back the later ones, so small requests never starve a large one.
const later = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`'s allocation named `name` in `log` when it settles ("name" served, "name: category" refused). */
function logged<T extends { size: number }>(promise: Promise<T>, name: string, log: string[]): Promise<T | null> {
  return promise.then((a) => {
    log.push(name);
    return a;
  }, (e) => {
    log.push(`${name}: ${(e as AllocationError).category}`);
    return null;
  });
}

test("allocateAsync: a later small request does not overtake an earlier large one of the same budget", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { system: 1 << 20 } });
  const filler = [memory.allocate(512 << 10), memory.allocate(256 << 10), memory.allocate(256 << 10)];
  const log: string[] = [];
  const big = logged(memory.allocateAsync({ size: 512 << 10, timeoutMs: 5_000 }), "big", log);
  const small = logged(memory.allocateAsync({ size: 16 << 10, timeoutMs: 5_000 }), "small", log);
  memory.deallocate(filler[1]); // room for small only: it waits behind big
  await later();
  assert.deepEqual(log, []);
  // A new request with room for it queues behind them too, rather than overtaking.
  const newcomer = logged(memory.allocateAsync({ size: 16 << 10, timeoutMs: 5_000 }), "newcomer", log);
  await later();
  assert.deepEqual(log, []);
  memory.deallocate(filler[2]); // 512 KiB free: big first
  const served = await big;
  assert.deepEqual(log, ["big"], "big is served; small has no room left");
  memory.deallocate(served!);
  const rest = await Promise.all([small, newcomer]);
  assert.deepEqual(log, ["big", "small", "newcomer"]);
  for (const a of rest) memory.deallocate(a!);
  memory.deallocate(filler[0]);
  // allocate() never waits and takes the room it finds, waiters or not (documented).
  assert.equal(memory.getMemoryStats("system").usedBytes, 0);
});

test("allocateAsync: a stream of small requests cannot starve a large one", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { pool: 8192 } });
  const held = Array.from({ length: 8 }, () => memory.allocateTyped(1024, "pool"));
  const log: string[] = [];
  const big = logged(memory.allocateAsync({ size: 4096, type: "pool", timeoutMs: 5_000 }), "big", log);
  const smalls: Promise<unknown>[] = [];
  // Each release makes room for one small request; before, each was served at once and big never saw 4 KiB.
  for (let i = 0; i < 4; i++) {
    smalls.push(
      logged(memory.allocateAsync({ size: 1024, type: "pool", timeoutMs: 5_000 }), `small${i}`, log)
        .then((a) => a !== null && memory.deallocate(a)),
    );
    memory.deallocate(held.pop()!);
    await later(5);
  }
  memory.deallocate(await big as never);
  await Promise.all(smalls);
  assert.equal(log[0], "big");
  assert.deepEqual(log.slice(1), ["small0", "small1", "small2", "small3"]);
  for (const a of held) memory.deallocate(a);
});

test("allocateAsync: a waiter at the head that times out lets the next ones go", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { pool: 4096 } });
  const held = memory.allocateTyped(4096, "pool");
  const log: string[] = [];
  const big = logged(memory.allocateAsync({ size: 4096, type: "pool", timeoutMs: 60 }), "big", log);
  const small = logged(memory.allocateAsync({ size: 2048, type: "pool", timeoutMs: 5_000 }), "small", log);
  memory.deallocate(held);
  const half = memory.allocateTyped(2048, "pool"); // allocate() never waits: big has room for nothing now
  await big;
  const a = await small; // served once big gave up, with no further deallocation
  assert.deepEqual(log, ["big: timeout", "small"]);
  memory.deallocate(a!);
  memory.deallocate(half);
});

test("allocateAsync: a waiter at the head whose retry fails for good lets the next ones go", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { shared: 8192 } });
  const held = memory.allocateTyped(8192, "shared");
  const name = `memkit-fair-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
  const log: string[] = [];
  const first = logged(memory.allocateAsync({ size: 4096, type: "shared", name, timeoutMs: 5_000 }), "named", log);
  const second = logged(memory.allocateAsync({ size: 4096, type: "shared", timeoutMs: 5_000 }), "unnamed", log);
  // The name is taken meanwhile: the first waiter's retry fails with "platform", no wait cures that.
  const { openSharedMemory } = await import("../../mod.ts");
  const squatter = openSharedMemory(name, 4096, { create: true });
  try {
    memory.deallocate(held);
    await first;
    const a = await second;
    assert.deepEqual(log, ["named: platform", "unnamed"]);
    memory.deallocate(a!);
  } finally {
    squatter.close();
    squatter.unlink();
  }
});

test("allocateAsync: waiters of other budgets are not held back; a fallback request waits for each type it may use", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { pool: 4096, system: 4096 } });
  const pool = memory.allocateTyped(4096, "pool");
  const system = memory.allocate(4096);
  const log: string[] = [];
  const poolWaiter = logged(memory.allocateAsync({ size: 4096, type: "pool", timeoutMs: 5_000 }), "pool", log);
  const systemWaiter = logged(memory.allocateAsync({ size: 1024, timeoutMs: 5_000 }), "system", log);
  memory.deallocate(system); // another budget than the pool waiter's: served
  const s = await systemWaiter;
  assert.deepEqual(log, ["system"]);
  // A pool request that may fall back to system memory competes for both budgets.
  const fallback = logged(
    memory.allocateAsync({ size: 4096, type: "pool", allowFallback: true, timeoutMs: 5_000 }),
    "fallback",
    log,
  );
  const systemAfter = logged(memory.allocateAsync({ size: 1024, timeoutMs: 5_000 }), "systemAfter", log);
  // Room in the system budget for both, but the fallback request waits behind the pool waiter (it may come
  // from the pool), and systemAfter behind the fallback request (it may come from system memory).
  memory.deallocate(s!);
  await later();
  assert.deepEqual(log, ["system"]);
  memory.deallocate(pool); // the pool waiter first, then the fallback request (from system memory), then systemAfter
  const p = await poolWaiter;
  const f = await fallback;
  assert.equal(f!.type, "system");
  memory.deallocate(p!);
  memory.deallocate(f!); // room for systemAfter again
  const after = await systemAfter;
  assert.deepEqual(log, ["system", "pool", "fallback", "systemAfter"]);
  memory.deallocate(after!);
});

test("allocateAsync: dispose rejects every waiter, the head and those it held back", async () => {
  const memory = new MemoryInterface({ pressure: false, budgets: { pool: 4096 } });
  memory.allocateTyped(4096, "pool");
  const log: string[] = [];
  const waiters = [
    logged(memory.allocateAsync({ size: 4096, type: "pool", timeoutMs: 5_000 }), "big", log),
    logged(memory.allocateAsync({ size: 64, type: "pool", timeoutMs: 5_000 }), "small", log),
  ];
  memory.dispose();
  await Promise.all(waiters);
  assert.deepEqual(log, ["big: use-after-free", "small: use-after-free"]);
});

test("allocateAsync: a request that waited behind earlier ones its whole time says so when it times out", async () => {
  using memory = new MemoryInterface({ pressure: false, budgets: { system: 4096 } });
  const held = memory.allocate(4096);
  const head = memory.allocateAsync({ size: 4096, timeoutMs: 5_000 });
  await assert.rejects(memory.allocateAsync({ size: 16, timeoutMs: 20 }), (e: unknown) => {
    assert.ok(isCategory("timeout")(e));
    assert.match(
      (e as Error).message,
      /^Cannot allocate 16 bytes of system memory within 20 ms: earlier allocateAsync requests that may use system memory waited ahead of it/,
    );
    assert.doesNotMatch((e as Error).message, /pressure/);
    return true;
  });
  memory.deallocate(held);
  memory.deallocate(await head);
});

test("allocateAsync: thousands of waiters that time out all settle soon after their timeout, order kept (child)", () => {
  // Each timeout wakes the line: a retry or removal that cost time in proportion to the line made 8,000 waiters
  // with timeoutMs 300 settle after ~10 s. The bound is loose on purpose (a loaded machine): 5 s.
  const child = runChild(fileURLToPath(new URL("./_many_waiters_child.ts", import.meta.url)), {}, ["8000"], 120_000);
  assert.equal(child.signal, null, `the child hung or crashed: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
  assert.equal(result.timedOut, 8000);
  assert.equal(result.inOrder, true, "the waiters left were served in the order they came");
  assert.equal(result.withinFiveSeconds, true, `the last timeout settled after ${result.lastMs} ms`);
});

test("allocateAsync: a request larger than all the memory the process may use fails at once and holds nobody back", async () => {
  using memory = new MemoryInterface({ pressure: false });
  const total = memory.platform.totalBytes;
  if (!Number.isFinite(total)) return; // an unknown total (Deno without -A): nothing to compare with
  const size = Math.ceil(Math.min(2 ** 46, total * 16) / 4096) * 4096;
  // A liveness bound, not a timing: before the fix the huge request waited its whole 60 s.
  let guard: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<"stuck">((resolve) => (guard = setTimeout(() => resolve("stuck"), 20_000)));
  try {
    const huge = memory.allocateAsync({ size, type: "system", timeoutMs: 60_000 }).then(
      (a) => ({ served: a }),
      (error: unknown) => ({ error }),
    );
    const small = memory.allocateAsync({ size: 64, type: "system", timeoutMs: 60_000 });
    const first = await Promise.race([small, stuck]);
    assert.notEqual(first, "stuck", "a small request behind it was held back");
    memory.deallocate(first as MemoryAllocation);
    const outcome = await Promise.race([huge, stuck]);
    assert.notEqual(outcome, "stuck", "the huge request waited instead of failing");
    if ("served" in (outcome as object)) {
      memory.deallocate((outcome as { served: MemoryAllocation }).served); // a kernel that overcommits anything
      return;
    }
    const { error } = outcome as { error: unknown };
    assert.ok(error instanceof AllocationError, String(error));
    if (size > nativeInfo().maxViewBytes) assert.equal(error.category, "unsupported"); // Bun: one view's limit
    else {
      assert.equal(error.category, "out-of-memory");
      assert.match(error.message, /is more than the \d+ bytes this process may use/);
      assert.doesNotMatch(error.message, /longer timeoutMs/);
    }
  } finally {
    clearTimeout(guard);
  }
});
