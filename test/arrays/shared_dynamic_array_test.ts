import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, SharedDynamicArray, struct } from "../../mod.ts";
import { fixture, runChild, withoutCodegen } from "../_helpers.ts";
import { trapLayout, type TrapRecord, trapRecord, withRecordTraps } from "./_record_traps.ts";
import { Sample, sample, type SampleRecord, torn } from "../fixtures/shared_sample.ts";

test("SharedDynamicArray: push, get, set, pop, clear, pushMany and iteration, in place as it grows", () => {
  const shared = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 100, capacity: 1 });
  const buffer = shared.buffer;
  assert.equal(shared.stride, 48);
  for (let k = 0; k < 10; k++) assert.equal(shared.push(sample(k)), k + 1);
  assert.equal(shared.buffer, buffer, "grows in place");
  assert.ok(shared.capacity >= 10 && buffer.byteLength === 16 + shared.capacity * 48);
  assert.deepEqual(shared.get(3), sample(3));
  shared.set(3, sample(33));
  assert.deepEqual(shared.get(3), sample(33));
  assert.deepEqual(shared.pop(), sample(9));
  assert.equal(shared.pushMany([sample(50), sample(51)]), 11);
  assert.deepEqual([...shared].map((r) => r.a), [0, 1, 2, 33, 4, 5, 6, 7, 8, 50, 51]);
  assert.equal(shared.toArray().length, 11);
  shared.clear();
  assert.equal(shared.length, 0);
  assert.equal(shared.pop(), undefined);
  assert.deepEqual(shared.toArray(), []);
});

test("SharedDynamicArray.attach sees the same elements; bad input is refused before touching the buffer", () => {
  const numbers = new SharedDynamicArray<number>("f64", { maxCapacity: 4 });
  const twin = SharedDynamicArray.attach<number>(numbers.buffer, "f64");
  twin.push(1.5);
  numbers.push(2.5);
  assert.deepEqual(twin.toArray(), [1.5, 2.5]);
  assert.equal(twin.maxCapacity, 4);
  numbers.pushMany([3, 4]);
  assert.throws(() => numbers.push(5), RangeError, "maxCapacity");
  assert.throws(() => numbers.pushMany([5]), RangeError);
  assert.equal(numbers.length, 4);
  assert.throws(() => numbers.get(4), RangeError);
  assert.throws(() => numbers.get(-1), RangeError);
  assert.throws(() => numbers.set(1.5, 1), RangeError);
  assert.throws(() => numbers.set(0, "1" as unknown as number), TypeError);
  assert.equal(numbers.get(0), 1.5, "a refused value never reaches the buffer");
  assert.throws(() => SharedDynamicArray.attach(numbers.buffer, "f32"), TypeError);
  assert.throws(() => SharedDynamicArray.attach(new ArrayBuffer(64) as unknown as SharedArrayBuffer, "f64"), TypeError);
  assert.throws(() => SharedDynamicArray.attach(new SharedArrayBuffer(64), "f64"), TypeError);
  const Vec = struct({ v: "f32x3" });
  const vectors = new SharedDynamicArray<{ v: number[] }>(Vec, { maxCapacity: 2 });
  assert.throws(() => vectors.push({ v: [1, 2] }), RangeError);
  assert.throws(() => vectors.push({ v: 1 as unknown as number[] }), TypeError);
  assert.equal(vectors.length, 0);
});

test("SharedDynamicArray with two Workers writing and reading at once: no torn reads, nothing lost", async () => {
  const count = 20_000;
  const shared = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 2 * count, capacity: 1 });
  const url = new URL("../fixtures/shared_array_worker.ts", import.meta.url);
  const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
  const start = new SharedArrayBuffer(4);
  try {
    const results = await Promise.all(
      workers.map((worker, index) =>
        new Promise<{ reads: number; tornReads: number; shrank: number }>((resolve, reject) => {
          worker.onmessage = (event) => {
            if (event.data === "ready") {
              worker.postMessage({ buffer: shared.buffer, start, workers: workers.length, worker: index, count });
            } else resolve(event.data);
          };
          worker.onerror = (event) => reject(event);
        })
      ),
    );
    for (const { reads, tornReads, shrank } of results) {
      assert.ok(reads > count * 4, `each worker read (${reads})`);
      assert.equal(tornReads, 0, "no torn record read");
      assert.equal(shrank, 0, "the length never went back");
    }
    assert.equal(shared.length, 2 * count);
    const all = shared.toArray();
    assert.equal(all.filter(torn).length, 0);
    // Every push landed once: the keys not overwritten by set() are distinct.
    const pushed = all.map((r) => r.a).filter((k) => k < 4_000_000);
    assert.equal(new Set(pushed).size, pushed.length);
    assert.ok(pushed.length > count, "most pushes kept");
  } finally {
    for (const worker of workers) worker.terminate();
  }
});

