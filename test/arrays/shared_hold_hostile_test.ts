// SharedDynamicArray.hold() against hostile callers: user code that takes or
// releases holds in the middle of writes and reads, holds released in every
// order, header words written from outside during a hold, growth to
// maxCapacity under a hold, two arrays over one buffer in one thread, and, in
// child processes (they could hang or crash), Workers writing under holds
// while this thread reads, a Worker terminated while holding, a process that
// ends while holding, and timeoutMs 0.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { AllocationError, nativeInfo, type SharedArrayHold, SharedDynamicArray, struct } from "../../mod.ts";
import { requestGC } from "../../ffi/native.ts";
import { fixture } from "../_helpers.ts";

const SEQ = 0, STATE = 1, STRIDE = 3; // the header words (src/arrays/_shared_buffer.ts)
const header = (array: SharedDynamicArray<unknown>) => new Int32Array(array.buffer, 0, 4);
const lockBits = (array: SharedDynamicArray<unknown>) => Atomics.load(header(array), STATE) & 3;
const seqOdd = (array: SharedDynamicArray<unknown>) => Atomics.load(header(array), SEQ) & 1;
const category = (name: string) => (e: unknown) => e instanceof AllocationError && e.category === name;

// A record the generated reader cannot take (a packed f64), so reads go through a DataView: the path where a
// patched DataView method or a setter on Object.prototype ran user code before reads were made to run none.
const Packed = struct({ tag: "u8", value: "f64" }, { packed: true });
type PackedRecord = { tag: number; value: number };

// Runs `body` with a setter for `key` on Object.prototype that calls `hook` once (the setter still
// defines the property, so the object read is whole), and removes it after.
function withPrototypeSetter(key: string, hook: () => void, body: () => void): void {
  let armed = true;
  Object.defineProperty(Object.prototype, key, {
    configurable: true,
    set(this: object, value: unknown) {
      Object.defineProperty(this, key, { value, writable: true, enumerable: true, configurable: true });
      if (!armed) return;
      armed = false;
      hook();
    },
  });
  try {
    body();
  } finally {
    delete (Object.prototype as Record<string, unknown>)[key];
  }
}

test("pop runs no user code: a setter on Object.prototype or a patched DataView method is not called while it decodes", () => {
  // Before, the DataView path ran them (it assigned each field and called the DataView's methods), which is
  // why pop() decodes a copy once the lock is free; now it builds records by definition and calls DataView's
  // methods as captured when memkit loaded, so no user code runs at all.
  for (const patch of ["Object.prototype setter", "DataView.prototype.getFloat64"]) {
    const records = new SharedDynamicArray<PackedRecord>(Packed, { maxCapacity: 16, timeoutMs: 20 });
    const other = SharedDynamicArray.attach<PackedRecord>(records.buffer, Packed, { timeoutMs: 20 });
    records.pushMany([{ tag: 1, value: 1 }, { tag: 2, value: 2 }, { tag: 3, value: 3 }]);
    const held = records.hold();
    let ran = false;
    const hook = () => {
      ran = true;
      held.release(); // the hold's lock, given back while the pop decodes
      other.push({ tag: 9, value: 9 }); // another writer gets in
    };
    let popped: PackedRecord | undefined;
    if (patch === "Object.prototype setter") withPrototypeSetter("value", hook, () => (popped = records.pop()));
    else {
      const original = DataView.prototype.getFloat64;
      let armed = true;
      DataView.prototype.getFloat64 = function (this: DataView, offset: number, little?: boolean) {
        if (armed) {
          armed = false;
          hook();
        }
        return original.call(this, offset, little);
      };
      try {
        popped = records.pop();
      } finally {
        DataView.prototype.getFloat64 = original;
      }
    }
    assert.deepEqual(popped, { tag: 3, value: 3 }, patch);
    assert.equal(ran, false, `${patch}: no user code ran`);
    assert.equal(lockBits(records), 1, `${patch}: the hold's lock, still taken`);
    held.release();
    assert.deepEqual(other.toArray(), [{ tag: 1, value: 1 }, { tag: 2, value: 2 }], patch);
    assert.equal(lockBits(records), 0, patch);
    assert.equal(seqOdd(records), 0, patch);
    assert.equal(records.push({ tag: 4, value: 4 }), 3, patch);
  }
});

