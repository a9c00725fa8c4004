// SharedDynamicArray.hold(): one thread keeps the writers' lock across many
// writes (each append publishes its length with one atomic add instead of a
// take and a free). What must hold: every write under a hold is visible as it
// returns; other writers wait (up to their timeout) and go on once it is
// released; holds nest; a hold released twice, released from a getter mid-write,
// or dropped without release never leaves the lock taken for good; a value that
// fails its checks under a hold changes nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, SharedDynamicArray, struct } from "../../mod.ts";
import { requestGC } from "../../ffi/native.ts";

const Sample = struct({ time: "f64", value: "f32" });
type SampleRecord = { time: number; value: number };

const STATE = 1; // the header word with the length times 4 and the lock bits
const lockBits = (array: SharedDynamicArray<unknown>) => Atomics.load(new Int32Array(array.buffer, 0, 4), STATE) & 3;
const timedOut = (e: unknown) => e instanceof AllocationError && e.category === "timeout";

test("hold(): writes under it are visible as each returns; another writer times out until release, then writes", () => {
  const values = new SharedDynamicArray<number>("f64", { maxCapacity: 1000, capacity: 1 });
  const other = SharedDynamicArray.attach<number>(values.buffer, "f64", { timeoutMs: 30 });
  const held = values.hold();
  assert.equal(held.released, false);
  assert.equal(lockBits(values), 1, "the lock is taken while held");
  for (let i = 0; i < 100; i++) {
    assert.equal(values.push(i), i + 1);
    assert.equal(other.length, i + 1, "each push is published as it returns (the buffer grew under the hold too)");
  }
  assert.equal(values.pushMany([100, 101]), 102);
  values.set(0, -1);
  assert.equal(values.pop(), 101);
  assert.equal(other.get(0), -1, "a reader sees the set (the sequence word is even again)");
  assert.equal(other.length, 101);
  assert.throws(() => other.push(1), timedOut);
  assert.throws(() => other.set(0, 1), timedOut);
  assert.throws(() => other.clear(), timedOut);
  assert.equal(other.toArray().length, 101, "readers never wait for a hold");
  held.release();
  assert.equal(held.released, true);
  assert.equal(lockBits(values), 0, "released");
  held.release(); // a second release does nothing
  assert.equal(other.push(7), 102);
  assert.equal(values.get(101), 7);
  values.clear();
  {
    using _writing = values.hold();
    values.push(1);
    assert.equal(lockBits(values), 1);
  }
  assert.equal(lockBits(values), 0, "using frees it at the end of the block");
  assert.deepEqual(other.toArray(), [1]);
});

test("hold(): holds nest (the last release frees the lock); a hold on another array object over the same buffer waits", () => {
  const values = new SharedDynamicArray<number>("u16", { maxCapacity: 64, timeoutMs: 20 });
  const other = SharedDynamicArray.attach<number>(values.buffer, "u16", { timeoutMs: 20 });
  const outer = values.hold();
  const inner = values.hold();
  values.push(1);
  outer.release(); // order does not matter: holds are counted
  assert.equal(lockBits(values), 1, "one hold still open");
  assert.throws(() => other.hold(), timedOut);
  assert.throws(() => other.push(2), timedOut);
  inner.release();
  assert.equal(lockBits(values), 0);
  const theirs = other.hold();
  assert.throws(() => values.push(3), timedOut, "now this one waits");
  theirs.release();
  assert.equal(values.push(3), 2);
  assert.deepEqual(values.toArray(), [1, 3]);
});

test("hold(): a Worker's push waits for the main thread's hold and lands once it is released", async () => {
  const samples = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 10_000 });
  const worker = new Worker(new URL("../fixtures/shared_attach_worker.ts", import.meta.url), { type: "module" });
  try {
    const answer = new Promise<string>((resolve, reject) => {
      worker.onmessage = (event) => {
        if (event.data === "ready") worker.postMessage({ buffer: samples.buffer, count: 500 });
        else resolve(event.data);
      };
      worker.onerror = (event) => reject(event);
    });
    const held = samples.hold();
    samples.push({ time: -1, value: -1 });
    // The Worker attaches and blocks on its first push (default timeout 5 s) while the hold lasts.
    await new Promise((wake) => setTimeout(wake, 150));
    assert.equal(samples.length, 1, "nothing of the Worker's landed while held");
    held.release();
    assert.equal(await answer, "ok");
    assert.equal(samples.length, 501);
    assert.deepEqual(samples.get(0), { time: -1, value: -1 });
    assert.deepEqual(samples.get(500), { time: 499, value: 499 });
  } finally {
    worker.terminate();
  }
});

