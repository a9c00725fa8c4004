// Bad input to the arrays (issue 10): wrong index types, record values that do
// not fit their layout, views of the wrong kind, `out` arrays that lie, and
// arrays whose storage is gone. Each row gets its documented error class,
// makes no native call, and leaves the array as it was (`after`).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  Arena,
  DynamicArray,
  SharedDynamicArray,
  SIMDArray,
  struct,
  SystemAllocator,
  uniformArray,
  vertexArray,
} from "../../mod.ts";
import { badInputTable } from "../_bad_input.ts";
import { spyBlocks } from "../fixtures/block_spy.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const Item = struct({ id: "u32", pos: "f32x3" });
type ItemRecord = { id: number; pos: number[] };
const Small = struct({ a: "i8", b: "u16", c: "i32", d: "u64", e: "f32" });

/** A live array of one Item, and a check that it still holds exactly that and works. */
function items(): DynamicArray<ItemRecord> {
  const array = new DynamicArray<ItemRecord>(Item);
  array.push({ id: 42, pos: [1, 2, 3] });
  return array;
}
function unchanged(array: DynamicArray<ItemRecord>): void {
  assert.equal(array.length, 1);
  assert.deepEqual(array.get(0), { id: 42, pos: [1, 2, 3] });
  assert.deepEqual([...array.bytes.subarray(4, 16)], new Array(12).fill(0), "padding still zero");
  array.push({ id: 1, pos: [0, 0, 0] });
  array.free();
}

// ---------------------------------------------------------------- index types (TypeError) and values (RangeError)

const INDEXES: [string, unknown, typeof TypeError | typeof RangeError][] = [
  ['"0"', "0", TypeError],
  ["0n", 0n, TypeError],
  ["null", null, TypeError],
  ["{}", {}, TypeError],
  ["undefined", undefined, TypeError],
  ["an object whose valueOf gives 0", { valueOf: () => 0 }, TypeError],
  ["-1", -1, RangeError],
  ["0.5", 0.5, RangeError],
  ["NaN", NaN, RangeError],
  ["Infinity", Infinity, RangeError],
  ["1 (the length)", 1, RangeError],
];

badInputTable<DynamicArray<ItemRecord>>(
  "DynamicArray index",
  INDEXES.flatMap(([label, index, expect]) => [
    { name: `get(${label})`, arrange: items, act: (a) => a.get(any(index)), expect, after: unchanged },
    {
      name: `set(${label}, a record)`,
      arrange: items,
      act: (a) => a.set(any(index), { id: 7, pos: [9, 9, 9] }),
      expect,
      after: unchanged,
    },
    { name: `remove(${label})`, arrange: items, act: (a) => a.remove(any(index)), expect, after: unchanged },
    { name: `swapRemove(${label})`, arrange: items, act: (a) => a.swapRemove(any(index)), expect, after: unchanged },
  ]),
);

function shared(): SharedDynamicArray<number> {
  const array = new SharedDynamicArray<number>("f64", { maxCapacity: 8, timeoutMs: 50 });
  array.push(1.5);
  return array;
}

badInputTable<SharedDynamicArray<number>>(
  "SharedDynamicArray index",
  [
    // A callback to hold() would never run, and the lock would stay taken: refused, the lock left free.
    ...[[() => {}], [undefined], [1, 2]].map((args) => ({
      name: `hold(${args.map(String).join(", ")})`,
      arrange: shared,
      act: (a: SharedDynamicArray<number>) => any(a).hold(...args),
      expect: TypeError,
      after: (a: SharedDynamicArray<number>) => assert.equal(a.push(3), 2, "the lock is free"),
    })),
  ].concat(INDEXES.flatMap(([label, index, expect]) => [
    {
      name: `get(${label})`,
      arrange: shared,
      act: (a) => a.get(any(index)),
      expect,
      after: (a) => assert.deepEqual(a.toArray(), [1.5]),
    },
    {
      name: `set(${label}, 2)`,
      arrange: shared,
      act: (a) => a.set(any(index), 2),
      expect,
      after: (a) => {
        assert.deepEqual(a.toArray(), [1.5]);
        assert.equal(a.push(3), 2, "the lock was released");
      },
    },
  ])),
);

