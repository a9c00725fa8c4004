// Messages a new user read: each says what happened in plain words (an index
// into an empty array, which side of a pair holds what, "an i8"), and a
// missing field is called missing even when Object.prototype has a member of
// that name.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DynamicArray, SharedDynamicArray, struct, type StructFieldType } from "../../mod.ts";
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
