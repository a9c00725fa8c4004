// SharedDynamicArray.push's fast path (SharedHeader.claimOne / unlockAppend) against hostile
// callers: values that fail their checks, or run user code that pushes or takes and releases
// holds, with and without a hold; header words written from outside before a push; globals the
// program replaced (Atomics, FinalizationRegistry) that must never run while memkit holds the
// lock; and, in child processes (they could hang), Workers pushing from capacity 1 to
// maxCapacity while this thread reads, pops and clears racing pushes, a Worker writing bad
// header words while this thread pushes, a Worker terminated mid-push, a Worker that ends holding.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, SharedDynamicArray, struct } from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

const SEQ = 0, STATE = 1, STRIDE = 3; // the header words (src/arrays/_shared_buffer.ts)
const words = (array: SharedDynamicArray<unknown>) => new Int32Array(array.buffer, 0, 4);
const headerOf = (array: SharedDynamicArray<unknown>) =>
  Array.from(words(array), (_, i) => Atomics.load(words(array), i));
const lockBits = (array: SharedDynamicArray<unknown>) => Atomics.load(words(array), STATE) & 3;
const category = (name: string) => (e: unknown) => e instanceof AllocationError && e.category === name;

const Point = struct({ id: "u32", x: "f32", y: "f32" }); // the generated writer
const Packed = struct({ tag: "u8", value: "f64" }, { packed: true }); // the checked path (a DataView)

// Per element type: a good value maker, and bad values with the error class push must throw.
const TYPES: {
  name: string;
  type: ConstructorParameters<typeof SharedDynamicArray>[0];
  good: (i: number) => unknown;
  bad: [string, () => unknown, new (...args: never[]) => Error][];
}[] = [
  {
    name: "f64",
    type: "f64",
    good: (i) => i + 0.5,
    bad: [
      ["a string", () => "1", TypeError],
      ["an object whose valueOf throws", () => ({ valueOf: () => assert.fail("valueOf ran") }), TypeError],
      ["a bigint", () => 1n, TypeError],
      ["a Proxy of a Number", () => new Proxy(new Number(1), {}), TypeError],
      ["undefined", () => undefined, TypeError],
    ],
  },
  {
    name: "u8",
    type: "u8",
    good: (i) => i & 255,
    bad: [
      ["256", () => 256, RangeError],
      ["-1", () => -1, RangeError],
      ["1.5", () => 1.5, RangeError],
      ["NaN", () => NaN, RangeError],
    ],
  },
  {
    name: "i64",
    type: "i64",
    good: (i) => BigInt(i) - 3n,
    bad: [["2^64", () => 2n ** 64n, RangeError], ["1.5", () => 1.5, RangeError], ["a string", () => "1", TypeError]],
  },
  {
    name: "record",
    type: Point,
    good: (i) => ({ id: i, x: i / 2, y: -i }),
    bad: [
      ["a missing field", () => ({ id: 1, x: 1 }), TypeError],
      ["an extra field", () => ({ id: 1, x: 1, y: 1, z: 1 }), TypeError],
      [
        "an inherited enumerable extra key",
        () => Object.assign(Object.create({ z: 1 }), { id: 1, x: 1, y: 1 }),
        TypeError,
      ],
      ["a negative u32", () => ({ id: -1, x: 1, y: 1 }), RangeError],
      ["a string field", () => ({ id: "1", x: 1, y: 1 }), TypeError],
      [
        "a field whose valueOf throws",
        () => ({ id: { valueOf: () => assert.fail("valueOf ran") }, x: 1, y: 1 }),
        TypeError,
      ],
      ["null", () => null, TypeError],
      ["an array", () => [1, 2, 3], TypeError],
      ["a Proxy whose ownKeys throws", () =>
        new Proxy({ id: 1, x: 1, y: 1 }, {
          ownKeys: () => {
            throw new TypeError("keys");
          },
        }), TypeError],
      ["a getter that throws", () => ({
        id: 1,
        x: 1,
        get y(): number {
          throw new RangeError("getter");
        },
      }), RangeError],
    ],
  },
  {
    name: "packed record",
    type: Packed,
    good: (i) => ({ tag: i & 255, value: i * 1.5 }),
    bad: [
      ["a missing field", () => ({ tag: 1 }), TypeError],
      ["an extra field", () => ({ tag: 1, value: 1, q: 2 }), TypeError],
      ["a u8 of 300", () => ({ tag: 300, value: 1 }), RangeError],
      ["a Proxy whose get throws", () =>
        new Proxy({ tag: 1, value: 1 }, {
          get: () => {
            throw new TypeError("get");
          },
        }), TypeError],
    ],
  },
];

