// SharedDynamicArray's appends (push, pushMany): the length and the lock share
// one header word, appends leave the seqlock alone, and pushMany stages its
// batch in a buffer the array keeps. What must hold: a reader in another thread
// never sees a length that counts a record not all written; a bad element
// changes nothing; a batch grows the buffer in place; writers in several
// threads lose nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SharedDynamicArray, struct } from "../../mod.ts";
import { appendAll, isParticle, Particle, particle, type ParticleRecord } from "../fixtures/shared_append.ts";
import { Sample, type SampleRecord, torn } from "../fixtures/shared_sample.ts";

const WORKER = new URL("../fixtures/shared_append_worker.ts", import.meta.url);

// A Worker that appends records (appendAll) to the arrays it is given, one job at a time.
class Writer {
  readonly worker = new Worker(WORKER, { type: "module" });
  readonly #ready: Promise<void>;
  #answer: (answer: string) => void = () => {};
  constructor() {
    this.#ready = new Promise((ready, reject) => {
      this.worker.onmessage = (event) => event.data === "ready" ? ready() : this.#answer(event.data);
      this.worker.onerror = (event) => reject(event);
    });
  }
  /**
   * Gives the Worker a job: `count` records of writer `tag`. Resolves once the
   * Worker holds it; go() then sets it writing, done() says how it ended.
   */
  async start(buffer: SharedArrayBuffer, count: number, tag: number, hold = false) {
    await this.#ready;
    const flags = new Int32Array(new SharedArrayBuffer(8));
    const done = new Promise<string>((resolve) => (this.#answer = resolve));
    this.worker.postMessage({ buffer, flags: flags.buffer, count, tag, hold });
    const go = () => {
      while (Atomics.load(flags, 0) === 0 && Atomics.load(flags, 1) === 0) Atomics.wait(flags, 0, 0, 1);
      Atomics.store(flags, 0, 2);
      Atomics.notify(flags, 0);
    };
    return { flags, go, done };
  }
}

test("SharedDynamicArray: a Worker pushes and pushes many while the main thread reads every record as it is published", async () => {
  const count = 100_000;
  const writer = new Writer();
  let lengths = 0, rounds = 0;
  try {
    // Rounds until the reader has seen the length change often while the writer wrote (on a
    // loaded machine one thread may run alone for a while): what it reads is checked every time.
    while (rounds < 3 || (rounds < 20 && lengths < 3000)) {
      rounds++;
      // Capacity 1: the buffer grows about 17 times while the reader reads.
      const shared = new SharedDynamicArray<ParticleRecord>(Particle, { maxCapacity: count, capacity: 1 });
      // Every other round the writer takes hold() for every other batch: holds publish each append the same way.
      const { flags, go, done } = await writer.start(shared.buffer, count, 0, rounds % 2 === 0);
      go();
      let previous = 0, shrank = 0, wrong = 0, wrongInSnapshots = 0;
      // Polls until the writer is done and published everything (or failed). Each poll reads
      // the newest record below the length it read: the one a length published too early
      // would show half written (a batch is copied in after its slot is claimed). A snapshot
      // when the length passes each quarter (a snapshot copies everything, so only a few).
      for (let quarter = 1; previous < count && Atomics.load(flags, 1) !== 2;) {
        const length = shared.length;
        if (length < previous) shrank++;
        if (length !== previous) lengths++;
        previous = length;
        if (length > 0 && !isParticle(shared.get(length - 1), 0, length - 1)) wrong++;
        if (length >= (quarter * count) / 4) {
          quarter++;
          wrongInSnapshots += shared.toArray().filter((r, i) => !isParticle(r, 0, i)).length;
        }
      }
      assert.equal(await done, "done");
      assert.equal(wrong, 0, `round ${rounds}: no record read before it was all written`);
      assert.equal(shrank, 0, `round ${rounds}: the length never went back`);
      assert.equal(wrongInSnapshots, 0, `round ${rounds}: no snapshot held a record not all written`);
      assert.equal(shared.toArray().filter((r, i) => !isParticle(r, 0, i)).length, 0);
      assert.equal(shared.length, count);
    }
    assert.ok(lengths > 1, `the reader ran while the writer wrote (${lengths} lengths in ${rounds} rounds)`);
  } finally {
    writer.worker.terminate();
  }
});

test("SharedDynamicArray: writers in three threads append at once; every record lands once, each writer's in order", async () => {
  const count = 40_000;
  const shared = new SharedDynamicArray<ParticleRecord>(Particle, { maxCapacity: 3 * count, capacity: 1 });
  const writers = [new Writer(), new Writer()];
  try {
    const jobs = await Promise.all(writers.map((writer, i) => writer.start(shared.buffer, count, i + 1)));
    // The main thread writes too, so that writers wait for one another (and sleep).
    for (const { go } of jobs) go();
    appendAll(shared, count, 0);
    assert.deepEqual(await Promise.all(jobs.map((job) => job.done)), ["done", "done"]);
    const all = shared.toArray();
    assert.equal(all.length, 3 * count);
    const next = [0, 0, 0];
    let wrong = 0;
    for (const record of all) {
      const tag = Math.floor(record.id / 2 ** 20);
      if (tag > 2 || !isParticle(record, tag, next[tag])) wrong++;
      else next[tag]++;
    }
    assert.equal(wrong, 0, "no record lost, doubled, torn or out of its writer's order");
    assert.deepEqual(next, [count, count, count]);
    // Every writer left the lock free: the header word is the length times 4, lock bits 0.
    assert.equal(Atomics.load(new Int32Array(shared.buffer, 0, 4), 1), 3 * count * 4);
  } finally {
    for (const { worker } of writers) worker.terminate();
  }
});

test("SharedDynamicArray.hold(): writers in three threads taking and freeing holds between their appends lose nothing", async () => {
  const count = 40_000;
  const shared = new SharedDynamicArray<ParticleRecord>(Particle, { maxCapacity: 3 * count, capacity: 1 });
  const writers = [new Writer(), new Writer()];
  try {
    // Writer 1 holds for every other batch, writer 2 never; the main thread holds too.
    const jobs = await Promise.all(writers.map((writer, i) => writer.start(shared.buffer, count, i + 1, i === 0)));
    for (const { go } of jobs) go();
    appendAll(shared, count, 0, true);
    assert.deepEqual(await Promise.all(jobs.map((job) => job.done)), ["done", "done"]);
    const next = [0, 0, 0];
    let wrong = 0;
    for (const record of shared.toArray()) {
      const tag = Math.floor(record.id / 2 ** 20);
      if (tag > 2 || !isParticle(record, tag, next[tag])) wrong++;
      else next[tag]++;
    }
    assert.equal(wrong, 0, "no record lost, doubled, torn or out of its writer's order");
    assert.deepEqual(next, [count, count, count]);
    assert.equal(Atomics.load(new Int32Array(shared.buffer, 0, 4), 1), 3 * count * 4, "the lock is free at the end");
  } finally {
    for (const { worker } of writers) worker.terminate();
  }
});

test("SharedDynamicArray: appends that rewrite what a clear, pop or set changed never show a reader a torn record", async () => {
  // Appends leave the sequence counter alone; a clear or pop publishes the shorter length before
  // the counter is even again, so a reader never takes a record the next append rewrites for valid.
  const shared = new SharedDynamicArray<SampleRecord>(Sample, { maxCapacity: 16 });
  const worker = new Worker(new URL("../fixtures/shared_churn_worker.ts", import.meta.url), { type: "module" });
  try {
    const flags = new Int32Array(new SharedArrayBuffer(8));
    const done = new Promise<string>((resolve, reject) => {
      worker.onmessage = (event) => {
        if (event.data === "ready") worker.postMessage({ buffer: shared.buffer, flags: flags.buffer, rounds: 300_000 });
        else resolve(event.data);
      };
      worker.onerror = (event) => reject(event);
    });
    while (Atomics.load(flags, 0) === 0) await new Promise((wake) => setTimeout(wake, 1));
    Atomics.store(flags, 0, 2);
    Atomics.notify(flags, 0);
    let reads = 0, tornReads = 0;
    while (Atomics.load(flags, 1) === 0) {
      const all = shared.toArray();
      reads += all.length;
      tornReads += all.filter(torn).length;
      for (let i = 0; i < 4; i++) {
        const length = shared.length;
        if (length === 0) continue;
        // The last record: the one a pop removes and the next push rewrites.
        let record: SampleRecord;
        try {
          record = shared.get(length - 1);
        } catch (error) {
          if (error instanceof RangeError) continue; // shortened since the length was read
          throw error;
        }
        reads++;
        if (torn(record)) tornReads++;
      }
    }
    assert.equal(await done, "done");
    assert.ok(reads > 0);
    assert.equal(tornReads, 0, `${tornReads} torn records in ${reads} read`);
  } finally {
    worker.terminate();
  }
});

test("SharedDynamicArray.pushMany is all or nothing: a bad element leaves length, contents and capacity as they were", () => {
  const shared = new SharedDynamicArray<ParticleRecord>(Particle, { maxCapacity: 1000, capacity: 8 });
  shared.pushMany([particle(0, 0), particle(0, 1), particle(0, 2)]);
  const capacity = shared.capacity;
  const bad = [particle(0, 3), particle(0, 4), particle(0, 5), particle(0, 6), particle(0, 7), particle(0, 8)];
  bad.push({ id: -1, x: 0, y: 0 }); // a u32 out of range, after enough records to need growth
  assert.throws(() => shared.pushMany(bad), (e: unknown) => e instanceof RangeError && /values\[6\]/.test(e.message));
  const missing = [particle(0, 3), { id: 4, x: 2 } as ParticleRecord];
  assert.throws(
    () => shared.pushMany(missing),
    (e: unknown) => e instanceof TypeError && /values\[1\]/.test(e.message),
  );
  assert.equal(shared.length, 3);
  assert.equal(shared.capacity, capacity, "the refused batch did not grow the buffer");
  // The next batch is staged where the refused ones were: none of their bytes show.
  assert.equal(shared.pushMany([particle(0, 3)]), 4);
  assert.deepEqual(shared.toArray(), [0, 1, 2, 3].map((i) => particle(0, i)));
  // Past maxCapacity: refused as a whole, before anything is written.
  const tooMany = Array.from({ length: 997 }, (_, i) => particle(0, 4 + i));
  assert.throws(() => shared.pushMany(tooMany), RangeError);
  assert.equal(shared.length, 4);
  assert.deepEqual(shared.get(3), particle(0, 3));
});

test("SharedDynamicArray.pushMany grows the buffer in place across a batch, for batches small and large", () => {
  for (const size of [1000, 50_000]) {
    const shared = new SharedDynamicArray<ParticleRecord>(Particle, { maxCapacity: 2 * size + 1, capacity: 2 });
    const buffer = shared.buffer;
    const twin = SharedDynamicArray.attach<ParticleRecord>(buffer, Particle);
    shared.push(particle(0, 0));
    assert.equal(shared.pushMany(Array.from({ length: size }, (_, i) => particle(0, 1 + i))), size + 1);
    assert.equal(twin.pushMany(Array.from({ length: size }, (_, i) => particle(0, size + 1 + i))), 2 * size + 1);
    assert.equal(shared.buffer, buffer, "grew in place");
    assert.ok(shared.capacity >= 2 * size + 1);
    const all = twin.toArray();
    assert.equal(all.length, 2 * size + 1);
    assert.equal(all.filter((r, i) => !isParticle(r, 0, i)).length, 0, `batches of ${size}`);
  }
});

test("SharedDynamicArray.pushMany: a getter that pushes many to the same array mid-batch gets a staging buffer of its own", () => {
  const shared = new SharedDynamicArray<ParticleRecord>(Particle, { maxCapacity: 100 });
  shared.pushMany([particle(0, 0), particle(0, 1)]); // the kept staging buffer exists
  let nested = 0;
  const pushesMany = {
    id: 3,
    get x() {
      nested = shared.pushMany([particle(1, 0), particle(1, 1), particle(1, 2)]);
      return 1;
    },
    y: -3,
  };
  // The outer batch's first record is staged when the getter of its second runs the inner batch,
  // which lands first; then the outer batch is copied, its first record intact.
  assert.equal(shared.pushMany([particle(0, 2), pushesMany]), 7);
  assert.equal(nested, 5);
  assert.deepEqual(shared.toArray(), [
    particle(0, 0),
    particle(0, 1),
    particle(1, 0),
    particle(1, 1),
    particle(1, 2),
    particle(0, 2),
    { id: 3, x: 1, y: -3 },
  ]);
});

test("SharedDynamicArray.pushMany of nested records: a value handed to the checked path part way keeps its own nested fields", () => {
  // pushMany's batch encoder runs the writer's checks in a loop: what it read of one value must not
  // stand in for the next. The second value's i64 is a number (the checked path takes it), found
  // before its nested record is read.
  const Inner = struct({ a: "f32x3", b: "u8" });
  const Outer = struct({ n: "i64", p: Inner });
  type OuterRecord = { n: bigint; p: { a: number[]; b: number } };
  const shared = new SharedDynamicArray<OuterRecord>(Outer, { maxCapacity: 8 });
  const values = [
    { n: 1n, p: { a: [1, 2, 3], b: 1 } },
    { n: 5 as unknown as bigint, p: { a: [4, 5, 6], b: 2 } },
    { n: 3n, p: { a: [7, 8, 9], b: 3 } },
  ];
  assert.equal(shared.pushMany(values), 3);
  assert.deepEqual(shared.toArray(), [
    { n: 1n, p: { a: [1, 2, 3], b: 1 } },
    { n: 5n, p: { a: [4, 5, 6], b: 2 } },
    { n: 3n, p: { a: [7, 8, 9], b: 3 } },
  ]);
  const bad = [{ n: 1n, p: { a: [1, 2, 3], b: 1 } }, { n: 2n, p: { a: [1, 2, 3], b: 256 } }];
  assert.throws(() => shared.pushMany(bad), (e: unknown) => e instanceof RangeError && /values\[1\]/.test(e.message));
  assert.equal(shared.length, 3);
});

test("SharedDynamicArray's maxCapacity is at most 2^29 - 1 (the length shares its word with the lock's two bits)", () => {
  assert.throws(() => new SharedDynamicArray("u8", { maxCapacity: 2 ** 29 }), RangeError);
  assert.throws(() => new SharedDynamicArray("u8", { maxCapacity: 2 ** 31 - 1 }), /at most 2\^29 - 1/);
  const bytes = new SharedDynamicArray<number>("u8", { maxCapacity: 2 ** 29 - 1, capacity: 4 });
  assert.equal(bytes.maxCapacity, 2 ** 29 - 1);
  bytes.pushMany([1, 2, 3, 4, 5]);
  assert.deepEqual(bytes.toArray(), [1, 2, 3, 4, 5]);
});
