// Bad input to struct() and its declarations (issue 17: layout rules, f16,
// bool, arrays, nested records), and to arrays of the new field kinds: each
// row gets its documented error, makes no native call, and (for arrays)
// leaves the array as it was.
import assert from "node:assert/strict";
import { DynamicArray, type FieldValue, struct, type StructFieldType, type StructLayout } from "../../mod.ts";
import { badInputTable } from "../_bad_input.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const CInner = struct({ x: "f32" });
const StorageInner = struct({ x: "f32" }, { layout: "wgsl-storage" });
const cyclic: unknown[] = ["f32", 2];
cyclic[0] = cyclic;

const define = (fields: Record<string, unknown>, options?: unknown) => () =>
  struct(any(fields) as Record<string, StructFieldType>, any(options));

badInputTable<void>("struct()", [
  { name: "layout 'wgsl'", act: define({ x: "f32" }, { layout: "wgsl" }), expect: TypeError },
  { name: "layout 1", act: define({ x: "f32" }, { layout: 1 }), expect: TypeError },
  { name: "layout null", act: define({ x: "f32" }, { layout: null }), expect: TypeError },
  {
    name: "packed with wgsl-storage",
    act: define({ x: "f32" }, { layout: "wgsl-storage", packed: true }),
    expect: TypeError,
  },
  {
    name: "packed with wgsl-uniform",
    act: define({ x: "f32" }, { layout: "wgsl-uniform", packed: true }),
    expect: TypeError,
  },
  {
    name: "align 3 with wgsl-storage",
    act: define({ x: "f32" }, { layout: "wgsl-storage", align: 3 }),
    expect: RangeError,
  },
  {
    name: "align 8192 with wgsl-uniform",
    act: define({ x: "f32" }, { layout: "wgsl-uniform", align: 8192 }),
    expect: RangeError,
  },
  { name: "an unknown option", act: define({ x: "f32" }, { rules: "c" }), expect: TypeError },
  {
    name: "bool in wgsl-storage",
    act: define({ ok: "u32", flag: "bool" }, { layout: "wgsl-storage" }),
    expect: TypeError,
  },
  { name: "bool in wgsl-uniform", act: define({ flag: "bool" }, { layout: "wgsl-uniform" }), expect: TypeError },
  {
    name: "bool array in wgsl-storage",
    act: define({ f: ["bool", 4] }, { layout: "wgsl-storage" }),
    expect: TypeError,
  },
  { name: "u8 in wgsl-storage", act: define({ b: "u8" }, { layout: "wgsl-storage" }), expect: TypeError },
  { name: "i16 in wgsl-uniform", act: define({ b: "i16" }, { layout: "wgsl-uniform" }), expect: TypeError },
  { name: "u64 in wgsl-storage", act: define({ b: "u64" }, { layout: "wgsl-storage" }), expect: TypeError },
  { name: "f64 in wgsl-storage", act: define({ b: "f64" }, { layout: "wgsl-storage" }), expect: TypeError },
  {
    name: "f32 array in wgsl-uniform (stride 4)",
    act: define({ a: ["f32", 4] }, { layout: "wgsl-uniform" }),
    expect: TypeError,
  },
  { name: "f16 array in wgsl-uniform", act: define({ a: ["f16", 8] }, { layout: "wgsl-uniform" }), expect: TypeError },
  { name: "array count 0", act: define({ a: ["f32", 0] }), expect: RangeError },
  { name: "array count -1", act: define({ a: ["f32", -1] }), expect: RangeError },
  { name: "array count 1.5", act: define({ a: ["f32", 1.5] }), expect: RangeError },
  { name: "array count NaN", act: define({ a: ["f32", NaN] }), expect: RangeError },
  { name: "array count Infinity", act: define({ a: ["f32", Infinity] }), expect: RangeError },
  { name: "array count '4'", act: define({ a: ["f32", "4"] }), expect: TypeError },
  { name: "array count 4n", act: define({ a: ["f32", 4n] }), expect: TypeError },
  { name: "array of 2^31 f32 (past 2^30 bytes)", act: define({ a: ["f32", 2 ** 31] }), expect: RangeError },
  { name: "arrays nested past 2^30 bytes", act: define({ a: [["f64", 2 ** 15], 2 ** 15] }), expect: RangeError },
  { name: "array type of 3 entries", act: define({ a: ["f32", 4, 1] }), expect: TypeError },
  { name: "array type of 1 entry", act: define({ a: ["f32"] }), expect: TypeError },
  { name: "array of an unknown type", act: define({ a: ["f8", 4] }), expect: TypeError },
  { name: "an array type that contains itself", act: define({ a: cyclic }), expect: TypeError },
  { name: "a forged layout as a field type", act: define({ n: { size: 4, align: 4, fields: {} } }), expect: TypeError },
  { name: "a C struct in wgsl-storage", act: define({ n: CInner }, { layout: "wgsl-storage" }), expect: TypeError },
  {
    name: "a storage struct in wgsl-uniform",
    act: define({ n: StorageInner }, { layout: "wgsl-uniform" }),
    expect: TypeError,
  },
  { name: "a WGSL struct in a C layout", act: define({ n: StorageInner }), expect: TypeError },
]);