test("push of a bad value, through both branches of the fast path (no hold, one hold, nested holds) and at capacity: its error class, and nothing changes (length, elements, header words, lock)", () => {
  for (const { name, type, good, bad } of TYPES) {
    for (const holds of [0, 1, 2]) {
      // capacity 2 with 2 elements: the bad push meets a full buffer (the fast path's fallback) and a roomy one
      for (const capacity of [2, 16]) {
        const array = new SharedDynamicArray<unknown>(type, { maxCapacity: 64, capacity, timeoutMs: 20 });
        array.push(good(0));
        array.push(good(1));
        const held = Array.from({ length: holds }, () => array.hold());
        for (const [what, make, kind] of bad) {
          const label = `${name}, ${holds} holds, capacity ${capacity}: ${what}`;
          const before = { header: headerOf(array), elements: array.toArray(), capacity: array.capacity };
          assert.throws(() => array.push(make()), kind, label);
          assert.deepEqual(headerOf(array), before.header, `${label}: header words`);
          assert.deepEqual(array.toArray(), before.elements, `${label}: elements`);
          assert.equal(array.capacity, before.capacity, `${label}: capacity`);
        }
        assert.equal(lockBits(array), holds > 0 ? 1 : 0, `${name}: the lock taken exactly while held`);
        assert.equal(array.push(good(2)), 3, name);
        held.forEach((hold) => hold.release());
        assert.equal(lockBits(array), 0, name);
        const other = SharedDynamicArray.attach<unknown>(array.buffer, type, { timeoutMs: 20 });
        assert.equal(other.push(good(3)), 4, `${name}: another writer gets in after the holds`);
        assert.deepEqual(array.toArray(), [0, 1, 2, 3].map((i) => roundTrip(type, good(i))), name);
      }
    }
  }
});

// What an element reads back as (f32 fields round, i64 reads as a bigint).
function roundTrip(type: ConstructorParameters<typeof SharedDynamicArray>[0], value: unknown): unknown {
  const scratch = new SharedDynamicArray<unknown>(type, { maxCapacity: 1 });
  scratch.push(value);
  return scratch.get(0);
}

