// Messages a new user read: each says what happened in plain words (an index
// into an empty array, which side of a pair holds what, "an i8"), and a
// missing field is called missing even when Object.prototype has a member of
// that name.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  DynamicArray,
  FreeListAllocator,
  PoolAllocator,
  SharedDynamicArray,
  SIMDArray,
  StackAllocator,
  struct,
  type StructFieldType,
  SystemAllocator,
} from "../../mod.ts";
import { withoutCodegen } from "../_helpers.ts";

const paths = [["generated", <T>(make: () => T) => make()], ["DataView", withoutCodegen]] as const;

test("an index into an empty array says the array is empty, not that 5 is no integer", () => {
  using a = new DynamicArray<number>("f32");
  assert.throws(
    () => a.get(5),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === "Cannot get an element of a DynamicArray as it is empty: no index is valid (current value is 5)",
  );
  const s = new SharedDynamicArray<number>("u8", { maxCapacity: 4 });
  assert.throws(() => s.set(0, 1), /as it is empty: no index is valid \(current value is 0\)$/);
  a.push(1);
  assert.throws(() => a.get(5), /as 'index' must be an integer from 0 to 0: current value is 5$/);
});

test("type names take the article they are read with: an i8, an f32, a u8, a bool", () => {
  const cases = [
    ["i8", 1.5, "an i8"],
    ["i16", "x", "an i16"],
    ["i32", 2 ** 40, "an i32"],
    ["i64", "x", "an i64"],
    ["f16", "x", "an f16"],
    ["f32", "x", "an f32"],
    ["f64", "x", "an f64"],
    ["u8", 300, "a u8"],
    ["u64", -1, "a u64"],
    ["bool", 1, "a bool"],
  ] as const;
  for (const [label, run] of paths) {
    for (const [type, value, expected] of cases) {
      const array = run(() => new DynamicArray(struct({ n: type })));
      assert.throws(
        () => array.push({ n: value } as never),
        (e: unknown) => e instanceof Error && e.message.startsWith(`Cannot store field 'n' as ${expected} must be`),
        `${label} ${type}`,
      );
      const scalar = run(() => new DynamicArray(type));
      assert.throws(() => scalar.push(value as never), new RegExp(` as ${expected} must be`), `${label} ${type}`);
      array.free();
      scalar.free();
    }
  }
});

test("a missing field named like an Object.prototype member is missing; the record's own class may define it", () => {
  for (const [label, run] of paths) {
    // (Names Object.prototype has: typed through a plain record.)
    const Layout = struct({ toString: "u32", valueOf: "f32", x: "u8" } as Record<string, StructFieldType>);
    const a = run(() => new DynamicArray<Record<string, number>>(Layout));
    assert.throws(
      () => a.push({ valueOf: 1, x: 2 } as never),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message === "Cannot store the record as field 'toString' is missing (the fields are toString, valueOf, x)",
      label,
    );
    assert.throws(() => a.push({ toString: 1, x: 2 } as never), /field 'valueOf' is missing/, label);
    const Nested = struct({
      inner: struct({ constructor: "u8", hasOwnProperty: "u8" } as Record<string, StructFieldType>),
    });
    const n = run(() => new DynamicArray(Nested));
    assert.throws(() => n.push({ inner: { constructor: 1 } } as never), /field 'inner.hasOwnProperty' is missing/);
    const Outer = struct({ constructor: struct({ a: "u8" }), b: "u8" } as Record<string, StructFieldType>);
    const o = run(() => new DynamicArray(Outer));
    assert.throws(
      () => o.push({ b: 1 } as never),
      /^TypeError: Cannot store the record as field 'constructor' is missing/,
    );
    o.free();
    // Getters on the record's own class are fields; a method there is a wrong value, not a missing one.
    class Point {
      get toString(): number {
        return 3;
      }
      get valueOf(): number {
        return 4;
      }
      x = 5;
    }
    assert.equal(a.push(new Point() as never), 1, label);
    assert.deepEqual(a.get(0), { toString: 3, valueOf: 4, x: 5 }, label);
    class Methods {
      toString = 1;
      x = 5;
      valueOf(): number {
        return 4;
      }
    }
    assert.throws(
      () => a.push(new Methods() as never),
      /field 'valueOf' as an f32 must be a number: got function valueOf/,
      label,
    );
    assert.equal(a.length, 1);
    a.free();
    n.free();
  }
});

