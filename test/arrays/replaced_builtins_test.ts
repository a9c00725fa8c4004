// Built-ins a program replaces after memkit loaded (Array.prototype[Symbol.iterator], Function.prototype.call and
// .apply, Array.prototype's methods, index setters on Array.prototype, setters on Object.prototype) never run in
// the middle of an array operation, and never decide where memkit reads and writes (DESIGN §2 rule 5). Before:
// readRecord() walked a layout's fields with for…of (a replaced iterator ran inside remove() and left the length
// at -1), the DataView path called its captured methods through `.call` (a replaced call did the same), a layout's
// array types were destructured when an array compiled its layout (a replaced iterator made it use another
// element type: set(0) overwrote records 1 and 2, get(3) read past the storage), and vector fields were copied
// into `new Array(count)` by assignment (an index setter swallowed the values: a valid record was refused).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { type Allocator, DynamicArray, SharedDynamicArray, SIMDArray, struct, type StructLayout } from "../../mod.ts";
import { withoutCodegen } from "../_helpers.ts";
import {
  KNOWN_OUTSIDE,
  REPLACED_BUILTINS,
  trapLayout,
  type TrapRecord,
  trapRecord,
  withReplacedBuiltins,
} from "./_record_traps.ts";

// A replaced built-in that runs from another memkit file (the native boundary's `.call`, an allocator's
// bookkeeping: KNOWN_OUTSIDE) is counted apart; it must be one of those files. (What runs there is theirs to fix.)
function checkOutside(outside: string[], what: string): void {
  for (const entry of outside) {
    assert.ok(KNOWN_OUTSIDE.some((file) => entry.endsWith(`(${file})`)), `${what}: ${entry}`);
  }
}

type Op<A> = [name: string, run: (a: A) => unknown, expected: unknown, left: number[]];

/**
 * An allocator written in JavaScript that calls none of the replaced built-ins: an array that grows or copies
 * its storage runs its allocator, and memkit's own allocators' bookkeeping (src/alloc) is not what these tests
 * are about.
 */
function plainAllocator(): Allocator {
  return {
    alloc: (size: number) => new Uint8Array(size),
    resize(block: Uint8Array, size: number) {
      const next = new Uint8Array(size);
      for (let i = 0; i < block.length && i < size; i++) next[i] = block[i];
      return next;
    },
    free() {},
  } as unknown as Allocator;
}

const all = [0, 1, 2, 3];
const seven = trapRecord(7), eight = trapRecord(8);

const dynamicOps: Op<DynamicArray<TrapRecord>>[] = [
  ["get(1)", (a) => a.get(1), trapRecord(1), all],
  ["set(1)", (a) => a.set(1, seven), undefined, [0, 7, 2, 3]],
  ["push", (a) => a.push(seven), 5, [0, 1, 2, 3, 7]],
  ["pushMany", (a) => a.pushMany([seven, eight]), 6, [0, 1, 2, 3, 7, 8]],
  ["remove(0)", (a) => a.remove(0), trapRecord(0), [1, 2, 3]],
  ["swapRemove(0)", (a) => a.swapRemove(0), trapRecord(0), [3, 1, 2]],
  ["pop()", (a) => a.pop(), trapRecord(3), [0, 1, 2]],
  ["toArray()", (a) => a.toArray(), all.map(trapRecord), all],
  ["iteration", (a) => [...a], all.map(trapRecord), all],
  ["snapshot()", (a) => a.snapshot().toArray(), all.map(trapRecord), all],
  ["snapshot().remove(1)", (a) => a.snapshot().remove(1), trapRecord(1), all],
];

const layouts = [
  ["packed: DataView path", true, (f: () => unknown) => f()],
  ["aligned: generated path", false, (f: () => unknown) => f()],
  ["aligned, no code generation: DataView path", false, withoutCodegen],
] as const;

function check<A>(
  label: string,
  ops: Op<A>[],
  make: () => A,
  fill: (a: A) => void,
  read: (a: A) => TrapRecord[],
  clear: (a: A) => void,
  done: (a: A) => void,
): void {
  for (const kind of REPLACED_BUILTINS) {
    for (const [name, run, expected, left] of ops) {
      const what = `${label}, ${name}, replaced ${kind}`;
      const array = make();
      fill(array);
      // The first trap that runs clears the array: the state change an operation must not let happen in its middle.
      const { result, error, trapped, outside } = withReplacedBuiltins(() => run(array), () => clear(array), [kind]);
      assert.deepEqual(trapped, [], `${what}: no program code ran`);
      checkOutside(outside, what);
      assert.equal(error, undefined, `${what}: ${error}`);
      assert.deepEqual(result, expected, what);
      assert.deepEqual(read(array), left.map(trapRecord), `${what}: the array after`);
      done(array);
    }
  }
}

