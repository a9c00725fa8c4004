// The field kinds struct() gained for GPU data, in C layouts and in the
// arrays' codecs: f16, bool, fixed-size arrays and nested records. Their C
// layout (checked by a C compiler), and how DynamicArray reads and writes
// them: nested records as nested objects, arrays as JS arrays, every value
// checked before anything is stored, errors naming the field's path.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DynamicArray,
  type FieldValue,
  SharedDynamicArray,
  struct,
  type StructFieldType,
  type StructLayout,
} from "../../mod.ts";
import { cRoundTrip } from "./_c_roundtrip.ts";
import { withoutCodegen } from "../_helpers.ts";

type Rec = Record<string, FieldValue>;

const Pair = struct({ x: "f64", y: "u8" }); // 16 bytes, align 8

test("C rules for the new field kinds (table)", () => {
  const rows: [Record<string, StructFieldType>, { packed?: boolean }, number, number, Record<string, number>][] = [
    [{ a: "u8", h: "f16", b: "bool", d: "f64" }, {}, 16, 8, { a: 0, h: 2, b: 4, d: 8 }],
    [{ a: "u8", arr: ["u16", 3], x: "u8" }, {}, 10, 2, { a: 0, arr: 2, x: 8 }],
    [{ a: "u8", n: Pair, z: "u8" }, {}, 32, 8, { a: 0, n: 8, z: 24 }],
    [{ a: "u8", n: struct({ v: "f32x3" }), b: "u8" }, { packed: true }, 18, 1, { a: 0, n: 1, b: 17 }],
    [{ g: [["f32", 2], 3], t: "u8" }, {}, 28, 4, { g: 0, t: 24 }],
    [{ v: ["f32x3", 2] }, {}, 32, 16, { v: 0 }],
    [{ flags: ["bool", 3], n: [Pair, 2] }, {}, 40, 8, { flags: 0, n: 8 }],
  ];
  for (const [fields, options, size, align, offsets] of rows) {
    const layout = struct(fields, options);
    const label = Object.keys(fields).join(",");
    assert.equal(layout.size, size, `size of ${label}`);
    assert.equal(layout.align, align, `align of ${label}`);
    for (const [name, offset] of Object.entries(offsets)) assert.equal(layout.fields[name].offset, offset, name);
  }
});

test("cDeclaration() with f16, bool, arrays and nested records compiles; C reads what DynamicArray wrote", () => {
  const layouts: [string, StructLayout][] = [
    ["Kinds", struct({ a: "u8", h: "f16", b: "bool", d: "f64", q: "i64", w: "u64" })],
    ["Arrays", struct({ a: ["u16", 3], g: [["f32", 2], 3], v: ["f32x3", 2], f: ["bool", 3], big: ["i64", 2] })],
    ["Nested", struct({ a: "u8", n: Pair, list: [Pair, 2], deep: struct({ p: Pair, h: ["f16", 2] }) })],
    ["PackedNest", struct({ a: "u8", n: struct({ v: "f32x3", k: "i16" }), b: "u8" }, { packed: true })],
    ["Aligned", struct({ n: struct({ x: "f32" }, { align: 64 }), t: "u8" })],
  ];
  const out = cRoundTrip(layouts);
  for (const [name] of layouts) assert.equal(out[name], "ok", `${name}: ${out[name]}`);
});

const Light = struct({ color: "f32x3", on: "bool", level: "f16" });
const Scene = struct({ id: "u32", light: Light, lights: [Light, 2], grid: [["i16", 2], 2], weights: ["f32", 4] });

function scene(i: number): Rec {
  const light = (k: number) => ({ color: [k, k + 1, k + 2], on: k % 2 === 0, level: k + 0.5 });
  return {
    id: i,
    light: light(i),
    lights: [light(i + 10), light(i + 20)],
    grid: [[-i, i], [i * 2, -i * 2]],
    weights: [i / 2, i / 4, i / 8, i / 16],
  };
}

test("nested records read back as nested objects, arrays as JS arrays (push, get, set, iteration, pushMany)", () => {
  using scenes = new DynamicArray<Rec>(Scene);
  scenes.push(scene(1));
  scenes.pushMany([scene(2), scene(3)]);
  assert.deepEqual(scenes.get(0), scene(1));
  assert.deepEqual([...scenes], [scene(1), scene(2), scene(3)]);
  scenes.set(1, scene(7));
  assert.deepEqual(scenes.get(1), scene(7));
  // Typed arrays are accepted wherever scalars sit one after the other (a vector, an array of scalars).
  const typed = { ...scene(4), weights: new Float32Array([1, 2, 3, 4]) } as unknown as Rec;
  scenes.push(typed);
  assert.deepEqual(scenes.get(3).weights, [1, 2, 3, 4]);
});