// ---------------------------------------------------------------- record values

const VALUES: [string, unknown, typeof TypeError | typeof RangeError][] = [
  ["a misspelled field (poss)", { id: 7, poss: [1, 2, 3] }, TypeError],
  ["an unknown extra field", { id: 7, pos: [1, 2, 3], extra: 1 }, TypeError],
  ["a missing field", { id: 7 }, TypeError],
  ["a field holding undefined", { id: 7, pos: undefined }, TypeError],
  ["a number for the record", 7, TypeError],
  ["null for the record", null, TypeError],
  ["an array for the record", [7, [1, 2, 3]], TypeError],
  ["a string id", { id: "7", pos: [1, 2, 3] }, TypeError],
  ["a bigint id", { id: 7n, pos: [1, 2, 3] }, TypeError],
  ["a u32 id of -1", { id: -1, pos: [1, 2, 3] }, RangeError],
  ["a u32 id of 2^32", { id: 2 ** 32, pos: [1, 2, 3] }, RangeError],
  ["a u32 id of 1.5", { id: 1.5, pos: [1, 2, 3] }, RangeError],
  ["a u32 id of NaN", { id: NaN, pos: [1, 2, 3] }, RangeError],
  ["2 floats for an f32x3", { id: 7, pos: [9, 9] }, RangeError],
  ["4 floats for an f32x3", { id: 7, pos: [9, 9, 9, 9] }, RangeError],
  ["a string in an f32x3", { id: 7, pos: [9, "9", 9] }, TypeError],
  ["a hole in an f32x3", { id: 7, pos: [9, , 9] }, TypeError],
  ["a number for an f32x3", { id: 7, pos: 9 }, TypeError],
  ["a DataView for an f32x3", { id: 7, pos: new DataView(new ArrayBuffer(12)) }, TypeError],
  ["a BigInt64Array for an f32x3", { id: 7, pos: new BigInt64Array(3) }, TypeError],
  ["a Float32Array of 2 for an f32x3", { id: 7, pos: new Float32Array(2) }, RangeError],
];

badInputTable<DynamicArray<ItemRecord>>(
  "DynamicArray record",
  VALUES.flatMap(([label, value, expect]) => [
    { name: `push(${label})`, arrange: items, act: (a) => a.push(any(value)), expect, after: unchanged },
    { name: `set(0, ${label})`, arrange: items, act: (a) => a.set(0, any(value)), expect, after: unchanged },
    {
      name: `pushMany([good, ${label}])`,
      arrange: items,
      act: (a) => a.pushMany([{ id: 1, pos: [0, 0, 0] }, any(value)]),
      expect,
      after: unchanged,
    },
  ]),
);

badInputTable<SharedDynamicArray<ItemRecord>>(
  "SharedDynamicArray record",
  VALUES.flatMap(([label, value, expect]) => {
    const arrange = () => {
      const array = new SharedDynamicArray<ItemRecord>(Item, { maxCapacity: 8, timeoutMs: 50 });
      array.push({ id: 42, pos: [1, 2, 3] });
      return array;
    };
    const after = (a: SharedDynamicArray<ItemRecord>) => {
      assert.deepEqual(a.toArray(), [{ id: 42, pos: [1, 2, 3] }]);
      assert.equal(a.push({ id: 1, pos: [0, 0, 0] }), 2, "the lock was released");
    };
    return [
      { name: `push(${label})`, arrange, act: (a) => a.push(any(value)), expect, after },
      { name: `set(0, ${label})`, arrange, act: (a) => a.set(0, any(value)), expect, after },
      {
        name: `pushMany([good, ${label}])`,
        arrange,
        act: (a) => a.pushMany([{ id: 1, pos: [0, 0, 0] }, any(value)]),
        expect,
        after,
      },
    ];
  }),
);