for (const [label, packed, make] of layouts) {
  test(`DynamicArray: built-ins replaced after load run not and change nothing (${label})`, () => {
    check(
      `DynamicArray, ${label}`,
      dynamicOps,
      () =>
        make(() =>
          new DynamicArray<TrapRecord>(trapLayout(packed), { capacity: 8, allocator: plainAllocator() })
        ) as DynamicArray<TrapRecord>,
      (a) => a.pushMany(all.map(trapRecord)),
      (a) => a.toArray(),
      (a) => a.clear(),
      (a) => a.free(),
    );
  });

  test(`DynamicArray: a push that grows the storage runs no replaced built-in (${label})`, () => {
    const grow: Op<DynamicArray<TrapRecord>>[] = [
      ["push (grows)", (a) => a.push(seven), 5, [0, 1, 2, 3, 7]],
      ["pushMany (grows)", (a) => a.pushMany([seven, eight]), 6, [0, 1, 2, 3, 7, 8]],
    ];
    check(
      `DynamicArray, ${label}`,
      grow,
      () =>
        make(() =>
          new DynamicArray<TrapRecord>(trapLayout(packed), { capacity: 4, allocator: plainAllocator() })
        ) as DynamicArray<TrapRecord>,
      (a) => a.pushMany(all.map(trapRecord)),
      (a) => a.toArray(),
      (a) => a.clear(),
      (a) => a.free(),
    );
  });

  test(`SharedDynamicArray: built-ins replaced after load run not and change nothing (${label})`, () => {
    const ops: Op<SharedDynamicArray<TrapRecord>>[] = [
      ["get(1)", (a) => a.get(1), trapRecord(1), all],
      ["set(1)", (a) => a.set(1, seven), undefined, [0, 7, 2, 3]],
      ["push", (a) => a.push(seven), 5, [0, 1, 2, 3, 7]],
      ["pushMany", (a) => a.pushMany([seven, eight]), 6, [0, 1, 2, 3, 7, 8]],
      ["pop()", (a) => a.pop(), trapRecord(3), [0, 1, 2]],
      ["toArray()", (a) => a.toArray(), all.map(trapRecord), all],
      ["iteration", (a) => [...a], all.map(trapRecord), all],
    ];
    check(
      `SharedDynamicArray, ${label}`,
      ops,
      () =>
        make(() =>
          new SharedDynamicArray<TrapRecord>(trapLayout(packed), { maxCapacity: 64, capacity: 4 })
        ) as SharedDynamicArray<TrapRecord>,
      (a) => a.pushMany(all.map(trapRecord)),
      (a) => a.toArray(),
      (a) => a.clear(),
      () => {},
    );
  });
}

test("a valid record is accepted whatever index setters Array.prototype has (packed: the checked path)", () => {
  // Before: stageField() copied a vector into `new Array(count)` by assignment, so the setter kept the values:
  // "Cannot store field 'v[0]' as an i16 must be a number: got undefined".
  const P = struct({ id: "u8", v: ["i16", 3] }, { packed: true });
  using a = new DynamicArray(P);
  const value = { id: 1, v: [1, 2, 3] };
  const run = withReplacedBuiltins(() => a.push(value), () => {}, ["index-setters"]);
  assert.equal(run.error, undefined, String(run.error));
  assert.deepEqual(run.trapped, []);
  assert.deepEqual(a.toArray(), [{ id: 1, v: [1, 2, 3] }]);
});

// The floats of `out` in a plain array (an index loop: spreading a Float32Array would run the array iterator).
function plain(out: Float32Array): number[] {
  const values: number[] = Object.setPrototypeOf([], null);
  for (let i = 0; i < out.length; i++) values[i] = out[i];
  return Object.setPrototypeOf(values, Array.prototype);
}