test("SharedDynamicArray.attach while other Workers grow the array is never reported as corruption", async () => {
  // The attach reads the length after another Worker grew the buffer and published a longer length.
  const url = new URL("../fixtures/shared_attach_worker.ts", import.meta.url);
  for (let round = 0; round < 3; round++) {
    const shared = new SharedDynamicArray<{ time: number; value: number }>(struct({ time: "f64", value: "f32" }), {
      maxCapacity: 1 << 16,
    });
    const workers = [0, 1, 2, 3].map(() => new Worker(url, { type: "module" }));
    try {
      const answers = await Promise.all(
        workers.map((worker) =>
          new Promise<string>((resolve, reject) => {
            worker.onmessage = (event) => {
              if (event.data === "ready") worker.postMessage({ buffer: shared.buffer, count: 1000 });
              else resolve(event.data);
            };
            worker.onerror = (event) => reject(event);
          })
        ),
      );
      assert.deepEqual(answers, ["ok", "ok", "ok", "ok"]);
      assert.equal(shared.length, 4000);
    } finally {
      for (const worker of workers) worker.terminate();
    }
  }
});

test("SharedDynamicArray gives up with AllocationError('timeout') when a writer never finishes", () => {
  const values = new SharedDynamicArray<number>("i32", { maxCapacity: 8, timeoutMs: 50 });
  values.push(7);
  // What a Worker terminated in the middle of a write leaves behind: the lock
  // taken (the low bits of word 1, which holds the length times 4) and the
  // sequence (word 0) odd. (See the source.)
  const header = new Int32Array(values.buffer, 0, 4);
  Atomics.or(header, 1, 1);
  Atomics.add(header, 0, 1);
  const timedOut = (e: unknown) => e instanceof AllocationError && e.category === "timeout" && /50 ms/.test(e.message);
  const started = Date.now();
  assert.throws(() => values.push(8), timedOut);
  assert.throws(() => values.get(0), timedOut);
  assert.throws(() => values.toArray(), timedOut);
  assert.ok(Date.now() - started >= 100, "each waited for its timeout");
  const other = SharedDynamicArray.attach<number>(values.buffer, "i32", { timeoutMs: 20 });
  assert.throws(() => other.set(0, 1), (e: unknown) => e instanceof AllocationError && e.category === "timeout");
  // Released, everything works again.
  Atomics.add(header, 0, 1);
  Atomics.and(header, 1, ~3);
  assert.equal(values.push(8), 2);
  assert.deepEqual(other.toArray(), [7, 8]);
  assert.throws(() => new SharedDynamicArray("i32", { maxCapacity: 1, timeoutMs: -1 }), RangeError);
});

test("a writer timed out by another thread's hold() is told so, and reads (toArray) still work then", () => {
  const values = new SharedDynamicArray<number>("i32", { maxCapacity: 8, timeoutMs: 30 });
  values.pushMany([1, 2]);
  // Word 1 as a hold leaves it between writes (another thread's: this one's own would be refused at once):
  // the length times 4 with the lock bits taken, the sequence word even.
  const header = new Int32Array(values.buffer, 0, 4);
  Atomics.or(header, 1, 1);
  const other = SharedDynamicArray.attach<number>(values.buffer, "i32", { timeoutMs: 30 });
  assert.throws(
    () => other.push(3),
    (e: unknown) =>
      e instanceof AllocationError && e.category === "timeout" && /hold\(\)/.test(e.message) &&
      /toArray\(\)/.test(e.message),
  );
  assert.deepEqual(other.toArray(), [1, 2], "a hold does not keep readers waiting");
  Atomics.and(header, 1, ~3);
  assert.equal(other.push(3), 3);
});

test("maxCapacity past what the runtime reserves is a RangeError naming the bytes, not a crash", () => {
  // 2^29 - 1 f64 elements is a maxByteLength over 4 GiB: Bun refuses it, Deno reserves it.
  let made: SharedDynamicArray<number> | undefined;
  try {
    made = new SharedDynamicArray<number>("f64", { maxCapacity: 2 ** 29 - 1 });
  } catch (error) {
    assert.ok(error instanceof RangeError, String(error));
    assert.match(error.message, /4294967304 bytes/);
    // Where the runtime has a per-buffer limit, the message names it and what to do (not the engine's "Out of memory").
    assert.match(
      error.message,
      /at most \d+ bytes per ArrayBuffer \(nativeInfo\(\)\.maxViewBytes\); ask for a smaller maxCapacity/,
    );
  }
  if (made !== undefined) assert.equal(made.maxCapacity, 2 ** 29 - 1);
});