// An Allocator written in JavaScript over a SystemAllocator whose resize, or also its alloc, throws `error`.
function refusing(error: () => Error, allocToo = false): Allocator {
  const system = new SystemAllocator();
  return {
    kind: "system",
    alloc: (size: number, align?: number) => {
      if (allocToo) throw error();
      return system.alloc(size, align);
    },
    tryAlloc: (size: number, align?: number) => system.tryAlloc(size, align),
    array: () => {
      throw new Error("not used");
    },
    free: (view: ArrayBufferView) => system.free(view),
    resize: () => {
      throw error();
    },
    owns: (view: ArrayBufferView) => system.owns(view),
    stats: () => system.stats(),
  } as unknown as Allocator;
}

interface Refusal {
  /** The array's operation the message names. */
  op: string;
  /** What the allocator was asked for, as the message says it. */
  asked: RegExp;
  category: string;
  /** The allocator's own error (the cause) is of this class. */
  cause: abstract new (...args: never[]) => Error;
  /**
   * An array whose next `run` makes its allocator refuse, how the array must read after, and what ends the
   * allocator afterwards (the array is freed before, or with a stack, after: a stack frees only its top block).
   */
  make(): { array: DynamicArray<unknown>; run(): unknown; values: unknown[]; dispose?(): void; stack?: boolean };
}