test("nested records: the generated writer and the checked path store the same bytes; nested getters run once", () => {
  using scenes = new DynamicArray<Rec>(Scene);
  scenes.clear();
  // Garbage first, so that padding the writers must zero is not zero already.
  scenes.pushMany(new Uint8Array(2 * Scene.size).fill(0xab));
  scenes.clear();
  scenes.push(scene(3)); // plain arrays: the generated writer
  let reads = 0;
  const light = {
    get color() {
      reads++;
      return new Float32Array([3, 4, 5]); // a typed array: the generated writer hands over to the checked path
    },
    on: false,
    level: 3.5,
  };
  scenes.push({ ...scene(3), light: light as unknown as Rec });
  assert.equal(reads, 1, "the checked path got what the writer had read");
  assert.deepEqual(scenes.get(1), scene(3));
  assert.deepEqual([...scenes.bytes.subarray(Scene.size)], [...scenes.bytes.subarray(0, Scene.size)]);
});

test("f16 fields round to the nearest half, as Math.f16round (both paths of the writer)", () => {
  const H = struct({ h: "f16", hs: ["f16", 3] });
  using halves = new DynamicArray<{ h: number; hs: number[] }>(H);
  const values = [1.0001, 65504, 65519.99, 65520, -0, 2 ** -24, 2 ** -25, 2 ** -25 * 1.5, 0.1, -3.14159, NaN, Infinity];
  for (const x of values) {
    halves.push({ h: x, hs: [x, -x, x / 3] });
    // The same value through the checked path (a getter makes the generated writer hand over).
    halves.push({
      get h() {
        return x;
      },
      hs: [x, -x, x / 3],
    });
  }
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const expected = { h: Math.f16round(x), hs: [Math.f16round(x), Math.f16round(-x), Math.f16round(x / 3)] };
    assert.deepEqual(halves.get(2 * i), expected, `f16 of ${x}`);
    assert.deepEqual(halves.get(2 * i + 1), expected, `f16 of ${x}, checked path`);
  }
  assert.deepEqual(
    [...halves.bytes.subarray(0, H.size)],
    [...halves.bytes.subarray(H.size, 2 * H.size)],
    "both paths store the same bytes",
  );
  using scalars = new DynamicArray<number>("f16");
  scalars.pushMany([0.5, 1 / 3]);
  assert.deepEqual([...scalars], [0.5, Math.f16round(1 / 3)]);
  assert.equal(scalars.stride, 2);
});

test("bool fields take true and false only, stored as 1 and 0", () => {
  const B = struct({ on: "bool", x: "u8", flags: ["bool", 3] });
  using flags = new DynamicArray<{ on: boolean; x: number; flags: boolean[] }>(B);
  flags.push({ on: true, x: 7, flags: [false, true, false] });
  flags.push({ on: false, x: 8, flags: [true, true, false] });
  assert.deepEqual(flags.get(0), { on: true, x: 7, flags: [false, true, false] });
  assert.deepEqual([...flags.bytes.subarray(0, 10)], [1, 7, 0, 1, 0, 0, 8, 1, 1, 0]);
  for (const bad of [1, 0, "true", null]) {
    assert.throws(() => flags.push({ on: bad as unknown as boolean, x: 1, flags: [true, true, true] }), TypeError);
    assert.throws(() => flags.push({ on: true, x: 1, flags: [true, bad as unknown as boolean, true] }), TypeError);
  }
  assert.equal(flags.length, 2, "nothing stored by the refused values");
  using wrapping = new DynamicArray<boolean>("bool", { wrap: true });
  assert.throws(() => wrapping.push(2 as unknown as boolean), TypeError, "wrap converts integers, not booleans");
  wrapping.push(true);
  assert.deepEqual([...wrapping], [true]);
  // Any non-zero byte reads as true (bytes pushed raw, as C's _Bool would not hold them).
  wrapping.pushMany(new Uint8Array([2]));
  assert.equal(wrapping.get(1), true);
});

