// What a refusal calls a backing: its class name as written in code, and
// anything else quoted and cut short (a million-character name, or one with
// line breaks and terminal escapes, went into messages verbatim). The name is
// read when the allocator is made: a `constructor` getter of the backing no
// longer runs in the middle of a failing allocation (it could dispose the
// allocator there, and tryAlloc returned null for a disposed arena).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, type Allocator, Arena, DebugAllocator, SystemAllocator } from "../../mod.ts";

const system = new SystemAllocator();

/** A backing that refuses every chunk once `refusing` is set, with `proto` as its prototype. */
function refusingBacking(proto: object): Allocator & { refusing: boolean } {
  const backing = Object.assign(Object.create(proto), {
    refusing: false,
    kind: "system",
    alloc: (s: number, a?: number) => system.alloc(s, a),
    tryAlloc(this: { refusing: boolean }, s: number, a?: number) {
      return this.refusing ? null : system.tryAlloc(s, a);
    },
    array: system.array.bind(system),
    free: (v: ArrayBufferView) => system.free(v),
    resize: (v: ArrayBufferView, n: number) => system.resize(v, n),
    owns: (v: ArrayBufferView) => system.owns(v),
    stats: () => system.stats(),
  });
  return backing;
}

test("a backing's odd class name is quoted and cut short in refusals; a plain one is kept as written", () => {
  for (
    const [name, expected] of [["Fine\n    at fake (/etc/passwd:1:1)\u001b[2J", /backing "Fine/], [
      "x".repeat(1e6),
      /backing "x+/,
    ], [
      "MyHeap",
      /backing MyHeap refused/,
    ]] as const
  ) {
    const backing = refusingBacking({ constructor: Object.defineProperty(function () {}, "name", { value: name }) });
    const arena = new Arena({ capacity: 4096, growth: "linear", backing });
    arena.alloc(4000);
    backing.refusing = true;
    assert.throws(() => arena.alloc(4096), (e) => {
      assert.ok(e instanceof AllocationError);
      assert.match(e.message, expected);
      assert.ok(e.message.length < 1000, `a message of ${e.message.length} characters`);
      assert.ok(!e.message.includes("\n") && !e.message.includes("\u001b"), "no line break or escape from the name");
      return true;
    });
    const debug = new DebugAllocator(backing);
    assert.throws(() => debug.alloc(16), (e) => e instanceof AllocationError && e.message.length < 1000);
  }
});

test("a backing's constructor getter never runs inside a failing allocation (it could end the allocator there)", () => {
  let arena: Arena | null = null;
  let calls = 0;
  const backing = refusingBacking({
    get constructor() {
      calls++;
      arena?.dispose();
      return { name: "Sneaky" };
    },
  });
  arena = new Arena({ capacity: 4096, growth: "linear", backing });
  const kept = arena.alloc(4000);
  const madeWith = calls;
  backing.refusing = true;
  assert.equal(arena.tryAlloc(4096), null);
  assert.throws(() => arena!.alloc(4096), (e) => e instanceof AllocationError && e.category === "out-of-memory");
  assert.equal(calls, madeWith, "the getter ran only while the arena was made");
  assert.equal(kept.length, 4000, "the arena lives on");
});

test("a backing's name is read without running its code: no constructor getter, Proxy trap or toStringTag getter", () => {
  let ran = 0;
  const sneaky = refusingBacking({
    get constructor() {
      ran++;
      return Object;
    },
    get [Symbol.toStringTag]() {
      ran++;
      return "X\u0000" + "y".repeat(5000);
    },
  });
  const debug = new DebugAllocator(sneaky);
  const arena = new Arena({ capacity: 4096, growth: "linear", backing: sneaky });
  arena.alloc(4000);
  sneaky.refusing = true;
  for (const act of [() => arena.alloc(4096), () => debug.alloc(1 << 20)]) {
    assert.throws(act, (e) => e instanceof AllocationError && e.message.length < 1000 && !e.message.includes("\u0000"));
  }
  assert.equal(ran, 0, "no getter of the backing ran");
  const proxied = new Proxy(refusingBacking({}), {});
  const overProxy = new Arena({ capacity: 4096, growth: "linear", backing: proxied });
  overProxy.alloc(4000);
  (proxied as { refusing: boolean }).refusing = true;
  assert.throws(() => overProxy.alloc(4096), (e) => e instanceof AllocationError && /backing a Proxy/.test(e.message));
});