// The same kind through globals: Math and Number functions, and the global error constructors, that memkit
// would look up while it holds the lock (growth, an index check, maxCapacity). With no hold open, lock bits
// other than 0 mean a write is in progress: none of them may run then.
test("no write runs a global the program replaced (Math, Number.isInteger, RangeError) while it holds the lock", () => {
  const replaced: [Record<string, unknown>, string][] = [
    [Math as unknown as Record<string, unknown>, "max"],
    [Math as unknown as Record<string, unknown>, "min"],
    [Math as unknown as Record<string, unknown>, "floor"],
    [Number as unknown as Record<string, unknown>, "isInteger"],
    [globalThis as unknown as Record<string, unknown>, "RangeError"],
  ];
  const values = new SharedDynamicArray<number>("f64", { maxCapacity: 40, capacity: 1, timeoutMs: 10 });
  const inside: string[] = [];
  const originals = replaced.map(([owner, key]) => owner[key] as (...args: unknown[]) => unknown);
  replaced.forEach(([owner, key], i) => {
    const original = originals[i];
    owner[key] = new Proxy(original, {
      apply(target, self, args) {
        if (lockBits(values) !== 0) inside.push(key);
        return Reflect.apply(target, self, args);
      },
      construct(target, args, newTarget) {
        if (lockBits(values) !== 0) inside.push(key);
        return Reflect.construct(target, args, newTarget);
      },
    });
  });
  try {
    for (let i = 0; i < 40; i++) values.push(i); // grows five times
    values.set(3, 33);
    assert.throws(() => values.set(40, 1), RangeError);
    assert.throws(() => values.push(40), RangeError);
    assert.throws(() => values.pushMany([40, 41]), RangeError);
    values.pop();
    values.clear();
  } finally {
    replaced.forEach(([owner, key], i) => (owner[key] = originals[i]));
  }
  assert.deepEqual(inside, []);
  assert.equal(lockBits(values), 0);
});

// Each write, with user code (Proxy traps, getters, a setter on Object.prototype) that takes a hold and keeps
// it, releases the open one, or takes and releases one, in the middle of it. After each: the lock is taken
// exactly while a hold is open, the sequence word is even, the elements are what the writes made them, and
// once every hold is released another array over the buffer writes.
test("holds taken or released by user code in the middle of push, pushMany, set, pop, get and toArray leave the lock and the elements consistent", () => {
  type Action = "take" | "release" | "take and release";
  const ops = ["push", "pushMany", "set", "pop", "get", "toArray"] as const;
  for (const op of ops) {
    for (const action of ["take", "release", "take and release"] as Action[]) {
      const records = new SharedDynamicArray<PackedRecord>(Packed, { maxCapacity: 64, timeoutMs: 20 });
      const other = SharedDynamicArray.attach<PackedRecord>(records.buffer, Packed, { timeoutMs: 20 });
      records.pushMany([{ tag: 1, value: 1 }, { tag: 2, value: 2 }]);
      const open: SharedArrayHold[] = [records.hold()];
      const act = () => {
        if (action === "release") open.pop()?.release();
        else {
          const held = records.hold();
          if (action === "take") open.push(held);
          else held.release();
        }
      };
      const what = `${op}, user code that does '${action}'`;
      let armed = true;
      const once = () => {
        if (armed) {
          armed = false;
          act();
        }
      };
      const proxied = (record: PackedRecord) =>
        new Proxy(record, {
          get(target, key, receiver) {
            once();
            return Reflect.get(target, key, receiver);
          },
        });
      const expected = [{ tag: 1, value: 1 }, { tag: 2, value: 2 }];
      if (op === "push") {
        assert.equal(records.push(proxied({ tag: 3, value: 3 })), 3, what);
        expected.push({ tag: 3, value: 3 });
      } else if (op === "pushMany") {
        const many = new Proxy([{ tag: 3, value: 3 }, { tag: 4, value: 4 }], {
          get(target, key, receiver) {
            if (key === "length") once();
            return Reflect.get(target, key, receiver);
          },
        });
        assert.equal(records.pushMany(many), 4, what);
        expected.push({ tag: 3, value: 3 }, { tag: 4, value: 4 });
      } else if (op === "set") {
        records.set(0, proxied({ tag: 5, value: 5 }));
        expected[0] = { tag: 5, value: 5 };
      } else {
        withPrototypeSetter("value", once, () => {
          if (op === "pop") assert.deepEqual(records.pop(), expected.pop(), what);
          else if (op === "get") assert.deepEqual(records.get(1), expected[1], what);
          else assert.deepEqual(records.toArray(), expected, what);
        });
      }
      // Reads build records running no user code (a setter for a field's name is not called): only the
      // writes, which read the value first, run it.
      const read = op === "pop" || op === "get" || op === "toArray";
      assert.equal(armed, read, read ? `${what}: no user code ran` : `${what}: the user code ran`);
      assert.equal(lockBits(records) !== 0, open.length > 0, `${what}: taken exactly while a hold is open`);
      assert.equal(seqOdd(records), 0, what);
      assert.deepEqual(other.toArray(), expected, what);
      if (open.length > 0) assert.throws(() => other.push({ tag: 0, value: 0 }), category("timeout"), what);
      for (const held of open) held.release();
      assert.equal(lockBits(records), 0, what);
      assert.equal(other.push({ tag: 6, value: 6 }), expected.length + 1, what);
    }
  }
});