test("SIMDArray kernels run no replaced built-in and compute what they did", () => {
  const xs = [[1, 2, 3], [4, 5, 6], [-1, 0.5, 2], [0, 0, 3]];
  const ys = [[0.5, 1, 1.5], [2, 2, 2], [1, 1, 1], [-3, 4, 0]];
  const fresh = () => {
    const a = new SIMDArray("f32x3", { capacity: 8 });
    const b = new SIMDArray("f32x3", { capacity: 8 });
    a.pushMany(xs);
    b.pushMany(ys);
    return { a, b };
  };
  const ops: [string, (a: SIMDArray, b: SIMDArray) => unknown][] = [
    ["scale", (a) => a.scale(2)],
    ["add", (a, b) => a.add(b)],
    ["sub", (a, b) => a.sub(b)],
    ["axpy", (a, b) => a.axpy(2, b)],
    ["normalize", (a) => a.normalize()],
    ["magnitudes", (a) => plain(a.magnitudes())],
    ["dot", (a, b) => plain(a.dot(b))],
    ["sum", (a) => a.sum()],
  ];
  for (const [name, op] of ops) {
    // What the kernel gives without traps, and the array after.
    const plain = fresh();
    const expected = op(plain.a, plain.b);
    const after = plain.a.toArray();
    plain.a.free();
    plain.b.free();
    for (const kind of REPLACED_BUILTINS) {
      const what = `${name}, replaced ${kind}`;
      const { a, b } = fresh();
      const { result, error, trapped, outside } = withReplacedBuiltins(() => op(a, b), () => a.clear(), [kind]);
      assert.deepEqual(trapped, [], `${what}: no program code ran`);
      checkOutside(outside, what);
      assert.equal(error, undefined, `${what}: ${error}`);
      assert.deepEqual(result, expected, what);
      assert.deepEqual(a.toArray(), after, `${what}: the array after`);
      a.free();
      b.free();
    }
  }
});

// ------------------------------------------------------------------ layouts

const Small = struct({ x: "f64" });
const Big = struct({ a: ["f64", 8] }); // 64 bytes, where Small is 8

/** The layout's size and every field's offset, size and alignment, read without any trap installed. */
function shapeOf(layout: StructLayout<unknown>): unknown {
  const fields: Record<string, unknown> = {};
  for (const name of Object.keys(layout.fields)) {
    const { offset, size, align } = layout.fields[name];
    fields[name] = { offset, size, align };
  }
  return { size: layout.size, align: layout.align, fields };
}

const define = (target: object, key: PropertyKey, value: unknown) =>
  Object.defineProperty(target, key, { value, writable: true, configurable: true });

/**
 * Ways a program could try to change, after memkit loaded, the layout struct() computes or the one an array
 * compiles: each installs its replacement and returns what puts the original back.
 */
function forgers(): [string, () => () => void][] {
  const replace = (target: object, key: PropertyKey, make: (original: never) => unknown) => () => {
    const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
    define(target, key, make(descriptor.value as never));
    return () => Object.defineProperty(target, key, descriptor);
  };
  const arrayIterator = Array.prototype[Symbol.iterator];
  return [
    // The reproducer of finding 3: the frozen array type [Small, 2] iterates as [Big, 2].
    [
      "Array.prototype[Symbol.iterator]",
      replace(Array.prototype, Symbol.iterator, () =>
        function (this: unknown[]) {
          const forged = this.length === 2 && this[0] === Small ? [Big, 2] : this;
          return Reflect.apply(arrayIterator, forged, []);
        }),
    ],
    [
      "Object.entries",
      replace(Object, "entries", (original: (o: object) => [string, unknown][]) => (o: object) => {
        const entries = original(o);
        for (const entry of entries) {
          const field = entry[1] as { offset?: number; type?: unknown };
          if (field !== null && typeof field === "object" && "offset" in field) {
            entry[1] = { ...field, offset: field.offset! + 64, type: field.type === Small ? Big : field.type };
          } else if (field === Small) entry[1] = Big;
        }
        return entries;
      }),
    ],
    [
      "Object.keys",
      replace(Object, "keys", (original: (o: object) => string[]) => (o: object) => {
        const keys = original(o);
        return [...keys].reverse();
      }),
    ],
    ["Math.ceil", replace(Math, "ceil", (original: (x: number) => number) => (x: number) => original(x) + 8)],
    [
      "Math.max",
      replace(Math, "max", (original: (...x: number[]) => number) => (...x: number[]) => original(...x) * 2),
    ],
    ["Number.isSafeInteger", replace(Number, "isSafeInteger", () => () => true)],
    ["Array.isArray", replace(Array, "isArray", () => () => false)],
    ["Object.freeze", replace(Object, "freeze", () => (o: unknown) => o)],
    ["WeakMap.prototype.has", replace(WeakMap.prototype, "has", () => () => true)],
    ["WeakMap.prototype.get", replace(WeakMap.prototype, "get", () => () => undefined)],
    ["String.prototype.startsWith", replace(String.prototype, "startsWith", () => () => false)],
    ["JSON.stringify", replace(JSON, "stringify", () => () => '"tail"')],
    [
      "Array.prototype.map",
      replace(Array.prototype, "map", (original: () => unknown[]) =>
        function (this: unknown[], ...args: unknown[]) {
          const out = Reflect.apply(original, this, args) as unknown[];
          return out.length > 1 ? [...out].reverse() : out;
        }),
    ],
    [
      "Array.prototype.push",
      replace(Array.prototype, "push", (original: () => number) =>
        function (this: unknown[], ...args: unknown[]) {
          Reflect.apply(original, this, args);
          return Reflect.apply(original, this, args); // each twice
        }),
    ],
    [
      "Array.prototype.join",
      replace(Array.prototype, "join", (original: () => string) =>
        function (this: unknown[], ...args: unknown[]) {
          return Reflect.apply(original, this, [args[0] === "\n" ? "\nreturn 0;\n" : args[0]]);
        }),
    ],
  ];
}