test("wrong nested values are refused naming the field's path; nothing is stored", () => {
  using scenes = new DynamicArray<Rec>(Scene);
  scenes.push(scene(1));
  const before = [...scenes.bytes];
  const broken = (change: (s: Rec) => void): Rec => {
    const s = structuredClone(scene(2));
    change(s);
    return s;
  };
  const rows: [Rec, typeof TypeError | typeof RangeError, RegExp][] = [
    [broken((s) => ((s.light as Rec).colr = [1, 2, 3])), TypeError, /'light\.colr' is not one of its fields/],
    [broken((s) => delete (s.light as Record<string, unknown>).on), TypeError, /'light\.on' is missing/],
    [broken((s) => (s.light = 5)), TypeError, /field 'light' \(5\).*object with the fields color, on, level/],
    [broken((s) => ((s.lights as Rec[])[1].level = "high" as unknown as number)), TypeError, /'lights\[1\]\.level'/],
    [broken((s) => (s.lights = [(s.lights as Rec[])[0]])), RangeError, /'lights' as it must hold 2 elements/],
    [broken((s) => (s.lights = "two" as unknown as Rec[])), TypeError, /'lights' as it must be an array of 2/],
    [broken((s) => ((s.grid as number[][])[1][0] = 40000)), RangeError, /'grid\[1\]\[0\]'.*i16/],
    [broken((s) => ((s.grid as number[][])[0] = [1])), RangeError, /'grid\[0\]' as it must hold 2/],
    [broken((s) => (s.weights = [1, 2, 3])), RangeError, /'weights' as it must hold 4/],
    [broken((s) => ((s.light as Rec).color = [1, 2])), RangeError, /'light\.color' as it must hold 3/],
  ];
  for (const [value, type, message] of rows) {
    assert.throws(() => scenes.push(value), (e) => e instanceof type && message.test((e as Error).message));
    assert.throws(
      () => scenes.pushMany([scene(3), value]),
      (e) => e instanceof type && /values\[1\]/.test((e as Error).message) && message.test((e as Error).message),
    );
    assert.throws(() => scenes.set(0, value), type);
  }
  assert.equal(scenes.length, 1);
  assert.deepEqual([...scenes.bytes], before, "the stored record is unchanged");
});

test("each nested field is read once, before anything is stored; wrap reaches nested integers", () => {
  const Outer = struct({ n: struct({ a: "u8", b: "u8" }), list: [struct({ c: "u8" }), 2] });
  let reads = 0;
  const counted = (value: number) => ({
    get a() {
      reads++;
      return value;
    },
    b: 1,
  });
  using strict = new DynamicArray<Rec>(Outer);
  strict.push({ n: counted(5), list: [{ c: 1 }, { c: 2 }] });
  assert.equal(reads, 1);
  assert.deepEqual(strict.get(0), { n: { a: 5, b: 1 }, list: [{ c: 1 }, { c: 2 }] });
  assert.throws(() => strict.push({ n: counted(300), list: [{ c: 1 }, { c: 2 }] }), RangeError);
  assert.equal(reads, 2);
  using wrapping = new DynamicArray<Rec>(Outer, { wrap: true });
  wrapping.push({ n: { a: 300, b: -1 }, list: [{ c: 256 }, { c: 257 }] });
  assert.deepEqual(wrapping.get(0), { n: { a: 44, b: 255 }, list: [{ c: 0 }, { c: 1 }] });
});

test("SharedDynamicArray stores nested records and arrays too", () => {
  const shared = new SharedDynamicArray<Rec>(Scene, { maxCapacity: 8 });
  shared.push(scene(5));
  shared.push(scene(6));
  assert.deepEqual(shared.get(1), scene(6));
});

test("an array field of count 1 takes and gives an array, as every other count does (c and wgsl-storage)", () => {
  for (const rules of ["c", "wgsl-storage"] as const) {
    for (const [path, make] of [["generated", <T>(f: () => T) => f()], ["DataView", withoutCodegen]] as const) {
      const label = `${rules}, ${path}`;
      // Before: ["i32", 1] was a bare scalar (push({ a: [7] }) a TypeError, get(0) { a: 7 }).
      // (bool only in C: WGSL buffers cannot hold it; u32 stands in.)
      const flag = rules === "c" ? "bool" : "u32";
      const layout = struct({ a: ["i32", 1], f: ["f32", 1], b: [flag, 1], m: ["u32x4", 1] }, { layout: rules });
      using records = make(() => new DynamicArray<Rec>(layout));
      const value = { a: [7], f: [1.5], b: [rules === "c" ? true : 1], m: [[1, 2, 3, 4]] };
      records.push(value);
      records.push({ ...value, a: new Int32Array([-3]) } as unknown as Rec);
      assert.deepEqual(records.get(0), value, label);
      assert.deepEqual(records.get(1).a, [-3], label);
      records.push(records.get(0)); // what get() gives, push() takes
      assert.deepEqual(records.get(2), value, label);
      for (const bare of [{ ...value, a: 7 }, { ...value, f: 1.5 }, { ...value, b: value.b[0] }]) {
        assert.throws(() => records.push(bare as unknown as Rec), TypeError, label);
      }
      assert.throws(() => records.push({ ...value, a: [7, 8] }), RangeError, label);
      assert.equal(records.length, 3, `${label}: refused pushes store nothing`);
    }
  }
});