// ---------------------------------------------------------------- issue 10: all or nothing, no user code under the lock

test("issue 10 #7: pushMany reads values.length once; a length that changes under it changes nothing", () => {
  const values = new SharedDynamicArray<number>("f64", { maxCapacity: 100 });
  values.pushMany([1, 2, 3]);
  let reads = 0;
  const liar = new Proxy([10, 20], {
    get(target, key, receiver) {
      if (key === "length") return reads++ === 0 ? 2 : 5;
      return Reflect.get(target, key, receiver);
    },
  });
  assert.equal(values.pushMany(liar), 5);
  assert.equal(reads, 1);
  assert.deepEqual(values.toArray(), [1, 2, 3, 10, 20]);
  assert.equal(values.pop(), 20);
  assert.equal(values.pop(), 10);
  assert.equal(values.pop(), 3, "no popped record comes back");
  assert.equal(values.length, 2);
});

test("issue 10 #8: set() with an index whose valueOf writes is a TypeError at once, never a timeout", () => {
  const values = new SharedDynamicArray<number>("f64", { maxCapacity: 8, timeoutMs: 2000 });
  values.push(1);
  let called = false;
  const index = {
    valueOf() {
      called = true;
      values.push(2);
      return 0;
    },
  };
  const started = Date.now();
  assert.throws(() => values.set(index as unknown as number, 5), TypeError);
  assert.ok(Date.now() - started < 1000, "no wait for the lock");
  assert.equal(called, false, "valueOf never ran");
  assert.deepEqual(values.toArray(), [1]);
  assert.throws(() => values.get("0" as unknown as number), TypeError);
  assert.throws(() => values.set(0.5, 1), RangeError);
});

test("issue 10 #9: pushMany is all or nothing; a getter that writes runs before the lock", () => {
  const Point = struct({ x: "f32", id: "u16" });
  const points = new SharedDynamicArray<{ x: number; id: number }>(Point, { maxCapacity: 16, timeoutMs: 200 });
  points.push({ x: 0, id: 0 });
  assert.throws(() => points.pushMany([{ x: 1, id: 1 }, { x: 2, id: 70000 }, { x: 3, id: 3 }]), /values\[1\]/);
  assert.deepEqual(points.toArray(), [{ x: 0, id: 0 }]);
  const writes = {
    get x() {
      points.push({ x: 9, id: 9 }); // takes and releases the lock itself: nobody holds it yet
      return 1;
    },
    id: 1,
  };
  const started = Date.now();
  assert.equal(points.push(writes), 3);
  assert.equal(points.pushMany([writes, { x: 2, id: 2 }]), 6);
  assert.ok(Date.now() - started < 150, "no timeout");
  assert.deepEqual(points.toArray().map((p) => p.id), [0, 9, 1, 9, 1, 2]);
  points.set(0, writes);
  assert.deepEqual(points.get(0), { x: 1, id: 1 });
  assert.equal(points.length, 7);
});

test("SharedDynamicArray wrap: the option, and attach() with it", () => {
  const bytes = new SharedDynamicArray<number>("u8", { maxCapacity: 8, wrap: true });
  bytes.pushMany([256, -1, 300]);
  assert.deepEqual(bytes.toArray(), [0, 255, 44]);
  const strict = SharedDynamicArray.attach<number>(bytes.buffer, "u8");
  assert.throws(() => strict.push(256), RangeError);
  const wrapping = SharedDynamicArray.attach<number>(bytes.buffer, "u8", { wrap: true });
  wrapping.push(257);
  assert.deepEqual(strict.toArray(), [0, 255, 44, 1]);
});

// ---------------------------------------------------------------- a header written outside memkit (adversarial 4)

const isCorruption = (e: unknown) =>
  e instanceof AllocationError && e.category === "corruption" && /written outside memkit/.test(e.message);

// Words of the header: 0 sequence, 1 the length times 4 plus the lock's two bits (0 free, 1 taken,
// 2 taken with a writer asleep), 3 element size (see src/arrays/_shared_buffer.ts).
function words(array: SharedDynamicArray<unknown>): Int32Array {
  return new Int32Array(array.buffer, 0, 4);
}