const declare = (layout: StructLayout, name: unknown, kind: "c" | "wgsl" = "wgsl") => () =>
  kind === "c" ? layout.cDeclaration(any(name)) : layout.wgslDeclaration(any(name));
const Storage = struct({ x: "f32" }, { layout: "wgsl-storage" });

badInputTable<void>("wgslDeclaration() and cDeclaration()", [
  { name: "wgslDeclaration(7)", act: declare(Storage, 7), expect: TypeError },
  { name: "wgslDeclaration('2x')", act: declare(Storage, "2x"), expect: TypeError },
  { name: "wgslDeclaration('_')", act: declare(Storage, "_"), expect: TypeError },
  { name: "wgslDeclaration('__x')", act: declare(Storage, "__x"), expect: TypeError },
  { name: "wgslDeclaration('fn') (a keyword)", act: declare(Storage, "fn"), expect: TypeError },
  {
    name: "a field named 'var'",
    act: declare(struct({ var: "f32" }, { layout: "wgsl-storage" }), "S"),
    expect: TypeError,
  },
  { name: "a C layout with a bool", act: declare(struct({ flag: "bool" }), "S"), expect: TypeError },
  {
    name: "a C layout with an f64 inside a nested struct",
    act: declare(struct({ n: struct({ d: "f64" }) }), "S"),
    expect: TypeError,
  },
  { name: "a packed C layout", act: declare(struct({ x: "f32" }, { packed: true }), "S"), expect: TypeError },
  { name: "cDeclaration('int') (a C keyword)", act: declare(struct({ x: "f32" }), "int", "c"), expect: TypeError },
  { name: "a C field named 'return'", act: declare(struct({ return: "u32" }), "S", "c"), expect: TypeError },
  {
    name: "a C field named 'default' in a nested struct",
    act: declare(struct({ n: struct({ default: "f32" }) }), "S", "c"),
    expect: TypeError,
  },
  { name: "cDeclaration('not valid')", act: declare(Storage, "not valid", "c"), expect: TypeError },
]);

const Nested = struct({ id: "u32", n: struct({ on: "bool", h: "f16" }), list: [struct({ k: "i16" }), 2] });
type NestedRecord = Record<string, FieldValue>;
const GOOD: NestedRecord = { id: 1, n: { on: true, h: 0.5 }, list: [{ k: -1 }, { k: 1 }] };

function nested(): DynamicArray<NestedRecord> {
  const array = new DynamicArray<NestedRecord>(Nested);
  array.push(GOOD);
  return array;
}
function unchanged(array: DynamicArray<NestedRecord>): void {
  assert.equal(array.length, 1);
  assert.deepEqual(array.get(0), GOOD);
  array.push(GOOD);
  array.free();
}
const value = (change: NestedRecord): NestedRecord => ({ ...GOOD, ...change });

badInputTable<DynamicArray<NestedRecord>>(
  "DynamicArray of nested records",
  (
    [
      ["a bool given 1", value({ n: { on: any(1), h: 0.5 } }), TypeError],
      ["a bool given 'true'", value({ n: { on: any("true"), h: 0.5 } }), TypeError],
      ["an f16 given a string", value({ n: { on: true, h: any("0.5") } }), TypeError],
      ["an f16 given a bigint", value({ n: { on: true, h: any(1n) } }), TypeError],
      ["a nested record given a number", value({ n: 5 }), TypeError],
      ["a nested record given null", value({ n: any(null) }), TypeError],
      ["a nested record missing a field", value({ n: { on: true } }), TypeError],
      ["a nested record with an unknown field", value({ n: { on: true, h: 0.5, x: 1 } }), TypeError],
      ["an array of records too short", value({ list: [{ k: 1 }] }), RangeError],
      ["an array of records too long", value({ list: [{ k: 1 }, { k: 2 }, { k: 3 }] }), RangeError],
      ["an array of records given a typed array", value({ list: any(new Int16Array(2)) }), TypeError],
      ["an array of records given an object", value({ list: any({ 0: { k: 1 }, 1: { k: 2 }, length: 2 }) }), TypeError],
      ["an i16 in an array of records out of range", value({ list: [{ k: 1 }, { k: 40000 }] }), RangeError],
      ["an array element that is not a record", value({ list: [{ k: 1 }, any(7)] }), TypeError],
    ] as [string, NestedRecord, typeof TypeError | typeof RangeError][]
  ).flatMap(([label, bad, expect]) => [
    { name: `push(${label})`, arrange: nested, act: (a) => a.push(bad), expect, after: unchanged },
    {
      name: `pushMany([good, ${label}])`,
      arrange: nested,
      act: (a) => a.pushMany([GOOD, bad]),
      expect,
      after: unchanged,
    },
    { name: `set(0, ${label})`, arrange: nested, act: (a) => a.set(0, bad), expect, after: unchanged },
  ]),
);