test("big layouts take the checked path: arrays of vectors, of records, of records of arrays, on both array kinds", () => {
  // Before: struct({ a: ["f32x2", 1 << 20] }) was accepted (8 MiB) but creating either array overflowed the
  // stack in the code generator (a spread of one local name per element); the same bytes as ["f32", 1 << 21] worked.
  const Cell = struct({ p: ["f32x2", 4], id: "u32" }); // 36 bytes: 9 scalars
  const layouts: [string, StructLayout<unknown>, (i: number) => Rec][] = [
    ["[f32x2, 2^20]", struct({ a: ["f32x2", 1 << 20] }), (i) => ({ a: vectors(1 << 20, 2, i) })],
    ["[[f32x2, 64], 64]", struct({ a: [["f32x2", 64], 64] }), (i) => ({
      a: Array.from({ length: 64 }, (_, j) => vectors(64, 2, i + j)),
    })],
    ["[{ p: [f32x2, 4], id }, 2^12] (records of arrays)", struct({ n: "u32", a: [Cell, 1 << 12] }), (i) => ({
      n: i,
      a: Array.from({ length: 1 << 12 }, (_, j) => ({ p: vectors(4, 2, i + j), id: j })),
    })],
  ];
  for (const [name, layout, value] of layouts) {
    const first = value(1), second = value(2);
    using array = new DynamicArray<Rec>(layout, { capacity: 1 });
    array.push(first);
    array.push(second);
    assert.deepEqual(array.get(1), second, name);
    assert.deepEqual(array.remove(0), first, name);
    const shared = new SharedDynamicArray<Rec>(layout, { maxCapacity: 2 });
    shared.push(first);
    shared.pushMany([second]);
    assert.deepEqual(shared.get(0), first, name);
    assert.deepEqual(shared.pop(), second, name);
  }
});

// `count` vectors of `lanes` small integers (exact in an f32), from `seed`.
function vectors(count: number, lanes: number, seed: number): number[][] {
  return Array.from(
    { length: count },
    (_, i) => Array.from({ length: lanes }, (_, k) => (seed + i * lanes + k) % 4096),
  );
}

test("records nested more than 64 deep are refused by struct(), with what to do; 64 deep work on both array kinds", () => {
  // Before: each level one struct() call, accepted at any depth; at 10,000 creating either array (or a
  // declaration) overflowed the stack: reading and writing walk a record's levels by recursion.
  let layout: StructLayout<unknown> = struct({ x: "f32" });
  let value: Rec = { x: 1.5 };
  for (let depth = 1; depth < 64; depth++) {
    layout = struct({ a: layout, n: "u8" });
    value = { a: value, n: depth };
  }
  using array = new DynamicArray<Rec>(layout);
  array.push(value);
  assert.deepEqual(array.get(0), value);
  const shared = new SharedDynamicArray<Rec>(layout, { maxCapacity: 1 });
  shared.push(value);
  assert.deepEqual(shared.get(0), value);
  assert.match(layout.cDeclaration("Deep"), /} Deep;/);
  assert.throws(
    () => struct({ a: layout }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot define a struct as field 'a' nests records and arrays more than 64 deep: flatten the layout (a " +
          "record's fields may be laid out in its parent)",
  );
  // Arrays count as levels too: a record over arrays 3 deep over a layout 60 deep is 64 levels; 4 deep, 65.
  let inner: StructLayout<unknown> = struct({ x: "f32" });
  for (let depth = 1; depth < 60; depth++) inner = struct({ a: inner });
  assert.equal(struct({ a: [[[inner, 1], 1], 1] }).size, 4);
  assert.throws(() => struct({ a: [[[[inner, 1], 1], 1], 1] }), /field 'a' nests records and arrays more than 64/);
});