const REFUSALS: Record<string, Refusal> = {
  "a StackAllocator: push, the storage is not the newest block": {
    op: "push to a DynamicArray",
    asked: /its StackAllocator cannot grow its storage from 32 to 64 bytes in place/,
    category: "unsupported",
    cause: AllocationError,
    make: () => {
      const stack = new StackAllocator({ capacity: 1 << 16 });
      const array = new DynamicArray<number>("f64", { allocator: stack, capacity: 4 });
      array.pushMany([0, 1, 2, 3]);
      stack.alloc(64);
      return { array, run: () => array.push(4), values: [0, 1, 2, 3], dispose: () => stack.dispose(), stack: true };
    },
  },
  "a StackAllocator: compact(), the storage is not the newest block": {
    op: "compact a DynamicArray",
    asked: /its StackAllocator cannot shrink its storage from 64 to 16 bytes in place/,
    category: "unsupported",
    cause: AllocationError,
    make: () => {
      const stack = new StackAllocator({ capacity: 1 << 16 });
      const array = new DynamicArray<number>("f64", { allocator: stack, capacity: 8 });
      array.pushMany([5, 6]);
      stack.alloc(64);
      return { array, run: () => array.compact(), values: [5, 6], dispose: () => stack.dispose(), stack: true };
    },
  },
  "a StackAllocator: a SIMDArray's push": {
    op: "push to a SIMDArray",
    asked: /its StackAllocator cannot grow its storage from 16 to 32 bytes in place/,
    category: "unsupported",
    cause: AllocationError,
    make: () => {
      const stack = new StackAllocator({ capacity: 1 << 16 });
      const array = new SIMDArray("f32x4", { allocator: stack, capacity: 1 });
      array.push([1, 2, 3, 4]);
      stack.alloc(64);
      return {
        array: array as DynamicArray<unknown>,
        run: () => array.push([5, 6, 7, 8]),
        values: [[1, 2, 3, 4]],
        dispose: () => stack.dispose(),
        stack: true,
      };
    },
  },
  "a fixed-capacity FreeListAllocator, full: reserve()": {
    op: "reserve room in a DynamicArray",
    asked: /its FreeListAllocator cannot grow its storage from 32 to 80000 bytes/,
    category: "out-of-memory",
    cause: AllocationError,
    make: () => {
      const heap = new FreeListAllocator({ capacity: 4096, growth: "fixed" });
      const array = new DynamicArray<number>("f64", { allocator: heap, capacity: 4 });
      array.push(9);
      return { array, run: () => array.reserve(10_000), values: [9], dispose: () => heap.dispose() };
    },
  },
  "a fixed-capacity FreeListAllocator, full: set() copies the storage a snapshot shares": {
    op: "set an element of a DynamicArray",
    asked: /its FreeListAllocator cannot give it 2400 bytes for a copy of the storage it shares with a snapshot/,
    category: "out-of-memory",
    cause: AllocationError,
    make: () => {
      const heap = new FreeListAllocator({ capacity: 4096, growth: "fixed" });
      const array = new DynamicArray<number>("f64", { allocator: heap, capacity: 300 });
      array.push(1);
      const snapshot = array.snapshot();
      return {
        array,
        run: () => array.set(0, 2),
        values: [1],
        dispose: () => {
          snapshot.free();
          heap.dispose();
        },
      };
    },
  },
  "a fixed-capacity FreeListAllocator, full: snapshot() of an array whose bytes were handed out": {
    op: "take a snapshot of a DynamicArray",
    asked: /its FreeListAllocator cannot give the snapshot 2400 bytes for a copy of the storage \(its bytes were/,
    category: "out-of-memory",
    cause: AllocationError,
    make: () => {
      const heap = new FreeListAllocator({ capacity: 4096, growth: "fixed" });
      const array = new DynamicArray<number>("f64", { allocator: heap, capacity: 300 });
      array.push(3);
      void array.bytes; // exposed: a snapshot copies at once
      return { array, run: () => array.snapshot(), values: [3], dispose: () => heap.dispose() };
    },
  },
  "a PoolAllocator whose blocks are too small: push": {
    op: "push to a DynamicArray",
    asked: /its PoolAllocator cannot grow its storage from 64 to 128 bytes/,
    category: "out-of-memory",
    cause: RangeError,
    make: () => {
      const pool = new PoolAllocator({ blockSize: 64 });
      const array = new DynamicArray<number>("f64", { allocator: pool, capacity: 8 });
      array.pushMany([0, 1, 2, 3, 4, 5, 6, 7]);
      return { array, run: () => array.push(8), values: [0, 1, 2, 3, 4, 5, 6, 7], dispose: () => pool.dispose() };
    },
  },
  "an Allocator in JavaScript throwing a RangeError: push": {
    op: "push to a DynamicArray",
    asked: /its allocator \(an object\) cannot grow its storage from 16 to 32 bytes/,
    category: "out-of-memory",
    cause: RangeError,
    make: () => {
      const array = new DynamicArray<number>("f64", {
        allocator: refusing(() => new RangeError("no block that large")),
        capacity: 2,
      });
      array.pushMany([1, 2]);
      return { array, run: () => array.push(3), values: [1, 2] };
    },
  },
  "an Allocator in JavaScript throwing AllocationError(limit-exceeded): pushMany": {
    op: "push many to a DynamicArray",
    asked: /its allocator \(an object\) cannot grow its storage from 16 to 80 bytes/,
    category: "limit-exceeded",
    cause: AllocationError,
    make: () => {
      const array = new DynamicArray<number>("f64", {
        allocator: refusing(() => new AllocationError("limit-exceeded", "over the budget")),
        capacity: 2,
      });
      array.pushMany([1, 2]);
      return { array, run: () => array.pushMany([3, 4, 5, 6, 7, 8, 9, 10]), values: [1, 2] };
    },
  },
  "an Allocator in JavaScript throwing AllocationError(out-of-memory) on alloc: a snapshot's copy on pop()": {
    op: "pop from a DynamicArray",
    asked: /its allocator \(an object\) cannot give it 16 bytes for a copy of the storage it shares with a snapshot/,
    category: "out-of-memory",
    cause: AllocationError,
    make: () => {
      let refuse = false;
      const system = new SystemAllocator();
      const allocator = {
        ...refusing(() => new Error("not used")),
        alloc: (size: number, align?: number) => {
          if (refuse) throw new AllocationError("out-of-memory", "nothing left");
          return system.alloc(size, align);
        },
        free: (view: ArrayBufferView) => system.free(view),
        owns: (view: ArrayBufferView) => system.owns(view),
      } as unknown as Allocator;
      const array = new DynamicArray<number>("f64", { allocator, capacity: 2 });
      array.pushMany([1, 2]);
      const snapshot = array.snapshot();
      refuse = true;
      return { array, run: () => array.pop(), values: [1, 2], dispose: () => snapshot.free() };
    },
  },
};

// Frees the array and ends its allocator (a stack first: it frees only its top block, and its end releases the array).
function end(made: ReturnType<Refusal["make"]>): void {
  if (made.stack !== true) made.array.free();
  made.dispose?.();
  made.array.free(); // a second free does nothing; after a stack's end, the storage is gone already
}

test("an allocator's refusal while an array grows, shrinks or copies its storage names the array's operation", () => {
  for (const [name, refusal] of Object.entries(REFUSALS)) {
    const made = refusal.make();
    let thrown: unknown;
    try {
      made.run();
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof AllocationError, `${name}: threw ${thrown}`);
    assert.equal(thrown.category, refusal.category, `${name}: ${thrown.message}`);
    assert.ok(thrown.message.startsWith(`Cannot ${refusal.op}: `), `${name}: ${thrown.message}`);
    assert.match(thrown.message, refusal.asked, name);
    // The allocator's own error is the cause, and its reason is kept (without its own "Cannot <its call>: ").
    assert.ok(thrown.cause instanceof refusal.cause, `${name}: cause ${thrown.cause}`);
    const reason = (thrown.cause as Error).message.replace(/^Cannot [^:'"]*: /, "");
    assert.ok(thrown.message.includes(`(${reason})`), `${name}: ${thrown.message}`);
    assert.doesNotMatch(thrown.message, /Uint8Array\(/, name);
    // All or nothing: the array reads as before and still works.
    assert.deepEqual(made.array.toArray(), made.values, name);
    end(made);
  }
});

test("a stack's refusal to grow an array in place says what to do", () => {
  const made = REFUSALS["a StackAllocator: push, the storage is not the newest block"].make();
  assert.throws(
    () => made.run(),
    (e: unknown) =>
      e instanceof AllocationError &&
      e.message.startsWith(
        "Cannot push to a DynamicArray: its StackAllocator cannot grow its storage from 32 to 64 bytes in place " +
          "(it is block 1 of 2, and only the top block of a stack can change size)",
      ) && /reserve\(\)/.test(e.message),
  );
  end(made);
});

test("an allocator that cannot give a new array its storage: the message names the array, not alloc()", () => {
  using pool = new PoolAllocator({ blockSize: 64 });
  assert.throws(
    () => new DynamicArray<number>("f64", { allocator: pool, capacity: 100 }),
    (e: unknown) =>
      e instanceof AllocationError && e.category === "out-of-memory" && e.cause instanceof RangeError &&
      e.message.startsWith("Cannot create a DynamicArray: its PoolAllocator cannot give it 800 bytes of storage"),
  );
  // An allocator's own code that fails otherwise (a TypeError, a plain Error) is not a refusal: it goes on as it is.
  const bug = new TypeError("a bug in the allocator");
  const array = new DynamicArray<number>("f64", { allocator: refusing(() => bug), capacity: 1 });
  array.push(1);
  assert.throws(() => array.push(2), (e: unknown) => e === bug);
  array.free();
});

test("a SIMDArray's errors name SIMDArray from its constructor on, a subclass's included", () => {
  class Points extends SIMDArray {}
  for (const [label, make] of [["SIMDArray", SIMDArray], ["subclass", Points]] as const) {
    using pool = new PoolAllocator({ blockSize: 64 });
    assert.throws(
      () => new make("f32x4", { allocator: pool, capacity: 100 }),
      (e: unknown) =>
        e instanceof AllocationError && e.category === "out-of-memory" &&
        e.message.startsWith("Cannot create a SIMDArray: its PoolAllocator cannot give it 1600 bytes of storage"),
      label,
    );
    assert.throws(
      () => new make("f32", { capacity: -1 }),
      (e: unknown) => e instanceof RangeError && e.message.startsWith("Cannot create SIMDArray as 'capacity'"),
      label,
    );
    assert.throws(
      () => new make("f32", { alignment: 3 }),
      (e: unknown) => e instanceof RangeError && e.message.startsWith("Cannot create SIMDArray as 'alignment'"),
      label,
    );
    const array = new make("f32", { allocator: refusing(() => new AllocationError("out-of-memory", "no")) });
    assert.throws(() => array.get(0), /^RangeError: Cannot get an element of a SIMDArray as it is empty/, label);
    array.reserve(1); // (no growth: 16 fit)
    assert.throws(() => array.reserve(100), /^AllocationError: Cannot reserve room in a SIMDArray: /, label);
    const copy = array.snapshot();
    array.free();
    assert.throws(() => array.sum(), /^AllocationError: Cannot sum a SIMDArray after its free\(\)/, label);
    assert.throws(() => array.push(1), /^AllocationError: Cannot push to a SIMDArray after its free\(\)/, label);
    assert.throws(() => copy.get(0), /^RangeError: Cannot get an element of a SIMDArray as it is empty/, label);
    copy.free();
  }
  // A DynamicArray keeps its name, also one made between a SIMDArray's constructor and the one it calls (a
  // Proxy as new.target runs code there, when its "prototype" is read).
  using pool = new PoolAllocator({ blockSize: 64 });
  assert.throws(() => new DynamicArray<number>("f32x4", { allocator: pool, capacity: 100 }), /a DynamicArray:/);
  let inner: DynamicArray<number> | null = null;
  const target = new Proxy(SIMDArray, {
    get(t, key, receiver) {
      if (key === "prototype" && inner === null) inner = new DynamicArray<number>("f32");
      return Reflect.get(t, key, receiver);
    },
  });
  const outer = Reflect.construct(SIMDArray, ["f32"], target) as SIMDArray;
  assert.throws(() => inner!.get(0), /of a DynamicArray as it is empty/);
  assert.throws(() => outer.get(0), /of a SIMDArray as it is empty/);
  (inner as DynamicArray<number> | null)?.free();
  outer.free();
});