test("user code in a pushed value that pushes to the same array, or takes, keeps and releases holds: every element lands once, in the order the pushes completed; the lock is taken exactly while a hold is open", () => {
  for (const outer of [false, true]) {
    const array = new SharedDynamicArray<{ id: number; x: number; y: number }>(Point, {
      maxCapacity: 64,
      capacity: 1,
      timeoutMs: 20,
    });
    const outerHold = outer ? array.hold() : null;
    const point = (id: number) => ({ id, x: id, y: id });
    // Three pushes deep, each from a getter of the one before: the innermost lands first.
    const nested = (id: number, depth: number) => ({
      id,
      x: id,
      get y() {
        if (depth > 0) array.push(nested(id + 1, depth - 1));
        return id;
      },
    });
    assert.equal(array.push(nested(1, 2)), 3);
    assert.deepEqual(array.toArray().map(({ id }) => id), [3, 2, 1]);
    // A getter that takes a hold and keeps it: the push lands under it.
    let kept: ReturnType<typeof array.hold> | null = null;
    array.push({
      id: 4,
      x: 4,
      get y() {
        kept = array.hold();
        return 4;
      },
    });
    assert.equal(lockBits(array), 1);
    // A getter that releases every open hold, the kept one first: the push takes the lock itself.
    array.push({
      id: 5,
      x: 5,
      get y() {
        kept!.release();
        outerHold?.release();
        return 5;
      },
    });
    assert.equal(lockBits(array), 0, `outer ${outer}: no hold open, the lock free`);
    // A getter that takes two holds and releases them in the other order, pushing under each.
    array.push({
      id: 8,
      x: 8,
      get y() {
        const a = array.hold(), b = array.hold();
        array.push(point(6));
        a.release();
        array.push(point(7));
        b.release();
        return 8;
      },
    });
    assert.equal(lockBits(array), 0);
    assert.deepEqual(array.toArray().map(({ id }) => id), [3, 2, 1, 4, 5, 6, 7, 8], `outer ${outer}`);
    const other = SharedDynamicArray.attach<{ id: number; x: number; y: number }>(array.buffer, Point, {
      timeoutMs: 20,
    });
    assert.equal(other.push(point(9)), 9);
  }
});

test("header words written from outside before a push, with and without a hold: corruption, the element does not land, and the header is left as written", () => {
  type Write = { word: number; value: (found: number) => number; what: string; plain: boolean; held: boolean };
  const writes: Write[] = [
    { word: STATE, value: (s) => s | 3, what: "lock bits 3", plain: true, held: true },
    { word: STATE, value: () => -4, what: "a negative length", plain: true, held: true },
    { word: STATE, value: () => 1000 * 4, what: "a length past the buffer", plain: true, held: true },
    { word: STATE, value: (s) => s + 4, what: "a length one on (another writer let in)", plain: false, held: true },
    { word: SEQ, value: (s) => s + 1, what: "an odd SEQ with the lock free", plain: true, held: false },
    { word: STRIDE, value: (s) => s + 8, what: "another element size", plain: true, held: false },
  ];
  for (const type of ["f64", Point, Packed] as const) {
    for (const { word, value, what, plain, held } of writes) {
      for (const holding of [false, true]) {
        if (holding ? !held : !plain) continue;
        const label = `${typeof type === "string" ? type : "record"}, ${holding ? "under a hold" : "no hold"}: ${what}`;
        const array = new SharedDynamicArray<unknown>(type, { maxCapacity: 64, timeoutMs: 20 });
        const good = TYPES.find((t) => t.type === type)!.good;
        array.pushMany([good(0), good(1)]);
        const elements = array.toArray();
        const hold = holding ? array.hold() : null;
        const header = words(array);
        const original = Atomics.load(header, word);
        Atomics.store(header, word, value(original));
        const written = headerOf(array);
        assert.throws(() => array.push(good(2)), category("corruption"), label);
        assert.deepEqual(headerOf(array), written, `${label}: the header is as written`);
        if (!holding) {
          // Again: what the failed push left in this thread (the length it read) is no guess to claim from.
          assert.throws(() => array.push(good(2)), category("corruption"), `${label}, a second push`);
          assert.deepEqual(headerOf(array), written, `${label}: the header is as written after a second push`);
        }
        hold?.release(); // does nothing when the hold was lost
        Atomics.store(header, word, original);
        if (holding && word === STATE) Atomics.store(header, STATE, 2 * 4); // the hold was lost: its lock, too
        assert.equal(lockBits(array), 0, label);
        assert.deepEqual(array.toArray(), elements, `${label}: nothing landed`);
        assert.equal(array.push(good(3)), 3, label);
        assert.deepEqual(array.toArray(), [...elements, roundTrip(type, good(3))], label);
      }
    }
  }
});