test("holds released in every order, twice, or by dispose: the lock is free exactly after the last", () => {
  const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  for (const order of orders) {
    const values = new SharedDynamicArray<number>("i32", { maxCapacity: 64, timeoutMs: 10 });
    const other = SharedDynamicArray.attach<number>(values.buffer, "i32", { timeoutMs: 10 });
    const holds = [values.hold(), values.hold(), values.hold()];
    for (const [step, which] of order.entries()) {
      values.push(step);
      const end = step % 2 === 0 ? () => holds[which].release() : () => holds[which][Symbol.dispose]();
      end();
      end(); // a second release does nothing, and takes nothing from the other holds
      assert.equal(holds[which].released, true);
      const open = 2 - step;
      assert.equal(lockBits(values) !== 0, open > 0, `order ${order}, after step ${step}`);
      if (open > 0) assert.throws(() => other.push(-1), category("timeout"));
    }
    assert.equal(other.push(3), 4);
    assert.deepEqual(values.toArray(), [0, 1, 2, 3]);
    for (const held of holds) held.release(); // long released: nothing
    assert.equal(lockBits(values), 0);
    {
      using _outer = values.hold();
      {
        using _inner = values.hold();
        values.push(4);
      }
      assert.equal(lockBits(values), 1, "the outer hold still keeps it");
    }
    assert.equal(lockBits(values), 0);
  }
});

// Header words written from outside while this thread holds the lock. A length word (lock bits included) that
// is not the hold's makes the next write under the hold "corruption" before it stores anything; an odd SEQ or
// another stride does so for the next write that changes elements (set, pop, clear) or hold() (an append does
// not depend on them, and goes on). Then the hold is lost (its release() does nothing), and the length word is
// left as found unless it is still the hold's (then the lock is freed, as an unheld write that finds
// corruption frees it).
test("header words written from outside during a hold: the next write that depends on them is corruption, nothing of it lands, the hold is lost", () => {
  const cases: { name: string; write: (words: Int32Array, length: number) => void; lengthWord: boolean }[] = [
    { name: "lock bits cleared", write: (w, n) => Atomics.store(w, STATE, n * 4), lengthWord: true },
    { name: "lock bits 3", write: (w) => Atomics.or(w, STATE, 3), lengthWord: true },
    { name: "a shorter length", write: (w, n) => Atomics.store(w, STATE, (n - 1) * 4 + 1), lengthWord: true },
    { name: "a longer length", write: (w, n) => Atomics.store(w, STATE, (n + 5) * 4 + 1), lengthWord: true },
    { name: "a negative length", write: (w) => Atomics.store(w, STATE, -7), lengthWord: true },
    { name: "an odd sequence word", write: (w) => Atomics.add(w, SEQ, 1), lengthWord: false },
    { name: "another element size", write: (w) => Atomics.store(w, STRIDE, 4), lengthWord: false },
  ];
  for (const { name, write, lengthWord } of cases) {
    for (const op of ["push", "pushMany", "set", "pop", "clear", "hold"] as const) {
      const values = new SharedDynamicArray<number>("f64", { maxCapacity: 64, timeoutMs: 10 });
      const words = header(values);
      const held = values.hold();
      values.pushMany([1, 2, 3]);
      write(words, 3);
      const written = [...words];
      const what = `${name}, then ${op}`;
      const run = () => {
        if (op === "push") values.push(4);
        else if (op === "pushMany") values.pushMany([4, 5]);
        else if (op === "set") values.set(0, 4);
        else if (op === "pop") values.pop();
        else if (op === "clear") values.clear();
        else values.hold();
      };
      let elements = [1, 2, 3];
      if (!lengthWord && (op === "push" || op === "pushMany")) {
        run(); // an append under the hold goes on; the next write that changes elements finds the header
        elements = op === "push" ? [1, 2, 3, 4] : [1, 2, 3, 4, 5];
        assert.equal(values.length, elements.length, what);
        assert.throws(() => values.clear(), category("corruption"), `${what}, then clear`);
      } else assert.throws(run, category("corruption"), what);
      // As the outside write left it; where the length word is still the hold's, the lock freed.
      const expected = lengthWord ? written : [written[SEQ], elements.length * 4, 0, written[STRIDE]];
      assert.deepEqual([...words], expected, what);
      assert.deepEqual(
        new Float64Array(values.buffer, 16, elements.length),
        new Float64Array(elements),
        `${what}: nothing of the refused write landed`,
      );
      held.release(); // lost: writes nothing
      assert.deepEqual([...words], expected, `${what}: release()`);
      assert.equal(held.released, true);
    }
  }
});

