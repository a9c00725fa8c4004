// SharedDynamicArray.push through its generated Appender (35f8cce) against what a program can do
// to it: a getter on Atomics.add (read by push under a hold) that pushes again or releases the
// hold, and a push that runs out of stack between taking the writers' lock and recording it.
// Each failed on the code before the fix that came with it; the stack case runs in a child
// process (a lock left taken for good would make every later write time out).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SharedDynamicArray, struct } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

const STATE = 1; // the header word of the length and the lock bits (src/arrays/_shared_buffer.ts)
const Point = struct({ id: "u32", x: "f32", y: "f32" });
const TYPES: [string, ConstructorParameters<typeof SharedDynamicArray>[0], (i: number) => unknown][] = [
  ["f64", "f64", (i) => i + 0.5],
  ["i64", "i64", (i) => BigInt(i) - 5n],
  ["f32x3", "f32x3", (i) => [i, -i, 0]],
  ["record", Point, (i) => ({ id: i, x: i / 2, y: -i })],
];
const engineAdd = Atomics.add;

// Puts a getter on Atomics.add for the length of `body`; `once` runs the first time it is read.
function withAddGetter(once: () => void, body: () => void): void {
  let armed = true;
  Object.defineProperty(Atomics, "add", {
    configurable: true,
    get() {
      if (armed) {
        armed = false;
        once();
      }
      return engineAdd;
    },
  });
  try {
    body();
  } finally {
    Object.defineProperty(Atomics, "add", { configurable: true, writable: true, enumerable: false, value: engineAdd });
  }
}

for (const [name, type, make] of TYPES) {
  test(`${name}: a getter on Atomics.add that pushes to the same array in the middle of a push under a hold runs before the slot is claimed: both elements land, each push returns its own length`, () => {
    const values = new SharedDynamicArray<unknown>(type, { maxCapacity: 64, timeoutMs: 50 });
    values.push(make(0));
    const held = values.hold();
    let inner = 0;
    let outer = 0;
    withAddGetter(() => (inner = values.push(make(99))), () => (outer = values.push(make(1))));
    held.release();
    assert.equal(inner, 2);
    assert.equal(outer, 3);
    assert.deepEqual(values.toArray(), [make(0), make(99), make(1)]);
    assert.equal(Atomics.load(new Int32Array(values.buffer, 0, 4), STATE), 3 * 4, "published, and the lock is free");
  });

  test(`${name}: a getter on Atomics.add that releases the hold in the middle of a push, letting another writer in, runs before the slot is claimed: no element is lost or counted unwritten`, () => {
    const values = new SharedDynamicArray<unknown>(type, { maxCapacity: 64, timeoutMs: 50 });
    const other = SharedDynamicArray.attach<unknown>(values.buffer, type, { timeoutMs: 50 }); // another writer
    const held = values.hold();
    values.push(make(0));
    withAddGetter(() => {
      held.release();
      assert.equal(other.push(make(50)), 2);
    }, () => assert.equal(values.push(make(1)), 3));
    assert.deepEqual(values.toArray(), [make(0), make(50), make(1)]);
    assert.equal(Atomics.load(new Int32Array(values.buffer, 0, 4), STATE), 3 * 4, "published, and the lock is free");
    assert.equal(values.push(make(2)), 4);
  });
}

for (const element of ["f64", "u64", "f32x3", "record"]) {
  for (const mode of ["plain", "hold"]) {
    for (const warmth of ["cold", "warm"]) {
      test(`${element}, ${mode}, ${warmth}: a push that runs out of stack at any depth never leaves the writers' lock taken (child process)`, () => {
        const result = runChild(fixture("shared_push_stack_end.ts"), {}, [element, mode, warmth], 60_000);
        assert.equal(result.signal, null, `killed: it hung. ${result.stderr}`);
        assert.equal(result.status, 0, result.stderr);
        const line = result.stdout.split("\n").filter((l) => l.startsWith("{")).at(-1)!;
        const { landed, locked, length, lockBits, next } = JSON.parse(line);
        assert.equal(locked, 0, "no push met a lock left taken (timeout) or a header out of step (corruption)");
        assert.ok(landed > 0, "pushes landed on the way up");
        assert.equal(lockBits, 0, "the lock is free");
        assert.equal(length, landed, "the length counts exactly the pushes that returned");
        assert.equal(next, landed + 1, "the next push lands");
      });
    }
  }
}