test("hold(): pushes under a hold while a Worker sleeps on the lock (lock bits 2) publish each length, keep the bits and grow the buffer; the release lets it in", async () => {
  const samples = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 10_000, capacity: 2 });
  const header = new Int32Array(samples.buffer, 0, 4);
  const worker = new Worker(new URL("../fixtures/shared_attach_worker.ts", import.meta.url), { type: "module" });
  try {
    const answer = new Promise<string>((resolve, reject) => {
      worker.onmessage = (event) => {
        if (event.data === "ready") worker.postMessage({ buffer: samples.buffer, count: 100 });
        else resolve(event.data);
      };
      worker.onerror = (event) => reject(event);
    });
    const held = samples.hold();
    samples.push({ time: -1, value: -1 });
    // The Worker's first push spins, then announces itself (lock bits 2) and sleeps.
    for (const started = Date.now(); lockBits(samples) !== 2;) {
      assert.ok(Date.now() - started < 4_000, "the Worker announced itself as a sleeper");
      await new Promise((wake) => setTimeout(wake, 5));
    }
    for (let i = 1; i <= 40; i++) {
      assert.equal(samples.push({ time: -1 - i, value: -1 - i }), i + 1);
      assert.equal(Atomics.load(header, STATE), (i + 1) * 4 + 2, "the length published, the sleeper's bits kept");
    }
    assert.ok(samples.capacity >= 41, "the buffer grew under the hold");
    held.release();
    assert.equal(await answer, "ok");
    assert.equal(samples.length, 141);
    assert.deepEqual(samples.get(40), { time: -41, value: -41 });
    assert.deepEqual(samples.get(140), { time: 99, value: 99 });
    assert.equal(lockBits(samples), 0);
  } finally {
    worker.terminate();
  }
});

test("hold(): a value that fails its checks under a hold changes nothing and keeps the hold", () => {
  const samples = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 8 });
  using _writing = samples.hold();
  samples.push({ time: 1, value: 1 });
  assert.throws(() => samples.push({ time: 2 } as SampleRecord), TypeError);
  assert.throws(() => samples.pushMany([{ time: 3, value: 3 }, { time: "4" as never, value: 4 }]), TypeError);
  assert.throws(() => samples.set(5, { time: 5, value: 5 }), RangeError);
  const throwing = {
    time: 6,
    get value(): number {
      throw new Error("getter");
    },
  };
  assert.throws(() => samples.push(throwing), /getter/);
  assert.throws(() => samples.pushMany(Array.from({ length: 9 }, (_, i) => ({ time: i, value: i }))), RangeError);
  assert.equal(samples.length, 1);
  assert.deepEqual(samples.toArray(), [{ time: 1, value: 1 }]);
  assert.equal(lockBits(samples), 1, "still held");
  assert.equal(Atomics.load(new Int32Array(samples.buffer, 0, 4), 0) & 1, 0, "the sequence word is even");
  assert.equal(samples.push({ time: 2, value: 2 }), 2);
});

test("hold(): a getter that releases the hold, or takes one, in the middle of a write leaves the lock consistent", () => {
  const samples = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 16 });
  const other = SharedDynamicArray.attach<SampleRecord>(samples.buffer, Sample, { timeoutMs: 20 });
  let held = samples.hold();
  const releases = {
    time: 1,
    get value() {
      held.release(); // values are read before the write takes the lock: this write takes it itself
      return 1;
    },
  };
  assert.equal(samples.push(releases), 1);
  assert.equal(lockBits(samples), 0, "the write freed the lock it took");
  assert.equal(other.push({ time: 2, value: 2 }), 2);
  let taken: { release(): void } | null = null;
  const takes = {
    time: 3,
    get value() {
      taken = samples.hold();
      return 3;
    },
  };
  assert.equal(samples.pushMany([takes, { time: 4, value: 4 }]), 4);
  assert.equal(lockBits(samples), 1, "the hold the getter took stays");
  assert.throws(() => other.push({ time: 5, value: 5 }), timedOut);
  taken!.release();
  held = samples.hold();
  held[Symbol.dispose]();
  assert.equal(other.push({ time: 5, value: 5 }), 5);
  assert.deepEqual(other.toArray().map((r) => r.time), [1, 2, 3, 4, 5]);
});

test("hold(): a hold dropped without release frees the lock once it is collected", async () => {
  const values = new SharedDynamicArray<number>("i32", { maxCapacity: 16 });
  const other = SharedDynamicArray.attach<number>(values.buffer, "i32", { timeoutMs: 10 });
  (() => {
    values.hold();
    values.push(1);
  })();
  assert.throws(() => other.push(2), timedOut);
  for (let round = 0; round < 50 && lockBits(values) !== 0; round++) {
    requestGC();
    await new Promise((wake) => setTimeout(wake, 10));
  }
  assert.equal(lockBits(values), 0, "the collected hold gave the lock back");
  assert.equal(other.push(2), 2);
});

test("hold(): a header written outside memkit is corruption, not a hold", () => {
  const values = new SharedDynamicArray<number>("i32", { maxCapacity: 16, timeoutMs: 20 });
  const header = new Int32Array(values.buffer, 0, 4);
  Atomics.or(header, STATE, 3); // lock bits 3: no writer writes them
  assert.throws(() => values.hold(), (e: unknown) => e instanceof AllocationError && e.category === "corruption");
  Atomics.and(header, STATE, ~3);
  Atomics.store(header, STATE, -4); // a negative length
  assert.throws(() => values.hold(), (e: unknown) => e instanceof AllocationError && e.category === "corruption");
  Atomics.store(header, STATE, 0);
  assert.equal(lockBits(values), 0, "a refused hold leaves the lock free");
  const held = values.hold();
  held.release();
  assert.equal(values.push(1), 1);
});