test("adversarial 4: a length word beyond the buffer's elements, or negative, is corruption on every read and write, before any loop", () => {
  const Point = struct({ x: "f32", id: "u32" });
  for (const bad of [100_000, 5, -1, -(2 ** 29), 2 ** 29 - 1]) {
    const points = new SharedDynamicArray<{ x: number; id: number }>(Point, { maxCapacity: 1 << 20, capacity: 4 });
    points.pushMany([{ x: 1, id: 1 }, { x: 2, id: 2 }]);
    const header = words(points as SharedDynamicArray<unknown>);
    Atomics.store(header, 1, bad * 4); // the lock free
    const label = `length ${bad}`;
    const started = Date.now();
    for (
      const use of [
        () => points.length,
        () => points.get(1),
        () => points.get(50),
        () => points.set(1, { x: 9, id: 9 }),
        () => points.set(50, { x: 9, id: 9 }),
        () => points.push({ x: 3, id: 3 }),
        () => points.pushMany([{ x: 3, id: 3 }]),
        () => points.pop(),
        () => points.toArray(),
        () => [...points],
        () => SharedDynamicArray.attach(points.buffer, Point),
      ]
    ) {
      assert.throws(use, isCorruption, `${label}: ${use}`);
    }
    assert.ok(Date.now() - started < 1000, `${label}: no loop or copy sized by it`);
    assert.equal(Atomics.load(header, 1), bad * 4, `${label}: every writer released the lock, the word as it was`);
    assert.equal(Atomics.load(header, 0) % 2, 0, `${label}: and left the sequence even`);
    // Put right, the array is as it was: the refusals changed nothing.
    Atomics.store(header, 1, 2 * 4);
    assert.deepEqual(points.toArray(), [{ x: 1, id: 1 }, { x: 2, id: 2 }], label);
    assert.equal(points.push({ x: 3, id: 3 }), 3);
    assert.equal(points.capacity, 4);
  }
});

test("adversarial 4: toArray() with a length word claiming 2^29 - 1 elements is corruption at once, in both runtimes (child process)", () => {
  const result = runChild(fixture("array_release_child.ts"), {}, ["shared length 2^29-1"]);
  assert.equal(result.signal, null, `killed by ${result.signal}\n${result.stderr}`);
  assert.equal(result.status, 0, `exit ${result.status}\n${result.stderr}`);
  const { results, ms } = JSON.parse(result.stdout.trim().split("\n").pop()!);
  for (const [member, outcome] of Object.entries(results as Record<string, string>)) {
    assert.match(
      outcome,
      /^corruption: .*length word reads 2147483644 \(536870911 elements\), but the buffer holds 4 elements/,
      member,
    );
  }
  assert.ok(ms < 1000, `took ${ms} ms`);
});

test("adversarial 4: lock bits other than 0, 1 or 2, an odd sequence with the lock free, or another element size is corruption, not a timeout", () => {
  const values = new SharedDynamicArray<number>("f64", { maxCapacity: 16, timeoutMs: 5_000 });
  values.pushMany([1, 2]);
  const header = words(values as SharedDynamicArray<unknown>);
  const started = Date.now();

  Atomics.store(header, 1, 2 * 4 + 3); // lock bits 3
  assert.throws(() => values.push(3), isCorruption);
  assert.throws(() => values.clear(), isCorruption);
  assert.throws(() => SharedDynamicArray.attach(values.buffer, "f64"), isCorruption);
  assert.deepEqual(values.toArray(), [1, 2], "readers take no lock");
  Atomics.store(header, 1, 2 * 4);

  Atomics.store(header, 0, 5); // sequence odd, lock free: no writer is writing
  assert.throws(() => values.get(0), isCorruption);
  assert.throws(() => values.toArray(), isCorruption);
  assert.throws(() => values.push(3), isCorruption);
  assert.equal(Atomics.load(header, 1), 2 * 4, "the writer released the lock");
  Atomics.store(header, 0, 6);

  Atomics.store(header, 3, 4); // element size
  assert.throws(() => values.push(3), isCorruption);
  assert.throws(() => values.set(0, 3), isCorruption);
  Atomics.store(header, 3, 8);

  assert.ok(Date.now() - started < 2_000, "no waiting for the 5 s timeout");
  assert.equal(values.push(3), 3);
  assert.deepEqual(values.toArray(), [1, 2, 3]);
});