test("a replaced Atomics function never runs while push, pushMany, set, pop, clear, hold or release holds the lock, and one that throws leaves the lock free", () => {
  const keys = ["add", "and", "compareExchange", "exchange", "load", "notify", "or", "store", "sub", "wait", "xor"];
  const atomics = Atomics as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = keys.map((key) => atomics[key]);
  const load = Atomics.load;
  for (const type of ["f64", Point] as const) {
    const good = TYPES.find((t) => t.type === type)!.good;
    const values = new SharedDynamicArray<unknown>(type, { maxCapacity: 64, capacity: 1, timeoutMs: 20 });
    const header = words(values);
    let holding = false; // a hold is open: the lock is taken, and memkit's
    const inside: string[] = [];
    keys.forEach((key, i) => {
      const original = originals[i];
      atomics[key] = function (this: unknown, ...args: unknown[]) {
        if (holding || (load(header, STATE) & 3) !== 0) inside.push(key);
        return Reflect.apply(original, this, args);
      };
    });
    try {
      for (let i = 0; i < 20; i++) values.push(good(i)); // grows five times
      values.pushMany([good(20), good(21)]);
      values.set(0, good(0));
      values.pop();
      const held = values.hold();
      holding = true;
      for (let i = 21; i < 40; i++) values.push(good(i));
      values.pop();
      const inner = values.hold();
      inner.release();
      holding = false;
      held.release();
      values.clear();
    } finally {
      keys.forEach((key, i) => (atomics[key] = originals[i]));
    }
    assert.deepEqual(inside, [], typeof type === "string" ? type : "record");
    assert.equal(lockBits(values), 0);
    // One that throws: whatever the write did, it did all of it or none, and the lock is free.
    for (const key of ["exchange", "add", "compareExchange", "store"]) {
      const i = keys.indexOf(key);
      atomics[key] = () => {
        throw new Error(`${key} replaced`);
      };
      let held: ReturnType<typeof values.hold> | null = null;
      try {
        values.push(good(1));
        held = values.hold();
        values.push(good(2));
        values.pop();
      } catch {
        // a replaced function memkit calls outside the lock may throw: not this test's concern
      } finally {
        atomics[key] = originals[i];
        held?.release();
      }
      assert.equal(lockBits(values), 0, key);
      const length = values.length;
      assert.equal(values.push(good(3)), length + 1, key);
    }
  }
});

test("a replaced FinalizationRegistry register or unregister never leaves the lock taken: hold() that throws holds nothing, release() frees it", () => {
  const proto = FinalizationRegistry.prototype as unknown as Record<string, unknown>;
  for (const key of ["register", "unregister"]) {
    const values = new SharedDynamicArray<number>("f64", { maxCapacity: 8, timeoutMs: 20 });
    const other = SharedDynamicArray.attach<number>(values.buffer, "f64", { timeoutMs: 20 });
    const original = proto[key];
    proto[key] = () => {
      throw new Error(`${key} replaced`);
    };
    try {
      try {
        const held = values.hold();
        values.push(1);
        held.release();
      } catch {
        // hold() or release() may fail with the program's error; the lock must not stay taken
      }
    } finally {
      proto[key] = original;
    }
    assert.equal(lockBits(values), 0, key);
    assert.equal(other.push(2), values.length, `${key}: another writer gets in`);
  }
});

const CHILD = fixture("shared_fastpath_child.ts");

// Runs the child with a time limit of its own: a scenario that hangs is killed and fails its test.
function answer(args: string[], limitMs = 100_000): Record<string, unknown> {
  const result = runChild(CHILD, {}, args, limitMs);
  assert.equal(result.signal, null, `killed (${result.signal}): it hung. ${result.stderr}`);
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.split("\n").filter((line) => line.startsWith("{"));
  return JSON.parse(lines.at(-1)!);
}

