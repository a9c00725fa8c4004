// What a refusal calls a backing: its class name as written in code, and
// anything else quoted and cut short (a million-character name, or one with
// line breaks and terminal escapes, went into messages verbatim). The name is
// read when the allocator is made: a `constructor` getter of the backing no
// longer runs in the middle of a failing allocation (it could dispose the
// allocator there, and tryAlloc returned null for a disposed arena).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  BuddyAllocator,
  DebugAllocator,
  FreeListAllocator,
  PoolAllocator,
  StackAllocator,
  SystemAllocator,
} from "../../mod.ts";

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
    const [name, expected] of [["Fine\n    at fake (/etc/passwd:1:1)\u001b[2J", /backing, an object of class "Fine/], [
      "x".repeat(1e6),
      /backing, an object of class "x+/,
    ], [
      "MyHeap",
      /backing, a MyHeap, refused/,
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
  assert.throws(
    () => overProxy.alloc(4096),
    (e) => e instanceof AllocationError && /backing, a Proxy,/.test(e.message),
  );
});

/** Every allocator that takes a backing: made over `backing`, and the call that takes its first chunk from it. */
const OWNERS: { name: string; over: (backing: Allocator) => () => unknown }[] = [
  { name: "Arena", over: (backing) => () => new Arena({ backing, capacity: 1 << 16 }) },
  { name: "FreeListAllocator", over: (backing) => () => new FreeListAllocator({ backing, capacity: 1 << 16 }) },
  { name: "StackAllocator", over: (backing) => () => new StackAllocator({ backing, capacity: 1 << 16 }) },
  { name: "BuddyAllocator", over: (backing) => () => new BuddyAllocator({ backing, capacity: 1 << 16 }) },
  {
    // A pool takes its first chunk on its first allocation: made while the backing lived, used after.
    name: "PoolAllocator",
    over: (backing) => {
      let pool: PoolAllocator | null = null;
      try {
        pool = new PoolAllocator({ backing, blockSize: 64 });
      } catch { /* made over a disposed backing: refused below, at its first allocation */ }
      return () => (pool ?? new PoolAllocator({ backing, blockSize: 64 })).alloc(8);
    },
  },
];

test("an allocator over a disposed backing names the backing as the one disposed, at construction or a later take", () => {
  // Before: "Cannot allocate: the Arena was disposed", which read as if the allocator being made were.
  const backings: [string, () => Allocator & Disposable][] = [
    ["an Arena", () => new Arena({ capacity: 1 << 20 })],
    ["a SystemAllocator", () => new SystemAllocator()],
    ["a FreeListAllocator", () => new FreeListAllocator({ capacity: 1 << 20 })],
    ["a StackAllocator", () => new StackAllocator({ capacity: 1 << 20 })],
    ["a BuddyAllocator", () => new BuddyAllocator({ capacity: 1 << 20 })],
  ];
  for (const [backingName, make] of backings) {
    for (const { name, over } of OWNERS) {
      for (const when of ["before it is made", "after it is made"]) {
        const backing = make();
        if (when === "before it is made") backing[Symbol.dispose]();
        const act = over(backing);
        if (when === "after it is made") backing[Symbol.dispose]();
        if (when === "after it is made" && name !== "PoolAllocator") continue; // it lost its chunk: its own end
        assert.throws(act, (e: unknown) => {
          assert.ok(e instanceof AllocationError, `${name} over ${backingName} ${when}: ${e}`);
          assert.equal(e.category, "use-after-free");
          assert.match(
            e.message,
            new RegExp(`^The ${name} cannot take a \\d+-byte chunk: its backing, ${backingName}, was disposed`),
          );
          assert.ok(e.cause instanceof AllocationError, "the backing's own error is the cause");
          return true;
        });
      }
    }
  }
});

test("an allocator over a backing that lost its memory says so about the backing", () => {
  const root = new Arena({ capacity: 1 << 20 });
  const middle = new Arena({ backing: root, capacity: 1 << 16 });
  const pool = new PoolAllocator({ backing: middle, blockSize: 64 });
  root.reset(); // middle's chunk goes back: middle ends
  assert.throws(() => pool.alloc(8), (e: unknown) => {
    assert.ok(e instanceof AllocationError && e.category === "use-after-free", String(e));
    assert.match(e.message, /^The PoolAllocator cannot take a \d+-byte chunk: its backing, an Arena, lost its memory/);
    return true;
  });
  assert.throws(
    () => new Arena({ backing: middle }),
    /^AllocationError: The Arena cannot take .*its backing, an Arena,/,
  );
  root.dispose();
});