test("struct(), DynamicArray and SharedDynamicArray compile the real layout whatever built-ins a program replaced", () => {
  const fields = () => ({ arr: [Small, 2], tail: "f64", v: ["u16", 3], p: "f32x3" }) as const;
  const made = struct(fields());
  const real = shapeOf(made);
  assert.deepEqual(real, {
    size: 48,
    align: 16,
    fields: {
      arr: { offset: 0, size: 16, align: 8 },
      tail: { offset: 16, size: 8, align: 8 },
      v: { offset: 24, size: 6, align: 2 },
      p: { offset: 32, size: 16, align: 16 },
    },
  });
  const record = (i: number) => ({
    arr: [{ x: i }, { x: i + 0.5 }],
    tail: -i,
    v: [i, i + 1, i + 2],
    p: [i, 2 * i, 3 * i],
  });
  for (const [name, install] of forgers()) {
    for (const codegen of [true, false]) {
      const what = `replaced ${name}${codegen ? "" : ", no code generation"}`;
      type R = ReturnType<typeof record>;
      let layout: StructLayout<R> | undefined;
      let array: DynamicArray<R> | undefined;
      let shared: SharedDynamicArray<R> | undefined;
      let error: unknown;
      const restore = install();
      try {
        const build = () => {
          layout = struct(fields()) as never;
          array = new DynamicArray(made as StructLayout<R>, { capacity: 4 });
          shared = new SharedDynamicArray(layout!, { maxCapacity: 8 });
        };
        if (codegen) build();
        else withoutCodegen(build);
      } catch (e) {
        error = e;
      } finally {
        restore();
      }
      assert.equal(error, undefined, `${what}: ${error}`);
      assert.deepEqual(shapeOf(layout!), real, `${what}: struct()`);
      const arrays: (DynamicArray<R> | SharedDynamicArray<R>)[] = [array!, shared!];
      for (const a of arrays) {
        assert.equal(a.stride, 48, `${what}: stride`);
        a.pushMany([record(1), record(2), record(3)]);
        a.set(0, record(9));
        assert.deepEqual(a.toArray(), [record(9), record(2), record(3)], `${what}: records`);
        assert.throws(() => a.get(3), RangeError, `${what}: get(3)`);
        assert.throws(
          () => a.push({ arr: [{ a: [1, 2, 3, 4, 5, 6, 7, 8] }, { a: [1, 2, 3, 4, 5, 6, 7, 8] }] } as never),
          TypeError,
        );
      }
      // Each field where the real layout puts it.
      const view: DataView = array!.view(DataView);
      assert.equal(view.getFloat64(0, true), 9, `${what}: arr[0].x at 0`);
      assert.equal(view.getFloat64(8, true), 9.5, `${what}: arr[1].x at 8`);
      assert.equal(view.getFloat64(16, true), -9, `${what}: tail at 16`);
      assert.equal(view.getUint16(28, true), 11, `${what}: v[2] at 28`);
      assert.equal(view.getFloat32(36, true), 18, `${what}: p[1] at 36`);
      assert.equal(view.getFloat64(48 + 16, true), -2, `${what}: record 1 untouched`);
      array!.free();
    }
  }
});

test("the arrays family calls no built-in through .call or .apply (a program may replace them)", () => {
  // What the tests above cannot tell apart in Bun (JavaScriptCore drops tail calls' frames): a replaced call of
  // an intrinsic getter from the arrays' own code, or from ffi/boundary.ts's. So: none from the arrays' own.
  const dir = new URL("../../src/arrays/", import.meta.url);
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    // (simd.ts's byte operations take the caller's own views and keep no state: see the note there.)
    if (!name.endsWith(".ts") || name === "simd.ts") continue;
    const lines = readFileSync(new URL(name, dir), "utf8").split("\n");
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
      if (/\.(call|apply)\(/.test(code)) found.push(`${name}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});