// ---------------------------------------------------------------- views over freed memory as values (use-after-free)

// A view over a detached buffer (its memory was released) given where a value
// goes is a use-after-free, whatever else is wrong with it (its length reads 0).
function detached<T extends ArrayBufferView>(view: T): T {
  (view.buffer as ArrayBuffer).transfer(0);
  return view;
}

const FREED_VALUES: [string, unknown][] = [
  ["a detached Float32Array of 3 for an f32x3", { id: 7, pos: detached(new Float32Array(3)) }],
  ["a detached Float64Array of 3 for an f32x3", { id: 7, pos: detached(new Float64Array(3)) }],
  ["a detached DataView for an f32x3", { id: 7, pos: detached(new DataView(new ArrayBuffer(12))) }],
  ["a detached Uint32Array for a u32", { id: detached(new Uint32Array(1)), pos: [1, 2, 3] }],
];

badInputTable<DynamicArray<ItemRecord>>(
  "DynamicArray record with a view over freed memory",
  FREED_VALUES.flatMap(([label, value]) => [
    {
      name: `push(${label})`,
      arrange: items,
      act: (a) => a.push(any(value)),
      expect: "use-after-free",
      after: unchanged,
    },
    {
      name: `set(0, ${label})`,
      arrange: items,
      act: (a) => a.set(0, any(value)),
      expect: "use-after-free",
      after: unchanged,
    },
    {
      name: `pushMany([good, ${label}])`,
      arrange: items,
      act: (a) => a.pushMany([{ id: 1, pos: [0, 0, 0] }, any(value)]),
      expect: "use-after-free",
      after: unchanged,
    },
  ]),
);

badInputTable<SharedDynamicArray<ItemRecord>>(
  "SharedDynamicArray record with a view over freed memory",
  FREED_VALUES.flatMap(([label, value]) => {
    const arrange = () => {
      const array = new SharedDynamicArray<ItemRecord>(Item, { maxCapacity: 8, timeoutMs: 50 });
      array.push({ id: 42, pos: [1, 2, 3] });
      return array;
    };
    const after = (a: SharedDynamicArray<ItemRecord>) => {
      assert.deepEqual(a.toArray(), [{ id: 42, pos: [1, 2, 3] }]);
      assert.equal(a.push({ id: 1, pos: [0, 0, 0] }), 2, "the lock was released");
    };
    return [
      { name: `push(${label})`, arrange, act: (a) => a.push(any(value)), expect: "use-after-free", after },
      { name: `set(0, ${label})`, arrange, act: (a) => a.set(0, any(value)), expect: "use-after-free", after },
      {
        name: `pushMany([good, ${label}])`,
        arrange,
        act: (a) => a.pushMany([{ id: 1, pos: [0, 0, 0] }, any(value)]),
        expect: "use-after-free",
        after,
      },
    ];
  }),
);

test("pushMany of a list holding a view over freed memory names the element", () => {
  using array = items();
  assert.throws(
    () => array.pushMany([{ id: 1, pos: [0, 0, 0] }, any(FREED_VALUES[0][1])]),
    (e: unknown) =>
      e instanceof AllocationError && e.category === "use-after-free" && /values\[1\]/.test(e.message) &&
      /field 'pos'/.test(e.message),
  );
  assert.equal(array.length, 1);
});

badInputTable<unknown>("SharedDynamicArray.attach of freed memory", [
  {
    name: "attach(a detached ArrayBuffer)",
    act: () => SharedDynamicArray.attach(any(detached(new Uint8Array(64)).buffer), "f64"),
    expect: "use-after-free",
  },
  {
    name: "attach(a view over a detached ArrayBuffer)",
    act: () => SharedDynamicArray.attach(any(detached(new Uint8Array(64))), "f64"),
    expect: "use-after-free",
  },
  {
    name: "attach(an ArrayBuffer)",
    act: () => SharedDynamicArray.attach(any(new ArrayBuffer(64)), "f64"),
    expect: TypeError,
  },
  {
    name: "attach(a fixed-length SharedArrayBuffer)",
    act: () => SharedDynamicArray.attach(new SharedArrayBuffer(64), "f64"),
    expect: TypeError,
  },
]);