test("adversarial 4: attach() to a buffer whose header is garbage is corruption; another element size is still a TypeError", () => {
  const make = () => {
    const values = new SharedDynamicArray<number>("f64", { maxCapacity: 16, capacity: 4 });
    values.pushMany([1, 2]);
    return values;
  };
  for (
    const [word, value] of [[3, 0], [3, -8], [3, 3], [3, 2 ** 30], [1, 3], [1, 2 * 4 + 3], [1, -1], [1, 5 * 4]] as const
  ) {
    const values = make();
    Atomics.store(words(values as SharedDynamicArray<unknown>), word, value);
    assert.throws(() => SharedDynamicArray.attach(values.buffer, "f64"), isCorruption, `word ${word} = ${value}`);
  }
  const zeros = new SharedArrayBuffer(64, { maxByteLength: 1024 });
  assert.throws(() => SharedDynamicArray.attach(zeros, "f64"), isCorruption, "a growable buffer no array made");
  // Room for no element (a header alone): no SharedDynamicArray has such a buffer.
  for (const [bytes, max] of [[16, 16], [16, 20], [16, 23]]) {
    const small = new SharedArrayBuffer(bytes, { maxByteLength: max });
    new Int32Array(small)[3] = 8; // a valid element size word
    assert.throws(() => SharedDynamicArray.attach(small, "f64"), isCorruption, `${bytes} bytes growing to ${max}`);
  }
  const values = make();
  assert.throws(() => SharedDynamicArray.attach(values.buffer, "f32"), TypeError, "4-byte elements in an 8-byte array");
  assert.deepEqual(SharedDynamicArray.attach(values.buffer, "f64").toArray(), [1, 2]);
});

test("adversarial 4: own byteLength / maxByteLength / grow properties on the buffer change nothing", () => {
  const values = new SharedDynamicArray<number>("u32", { maxCapacity: 64, capacity: 2 });
  values.pushMany([1, 2]);
  const buffer = values.buffer;
  Object.defineProperty(buffer, "byteLength", { value: 1 << 30 });
  Object.defineProperty(buffer, "maxByteLength", { value: 1 << 30 });
  Object.defineProperty(buffer, "grow", { value: () => {} });
  assert.equal(values.capacity, 2);
  Atomics.store(words(values as SharedDynamicArray<unknown>), 1, 100 * 4);
  assert.throws(() => values.length, isCorruption);
  Atomics.store(words(values as SharedDynamicArray<unknown>), 1, 2 * 4);
  assert.equal(values.push(3), 3, "grew through the real grow()");
  assert.ok(values.capacity >= 3);
  assert.deepEqual(SharedDynamicArray.attach<number>(buffer, "u32").toArray(), [1, 2, 3]);
  assert.equal(SharedDynamicArray.attach<number>(buffer, "u32").maxCapacity, 64);
});

// A record read back is built without running program code (a setter on Object.prototype for a field's name,
// an index setter on Array.prototype, an iterator getter Array.from would ask for, a patched DataView method).
for (
  const [label, packed, make] of [
    ["packed: DataView path", true, (f: () => unknown) => f()],
    ["aligned: generated path", false, (f: () => unknown) => f()],
    ["aligned, no code generation: DataView path", false, withoutCodegen],
  ] as const
) {
  test(`reading records of a SharedDynamicArray runs no program code (${label}): get, pop, toArray, iteration`, () => {
    const all = [0, 1, 2, 3];
    const reads: [string, (a: SharedDynamicArray<TrapRecord>) => unknown, unknown, number[]][] = [
      ["get(1)", (a) => a.get(1), trapRecord(1), all],
      ["pop()", (a) => a.pop(), trapRecord(3), [0, 1, 2]],
      ["toArray()", (a) => a.toArray(), all.map(trapRecord), all],
      ["iteration", (a) => [...a], all.map(trapRecord), all],
    ];
    for (const [name, read, expected, left] of reads) {
      const array = make(() =>
        new SharedDynamicArray<TrapRecord>(trapLayout(packed), { maxCapacity: 8 })
      ) as SharedDynamicArray<TrapRecord>;
      array.pushMany(all.map(trapRecord));
      const { result, error, trapped } = withRecordTraps(() => read(array), () => array.clear());
      assert.deepEqual(trapped, [], `${name}: no program code ran`);
      assert.equal(error, undefined, `${name}: ${error}`);
      assert.deepEqual(result, expected, name);
      assert.deepEqual(array.toArray(), left.map(trapRecord), `${name}: the array after`);
    }
  });
}