test("another writer let in by an outside write during a hold keeps its element: the holder's next write is corruption, not an overwrite", () => {
  const values = new SharedDynamicArray<number>("f64", { maxCapacity: 64, timeoutMs: 10 });
  const other = SharedDynamicArray.attach<number>(values.buffer, "f64", { timeoutMs: 10 });
  const held = values.hold();
  values.push(1);
  Atomics.store(header(values), STATE, 1 * 4); // the lock bits cleared from outside
  assert.equal(other.push(2), 2);
  assert.throws(() => values.push(3), category("corruption"));
  assert.deepEqual(other.toArray(), [1, 2], "no length counts an element nobody wrote; the other's element is kept");
  held.release();
  assert.equal(lockBits(values), 0);
  assert.equal(values.push(3), 3, "the array writes again through the lock");
  assert.deepEqual(other.toArray(), [1, 2, 3]);
});

test("a hold lost to corruption: its holds and a dropped one release nothing of a hold taken after", async () => {
  const values = new SharedDynamicArray<number>("i32", { maxCapacity: 64, timeoutMs: 10 });
  const other = SharedDynamicArray.attach<number>(values.buffer, "i32", { timeoutMs: 10 });
  const kept = values.hold();
  let dropped: WeakRef<SharedArrayHold> | null = null;
  (() => void (dropped = new WeakRef(values.hold())))(); // dropped: its FinalizationRegistry entry runs once collected
  values.push(1);
  Atomics.or(header(values), SEQ, 1); // an odd sequence word from outside
  assert.throws(() => values.set(0, 2), category("corruption"));
  Atomics.and(header(values), SEQ, ~1);
  assert.equal(lockBits(values), 0);
  const later = values.hold();
  values.push(2);
  kept.release();
  const pause = () => new Promise((wake) => setTimeout(wake, 5));
  for (let round = 0; round < 50; round++) {
    await pause(); // (a deref() keeps its target alive until the job that called it ends)
    requestGC();
    await pause();
    if (dropped!.deref() === undefined) break;
  }
  assert.equal(dropped!.deref(), undefined, "the dropped hold was collected");
  for (let round = 0; round < 5; round++) await pause(); // its entry ran
  assert.equal(lockBits(values), 1, "the later hold still keeps the lock");
  assert.throws(() => other.push(3), category("timeout"));
  later.release();
  assert.equal(lockBits(values), 0);
  assert.equal(other.push(3), 3);
  assert.deepEqual(values.toArray(), [1, 2, 3]);
});

test("growth to maxCapacity under a hold: the buffer grows under it, a write past maxCapacity is a RangeError that changes nothing and keeps the hold", () => {
  const values = new SharedDynamicArray<number>("u16", { maxCapacity: 40, capacity: 1, timeoutMs: 10 });
  const other = SharedDynamicArray.attach<number>(values.buffer, "u16", { timeoutMs: 10 });
  const held = values.hold();
  for (let i = 0; i < 30; i++) values.push(i);
  assert.equal(values.pushMany(Array.from({ length: 10 }, (_, i) => 30 + i)), 40);
  assert.equal(values.capacity, 40);
  assert.throws(() => values.push(40), RangeError);
  assert.throws(() => values.pushMany([40]), RangeError);
  assert.equal(values.pushMany([]), 40, "an empty batch needs no room");
  assert.equal(lockBits(values), 1);
  assert.equal(seqOdd(values), 0);
  assert.equal(other.length, 40);
  assert.deepEqual(other.toArray(), Array.from({ length: 40 }, (_, i) => i));
  assert.equal(values.pop(), 39);
  assert.equal(values.push(39), 40, "a pop makes room under the same hold");
  held.release();
  assert.equal(lockBits(values), 0);
  assert.throws(() => other.push(41), RangeError);
});