const SCALARS: [string, string, unknown, typeof TypeError | typeof RangeError][] = [
  ["i8", "a", -129, RangeError],
  ["i8", "a", 128, RangeError],
  ["u16", "b", 65536, RangeError],
  ["u16", "b", -1, RangeError],
  ["i32", "c", 2 ** 31, RangeError],
  ["i32", "c", -(2 ** 31) - 1, RangeError],
  ["u64", "d", -1n, RangeError],
  ["u64", "d", 2n ** 64n, RangeError],
  ["u64", "d", 1.5, RangeError],
  ["u64", "d", "1", TypeError],
  ["f32", "e", "1", TypeError],
  ["f32", "e", true, TypeError],
];

badInputTable<DynamicArray<Record<string, unknown>>>(
  "DynamicArray integer range",
  SCALARS.map(([type, field, value, expect]) => ({
    name: `a ${type} field of ${typeof value === "bigint" ? `${value}n` : JSON.stringify(value)}`,
    arrange: () => new DynamicArray<Record<string, unknown>>(Small),
    act: (a) => a.push({ a: 0, b: 0, c: 0, d: 0n, e: 0, [field]: value }),
    expect,
    after: (a) => {
      assert.equal(a.length, 0);
      a.free();
    },
  })),
);

badInputTable<DynamicArray<number>>("DynamicArray scalars", [
  {
    name: "u8 push(300)",
    arrange: () => new DynamicArray<number>("u8"),
    act: (a) => a.push(300),
    expect: RangeError,
    after: (a) => assert.equal(a.length, 0),
  },
  {
    name: "u8 pushMany([1, 300])",
    arrange: () => new DynamicArray<number>("u8"),
    act: (a) => a.pushMany([1, 300]),
    expect: RangeError,
    after: (a) => assert.equal(a.length, 0),
  },
  {
    name: "i16 push('1')",
    arrange: () => new DynamicArray<number>("i16"),
    act: (a) => a.push(any("1")),
    expect: TypeError,
    after: (a) => assert.equal(a.length, 0),
  },
  {
    name: "pushMany('abc')",
    arrange: () => new DynamicArray<number>("u8"),
    act: (a) => a.pushMany(any("abc")),
    expect: TypeError,
  },
  {
    name: "pushMany of 3 bytes into 4-byte elements",
    arrange: () => new DynamicArray<number>("f32"),
    act: (a) => a.pushMany(new Uint8Array(3)),
    expect: RangeError,
  },
  {
    name: "new DynamicArray('u8', { wrap: 1 })",
    act: () => new DynamicArray("u8", { wrap: any(1) }),
    expect: TypeError,
  },
  {
    name: "new SharedDynamicArray('u8', { maxCapacity: 1, wrap: 'yes' })",
    act: () => new SharedDynamicArray("u8", { maxCapacity: 1, wrap: any("yes") }),
    expect: TypeError,
  },
  { name: "vertexArray(Vertex, { wrap: 0 })", act: () => vertexArray(Item, { wrap: any(0) }), expect: TypeError },
  { name: "uniformArray(Item, { wrap: null })", act: () => uniformArray(Item, { wrap: any(null) }), expect: TypeError },
]);

// ---------------------------------------------------------------- view()