for (const element of ["f64", "record"]) {
  test(`${element}: three Workers push (plain, under nested holds released in either order, pushMany) from capacity 1 to exactly maxCapacity while this thread reads: each writer's elements once, in order; a full array refuses with RangeError (child process)`, () => {
    const result = answer(["fill", element]);
    assert.deepEqual(result.errors, []);
    assert.equal(result.bad, 0, "every element read was whole, and each writer's came in order");
    assert.equal(result.shrank, 0, "the length never went down");
    assert.equal(result.finalBad, 0);
    assert.equal(result.length, result.maxCapacity);
    assert.deepEqual(result.landed, result.counts, "each writer's pushes landed once");
    assert.equal((result.counts as number[]).reduce((a, b) => a + b), result.maxCapacity);
    assert.equal(result.lockBits, 0);
    assert.equal(result.seq, 0, "appends never touch SEQ");
    assert.equal(result.full, "RangeError");
  });
}

test("two Workers push while a third pops and, under a hold, reads everything and clears: every element is popped, cleared or still there, exactly once (child process)", () => {
  const result = answer(["popclear", "record"]);
  assert.deepEqual(result.errors, []);
  assert.deepEqual(result.pushed, [20_000, 20_000]);
  assert.equal(result.total, 40_000);
  assert.equal(result.bad, 0);
  assert.equal(result.missing, 0);
  assert.equal(result.doubled, 0);
  assert.equal(result.lockBits, 0);
  assert.equal(result.seqOdd, 0);
});

for (const [scenario, element] of [["corrupt-seq", "f64"], ["corrupt-stride", "record"]]) {
  test(`${scenario}: a Worker writes a bad header word for moments while this thread pushes: each push lands or is corruption and lands nowhere; pushes under a hold land; the lock is never left taken (child process)`, () => {
    const result = answer([scenario, element]);
    assert.deepEqual(result.other, [], "no error but corruption, none under a hold");
    assert.ok((result.corruptions as number) > 0, "the bad word was seen");
    assert.ok((result.landed as number) > 0);
    assert.equal(result.exact, true, "the elements are exactly the pushes that returned, in order");
    assert.equal(result.lockBits, 0);
    assert.equal(result.seqOdd, 0);
    assert.equal(result.after, true);
  });
}

test("a Worker pushing (plain, or bursts under a hold) terminated at any moment: the length counts only whole elements, in order; the lock is free or left taken (then another writer times out and changes nothing) (child process)", () => {
  const result = answer(["terminate", "record"]) as {
    rounds: {
      held: boolean;
      lockBits: number;
      bad: number;
      exact: boolean;
      push: string;
      length: number;
      lengthAfter: number;
    }[];
  };
  for (const round of result.rounds) {
    const label = JSON.stringify(round);
    assert.equal(round.bad, 0, label);
    assert.equal(round.exact, true, label);
    if (round.lockBits === 0) {
      assert.ok(round.push === "pushed" || /RangeError/.test(round.push), label); // Deno may run it to maxCapacity
      if (round.push === "pushed") assert.equal(round.lengthAfter, round.length + 1, label);
    } else {
      assert.equal(round.lockBits, 1, label);
      assert.equal(round.push, "timeout", label);
      assert.equal(round.lengthAfter, round.length, label);
    }
  }
});

test("a Worker that closes itself holding a hold: its element stays; other writers time out, or get in if the runtime collected the hold; readers read (child process)", () => {
  const result = answer(["hold-exit", "f64"]) as Record<string, { value?: unknown; category?: string }> & {
    held: string;
    lockBits: number;
  };
  assert.equal(result.held, "held");
  assert.deepEqual(result.first, { value: [1, 0] });
  const landed = ["push", "hold", "pushMany"].filter((op) => "value" in result[op]);
  for (const op of ["push", "hold", "pushMany"]) {
    assert.ok("value" in result[op] || result[op].category === "timeout", `${op}: ${JSON.stringify(result[op])}`);
  }
  if (landed.length === 0) assert.deepEqual(result.length, { value: 1 });
  else assert.deepEqual(result.length, { value: 3 }, "both pushes landed once the lock was free");
  assert.ok(result.lockBits !== 3);
});