// Every message that names an allocator's backing says it one way, whatever the backing is: "its backing, a
// MyHeap,", "its backing, an object,", "its backing, a Proxy,", `its backing, an object of class "odd name",`.
// Before, a backing written as an object literal read "its backing an object refused to take back ..." and "The
// Arena cannot use what its backing an object returned ...".
test("messages name a backing of any kind grammatically: a class, an object literal, a Proxy, an odd class name", () => {
  class MyHeap {}
  const odd = Object.defineProperty(function () {}, "name", { value: "my heap" });
  const detached = new Uint8Array(new ArrayBuffer(65536));
  detached.buffer.transfer();
  for (
    const [kind, proto, named] of [
      ["a class", MyHeap.prototype, "a MyHeap"],
      ["an object literal", Object.prototype, "an object"],
      ["a Proxy", null, "a Proxy"],
      ["an odd class name", { constructor: odd }, 'an object of class "my heap"'],
    ] as const
  ) {
    const phrase = (before: string, after: string) =>
      new RegExp(`${before} backing, ${named.replace(/[()"]/g, "\\$&")}, ${after}`);
    const wrap = <T extends object>(backing: T): T => (proto === null ? new Proxy(backing, {}) : backing);
    // A chunk refused for want of memory, and a chunk the backing gave that cannot be used.
    const refusing = wrap(refusingBacking(proto ?? {}));
    const arena = new Arena({ capacity: 4096, growth: "linear", backing: refusing });
    arena.alloc(4000);
    (refusing as { refusing: boolean }).refusing = true;
    assert.throws(() => arena.alloc(4096), (e: unknown) => {
      assert.ok(e instanceof AllocationError, kind);
      assert.match(e.message, phrase("the", "refused a \\d+-byte chunk"), kind);
      return true;
    });
    const lying = wrap(Object.assign(refusingBacking(proto ?? {}), { tryAlloc: () => detached }));
    assert.throws(() => new Arena({ capacity: 4096, backing: lying }), (e: unknown) => {
      assert.ok(e instanceof AllocationError && e.category === "corruption", kind);
      assert.match(e.message, phrase("The Arena cannot use what its", "returned for a 4096-byte chunk"), kind);
      return true;
    });
    // A chunk the backing refuses to take back at dispose().
    const keeping = wrap(Object.assign(refusingBacking(proto ?? {}), {
      free: () => {
        throw new Error("no");
      },
    }));
    const pool = new PoolAllocator({ blockSize: 64, backing: keeping });
    pool.alloc(8);
    assert.throws(() => pool.dispose(), (e: unknown) => {
      assert.ok(e instanceof AllocationError, kind);
      assert.match(e.message, phrase("but its", "refused to take back 1 of its 1 chunks"), kind);
      return true;
    });
    // A backing that cannot serve at all, and one refusing for its own state.
    const broken = wrap(Object.assign(refusingBacking(proto ?? {}), {
      tryAlloc: () => {
        throw new Error("broken");
      },
    }));
    assert.throws(() => new Arena({ capacity: 4096, backing: broken }), (e: unknown) => {
      assert.ok(e instanceof TypeError, kind);
      assert.match(e.message, phrase("The Arena's", "is not a usable Allocator"), kind);
      return true;
    });
    const ended = wrap(Object.assign(refusingBacking(proto ?? {}), {
      tryAlloc: () => {
        throw new AllocationError("use-after-free", "Cannot allocate: it is gone");
      },
    }));
    assert.throws(() => new Arena({ capacity: 4096, backing: ended }), (e: unknown) => {
      assert.ok(e instanceof AllocationError && e.category === "use-after-free", kind);
      assert.match(e.message, phrase("The Arena cannot take a 4096-byte chunk: its", "refused it"), kind);
      return true;
    });
  }
});