badInputTable<DynamicArray<ItemRecord>>("DynamicArray view", [
  { name: "view(Array)", arrange: items, act: (a) => a.view(any(Array)), expect: TypeError, after: unchanged },
  {
    name: "view(ArrayBuffer)",
    arrange: items,
    act: (a) => a.view(any(ArrayBuffer)),
    expect: TypeError,
    after: unchanged,
  },
  {
    name: "view(a subclass of Float32Array)",
    arrange: items,
    act: (a) => a.view(class extends Float32Array {}),
    expect: TypeError,
    after: unchanged,
  },
  {
    name: "view(Float64Array) of 20 bytes",
    arrange: () => {
      const a = new DynamicArray<number>("u32");
      a.pushMany([1, 2, 3, 4, 5]);
      return a as unknown as DynamicArray<ItemRecord>;
    },
    act: (a) => a.view(Float64Array),
    expect: RangeError,
  },
]);

// ---------------------------------------------------------------- SIMDArray arguments

function simd(): SIMDArray {
  const array = new SIMDArray("f32");
  array.pushMany([1, 2, 3]);
  return array;
}
function simdUnchanged(array: SIMDArray): void {
  assert.deepEqual([...array], [1, 2, 3]);
  array.free();
}
function simd4(): SIMDArray {
  const array = new SIMDArray("f32x4");
  array.push([1, 2, 3, 4]);
  return array;
}
function simd4Unchanged(array: SIMDArray): void {
  assert.deepEqual([...array], [[1, 2, 3, 4]]);
  array.free();
}
class LongFloats extends Float32Array {
  override get length(): number {
    return 1 << 20;
  }
}
function lyingOut(): Float32Array {
  const out = new Float32Array(1);
  Object.defineProperty(out, "length", { value: 1 << 20 });
  return out;
}

badInputTable<SIMDArray>("SIMDArray", [
  {
    name: "magnitudes(out) with a 1-float out whose own length says 2^20",
    arrange: simd,
    act: (a) => a.magnitudes(lyingOut()),
    expect: RangeError,
    after: simdUnchanged,
  },
  {
    name: "magnitudes(out) with a Float32Array subclass whose length says 2^20",
    arrange: simd,
    act: (a) => a.magnitudes(new LongFloats(1)),
    expect: RangeError,
    after: simdUnchanged,
  },
  {
    name: "magnitudes(out) with an object made from Float32Array.prototype",
    arrange: simd,
    act: (a) => a.magnitudes(Object.create(Float32Array.prototype)),
    expect: TypeError,
    after: simdUnchanged,
  },
  {
    name: "magnitudes(out) with a Proxy of a Float32Array",
    arrange: simd,
    act: (a) => a.magnitudes(new Proxy(new Float32Array(3), {})),
    expect: TypeError,
    after: simdUnchanged,
  },
  {
    name: "magnitudes(out) with a detached Float32Array",
    arrange: simd,
    act: (a) => {
      const out = new Float32Array(3);
      out.buffer.transfer(0);
      return a.magnitudes(out);
    },
    expect: "use-after-free",
    after: simdUnchanged,
  },
  {
    name: "magnitudes(out) with a detached Float64Array (the wrong type too)",
    arrange: simd,
    act: (a) => a.magnitudes(any(detached(new Float64Array(3)))),
    expect: "use-after-free",
    after: simdUnchanged,
  },
  {
    name: "dot(other, out) with a detached Float32Array",
    arrange: simd,
    act: (a) => a.dot(a, detached(new Float32Array(3))),
    expect: "use-after-free",
    after: simdUnchanged,
  },
  {
    name: "push(a detached Float32Array) to an f32 array",
    arrange: simd,
    act: (a) => a.push(any(detached(new Float32Array(1)))),
    expect: "use-after-free",
    after: simdUnchanged,
  },
  {
    name: "push(a detached Float32Array of 4) to an f32x4 array",
    arrange: simd4,
    act: (a) => a.push(any(detached(new Float32Array(4)))),
    expect: "use-after-free",
    after: simd4Unchanged,
  },
  {
    name: "set(0, a detached Float32Array of 4) in an f32x4 array",
    arrange: simd4,
    act: (a) => a.set(0, any(detached(new Float32Array(4)))),
    expect: "use-after-free",
    after: simd4Unchanged,
  },
  {
    name: "pushMany([good, a detached Float32Array of 4]) to an f32x4 array",
    arrange: simd4,
    act: (a) => a.pushMany([[1, 1, 1, 1], any(detached(new Float32Array(4)))]),
    expect: "use-after-free",
    after: simd4Unchanged,
  },
  {
    name: "pushMany(a detached Float32Array) to an f32x4 array",
    arrange: simd4,
    act: (a) => a.pushMany(detached(new Float32Array(4))),
    expect: "use-after-free",
    after: simd4Unchanged,
  },
  {
    name: "dot(other, out) with an out whose own length says 2^20",
    arrange: simd,
    act: (a) => a.dot(a, lyingOut()),
    expect: RangeError,
    after: simdUnchanged,
  },
  {
    name: "magnitudes(Float64Array)",
    arrange: simd,
    act: (a) => a.magnitudes(any(new Float64Array(3))),
    expect: TypeError,
    after: simdUnchanged,
  },
  { name: "add(a Proxy of a SIMDArray)", arrange: simd, act: (a) => a.add(new Proxy(a, {})), expect: TypeError },
  { name: "axpy('2', a)", arrange: simd, act: (a) => a.axpy(any("2"), a), expect: TypeError, after: simdUnchanged },
  {
    name: "dot(an f32x2 array of the same length)",
    arrange: () => {
      const a = simd();
      const other = new SIMDArray("f32x2");
      other.pushMany([[1, 1], [1, 1], [1, 1]]);
      return Object.assign(a, { other });
    },
    act: (a) => a.dot(any(a).other),
    expect: RangeError,
    after: simdUnchanged,
  },
  { name: "new SIMDArray('toString')", act: () => new SIMDArray(any("toString")), expect: TypeError },
  { name: "new SIMDArray({})", act: () => new SIMDArray(any({})), expect: TypeError },
]);

