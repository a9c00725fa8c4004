// allocateAsync with a timeoutMs beyond setTimeout's 2^31-1 ms (issue 15 adversarial finding 2): the
// runtimes turn such a delay into 1 ms, so the wait used to time out at once. Long waits are a chain of
// timers towards one deadline (src/hal/_long_timer.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryInterface } from "../../mod.ts";
import { MAX_TIMER_MS, setLongTimeout } from "../../src/hal/_long_timer.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const timeoutMs of [MAX_TIMER_MS, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE]) {
  test(`allocateAsync({ timeoutMs: ${timeoutMs} }) keeps waiting, and a deallocation serves it`, async () => {
    using memory = new MemoryInterface({ pressure: false, budgets: { system: 1024 } });
    const held = memory.allocate(1024);
    let outcome = "waiting";
    const waiting = memory.allocateAsync({ size: 16, timeoutMs }).then(
      (a) => (outcome = "served", a),
      (e) => (outcome = `rejected: ${e?.category}`, null),
    );
    await sleep(100);
    assert.equal(outcome, "waiting", "not timed out after 100 ms");
    memory.deallocate(held);
    const served = await waiting;
    assert.equal(outcome, "served");
    memory.deallocate(served!);
  });
}

test("setLongTimeout: a delay longer than one timer fires once, at the deadline, through a chain", async () => {
  const started = performance.now();
  let fired = 0;
  let at = 0;
  setLongTimeout(() => (fired++, at = performance.now() - started), 120, 25); // 25 ms steps: 5 timers
  await sleep(60);
  assert.equal(fired, 0, "not before the deadline");
  await sleep(400);
  assert.equal(fired, 1);
  assert.ok(at >= 119, `fired after ${at} ms`);
});

test("setLongTimeout: cancel() stops a chain between steps, and after firing does nothing", async () => {
  let fired = 0;
  const timer = setLongTimeout(() => fired++, 80, 20);
  await sleep(50);
  timer.cancel();
  await sleep(150);
  assert.equal(fired, 0);
  const done = setLongTimeout(() => fired++, 0);
  await sleep(30);
  done.cancel();
  assert.equal(fired, 1);
});
