// A child for test/hal/allocate_async_test.ts: N allocateAsync waiters on a full pool budget, each with
// timeoutMs 300, all time out; then waiters left in the middle of a long line are served in the order they
// came. Each timeout wakes the line: when a retry or a removal cost time in proportion to the line (or more),
// N timeouts settled long after their 300 ms. Prints one JSON line.
import { AllocationError, MemoryInterface } from "../../mod.ts";

const N = Number(process.argv.at(-1));
const memory = new MemoryInterface({ budgets: { pool: 64 }, pressure: false });
const first = memory.allocateTyped(64, "pool");
const started = performance.now();
let timedOut = 0;
let lastMs = 0;
const waits: Promise<void>[] = [];
for (let i = 0; i < N; i++) {
  waits.push(
    memory.allocateAsync({ size: 64, type: "pool", timeoutMs: 300 }).then(
      () => {},
      (e) => {
        if (e instanceof AllocationError && e.category === "timeout") timedOut++;
        lastMs = performance.now() - started;
      },
    ),
  );
}
await Promise.all(waits);

// Order: a long line where every other waiter times out early; the rest are served in the order they came.
const served: number[] = [];
const line: Promise<unknown>[] = [];
for (let i = 0; i < 200; i++) {
  const timeoutMs = i % 2 === 0 ? 10 : 10_000;
  line.push(
    memory.allocateAsync({ size: 64, type: "pool", timeoutMs }).then((a) => {
      served.push(i);
      memory.deallocate(a); // the next in line is served next
    }, () => {}),
  );
}
await new Promise((resolve) => setTimeout(resolve, 100)); // the even ones timed out
memory.deallocate(first);
await Promise.all(line);
const inOrder = served.length === 100 && served.every((v, k) => v === 2 * k + 1);
memory.dispose();
console.log(JSON.stringify({ timedOut, withinFiveSeconds: lastMs < 5000, lastMs: Math.round(lastMs), inOrder }));