// ---------------------------------------------------------------- storage gone (use-after-free, never the engine's TypeError)

function freed(): SIMDArray {
  const array = simd();
  array.free();
  return array;
}
function releasedBySystem(): SIMDArray {
  const allocator = new SystemAllocator();
  const spy = spyBlocks(allocator);
  const array = new SIMDArray("f32", { allocator });
  array.pushMany([1, 2, 3]);
  allocator.free(spy.last()); // the allocator's own view of the storage, as a wrapper allocator could keep
  return array;
}
function releasedByScope(): SIMDArray {
  const arena = new Arena({ capacity: 1 << 16 });
  const scope = arena.scope();
  const array = new SIMDArray("f32", { allocator: arena });
  array.pushMany([1, 2, 3]);
  array.sum();
  scope.end();
  return array;
}

const GONE: [string, (a: SIMDArray) => unknown][] = [
  ["bytes", (a) => a.bytes],
  ["address", (a) => a.address],
  ["sum()", (a) => a.sum()],
  ["magnitudes()", (a) => a.magnitudes()],
  ["scale(2)", (a) => a.scale(2)],
  ["push(1)", (a) => a.push(1)],
  ["get(0)", (a) => a.get(0)],
  ["view(Float32Array)", (a) => a.view(Float32Array)],
  ["[...array]", (a) => [...a]],
  ["snapshot()", (a) => a.snapshot()],
];

for (
  const [how, arrange] of [["after free()", freed], ["after SystemAllocator.free(its block)", releasedBySystem], [
    "after its Arena scope ended",
    releasedByScope,
  ]] as const
) {
  badInputTable<SIMDArray>(
    `SIMDArray ${how}`,
    GONE.map(([member, act]) => ({
      name: member,
      arrange,
      act,
      expect: "use-after-free",
      after: (a) => {
        assert.equal(a.length, 0);
        a.free(); // does nothing, and does not throw
      },
    })),
  );
}