// ---------------------------------------------------------------- child processes

const CHILD = fixture("shared_hold_hostile_child.ts");

// Runs the child with a time limit of its own: a scenario that hangs is killed and fails its test.
function child(
  args: string[],
  limitMs = 60_000,
): { status: number | null; signal: string | null; lines: string[]; stderr: string } {
  const runtime = nativeInfo().runtime;
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const argv = runtime === "deno" ? ["run", "-A", `--config=${config}`, CHILD, ...args] : ["run", CHILD, ...args];
  const result = spawnSync(process.execPath, argv, {
    env: { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: limitMs,
  });
  return {
    status: result.status,
    signal: result.signal,
    lines: (result.stdout ?? "").split("\n").filter((line) => line.startsWith("{")),
    stderr: result.stderr ?? "",
  };
}

function answer(args: string[], limitMs?: number): Record<string, unknown> {
  const run = child(args, limitMs);
  assert.equal(run.signal, null, `killed (${run.signal}): it hung. ${run.stderr}`);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.lines.at(-1)!);
}

test("three Workers writing bursts under nested holds, pops and sets, and writing a second array while holding the first, while this thread reads: nothing lost, doubled or torn, no false 'held here'; locks free and SEQ even at the end (child process)", () => {
  const result = answer(["stress"], 100_000);
  assert.deepEqual(result.errors, []);
  assert.equal(result.bad, 0, "every element read was whole, and no snapshot had one twice");
  assert.equal(result.missing, 0);
  assert.equal(result.doubled, 0);
  assert.equal(result.length, result.expected);
  assert.equal(result.lockBits, 0);
  assert.equal(result.seqOdd, 0);
  assert.deepEqual(result.spare, [0, 0]);
});

for (const mode of ["hold-spin", "hold-sleep"]) {
  test(`a Worker terminated while holding (${mode}): other writers get AllocationError("timeout"), readers read or time out, nothing hangs (child process)`, () => {
    const result = answer(["terminated", mode]);
    assert.equal(result.held, "held");
    assert.equal(result.waiting, "pushing");
    for (const op of ["push", "hold", "set"]) assert.deepEqual(result[op], { category: "timeout" }, op);
    assert.equal(result.waiter, "timeout", "the Worker waiting for the lock gave up");
    for (const op of ["length", "toArray", "get"]) {
      const got = result[op] as { value?: unknown; category?: string };
      assert.ok("value" in got || got.category === "timeout", `${op}: ${JSON.stringify(got)}`);
    }
  });
}

for (const [how, status] of [["exit", 7], ["throw", 1], ["worker-exit", 5]] as const) {
  test(`a process that ends (${how}) while a thread holds and a Worker waits for the lock exits with its status (child process)`, () => {
    const run = child([how]);
    assert.equal(run.signal, null, `killed: it hung. ${run.stderr}`);
    assert.equal(run.status, status, run.stderr);
    assert.ok((JSON.parse(run.lines[0]) as { lockBits: number }).lockBits !== 0, "the lock was held at the end");
  });
}

test("arrays over one buffer in one thread (the same object, a structured clone): while one holds, the others' writes and holds fail at once with timeout, not after their 10-minute timeout; reads go on (child process)", () => {
  const result = answer(["same-thread"]);
  for (const op of ["push", "pushMany", "set", "pop", "clear", "hold", "clonePush", "cloneHold"]) {
    assert.deepEqual(result[op], { category: "timeout", heldHere: true }, op);
  }
  assert.deepEqual(
    result.unrelated,
    { value: [2, 0, 0] },
    "another buffer's writes go on; the spare header words stay 0",
  );
  assert.deepEqual(result.reads, { value: [1, 1, [1]] });
  assert.deepEqual(result.after, { value: [2, [1, 2]] }, "once released, the other writes");
});

test("hold() on an attached array with timeoutMs 0: taken when free, timeout at once against a Worker's hold (while this thread holds another array), taken again after it (child process)", () => {
  const result = answer(["timeout0"]);
  assert.deepEqual(result.free, { value: 1 });
  assert.deepEqual(
    result.contended,
    [{ category: "timeout" }, { category: "timeout" }, { value: [1, 1] }],
    "a Worker's hold, not this thread's hold of another array, is what it timed out on",
  );
  assert.deepEqual(result.spare, [0, 0], "the spare header word of both buffers is 0 again");
  assert.equal(result.released, "released");
  assert.deepEqual(result.after, { value: [1, 1, 2] });
  assert.equal(result.lockBits, 0);
});
