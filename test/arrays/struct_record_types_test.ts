// struct() infers its record type, so arrays of a layout take and return typed
// records without a type argument. `deno test` type-checks this file: each
// `@ts-expect-error` line must be an error (a misspelled field, a wrong value
// type), or the check fails; the assertions check the values at run time on
// both runtimes.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DynamicArray,
  type FieldValueOf,
  type RecordOf,
  SharedDynamicArray,
  struct,
  type StructLayout,
  uniformArray,
  vertexArray,
} from "../../mod.ts";

const Particle = struct({
  pos: "f32x3",
  mass: "f32",
  id: "u64",
  alive: "bool",
  tags: ["u8", 2],
  inner: struct({ q: "f64" }),
});
const first = { pos: [0, 1, 2], mass: 1, id: 3n, alive: true, tags: [1, 2], inner: { q: 0.5 } };

test("new DynamicArray(layout) takes and returns the layout's records, typed field by field", () => {
  using particles = new DynamicArray(Particle);
  particles.push(first);
  const p = particles.get(0);
  const mass: number = p.mass;
  const id: bigint = p.id;
  const alive: boolean = p.alive;
  const pos: number[] = p.pos;
  const tags: number[] = p.tags;
  const q: number = p.inner.q;
  assert.deepEqual({ mass, id, alive, pos, tags, q }, {
    mass: 1,
    id: 3n,
    alive: true,
    pos: [0, 1, 2],
    tags: [1, 2],
    q: 0.5,
  });
  // @ts-expect-error a misspelled field is a compile-time error (and a TypeError at run time)
  assert.throws(() => particles.push({ ...first, mas: 1 }), TypeError);
  // @ts-expect-error a field's value type is checked
  const wrong: string = particles.get(0).mass;
  assert.equal(wrong, 1);
});

test("vertexArray, uniformArray and SharedDynamicArray infer the same records", () => {
  using vertices = vertexArray(Particle);
  vertices.push(first);
  const fromVertices: number = vertices.get(0).mass;
  using uniforms = uniformArray(struct({ time: "f32", frame: "u32" }, { layout: "wgsl-uniform" }));
  uniforms.push({ time: 0.25, frame: 3 });
  const frame: number = uniforms.get(0).frame;
  const shared = new SharedDynamicArray(struct({ x: "f64", n: "i32" }), { maxCapacity: 4 });
  shared.push({ x: 1.5, n: 2 });
  const x: number = shared.get(0).x;
  assert.deepEqual([fromVertices, frame, x], [1, 3, 1.5]);
});

test("FieldValueOf and RecordOf name the types for code that declares them", () => {
  const id: FieldValueOf<"i64"> = -1n;
  const flag: FieldValueOf<"bool"> = false;
  const matrix: FieldValueOf<"f32x4x4"> = new Array(16).fill(0);
  const record: RecordOf<{ a: "u16"; b: readonly ["f32", 2] }> = { a: 1, b: [1, 2] };
  using array = new DynamicArray(struct({ a: "u16", b: ["f32", 2] }));
  array.push(record);
  assert.deepEqual(array.get(0), record);
  assert.deepEqual([id, flag, matrix.length], [-1n, false, 16]);
});

test("an explicit record type that is not the layout's is a compile error", () => {
  const Inner = struct({ id: "u32", on: "bool" });
  // @ts-expect-error the layout's records are { id; on }, not { nope }
  assert.throws(() => new DynamicArray<{ nope: string }>(Inner).push({ nope: "x" }), TypeError);
  // @ts-expect-error a layout annotated with another record type
  const wrong: StructLayout<{ q: string }> = Inner;
  assert.equal(wrong.size, Inner.size);
  const right: StructLayout<{ id: number; on: boolean }> = Inner;
  assert.equal(right.record, undefined, "record is for the type checker only");
  const general: StructLayout = Inner; // any layout is a StructLayout
  assert.equal(general.size, 8);
});

test("a scalar array still takes its element type as an argument", () => {
  using values = new DynamicArray<number>("f32");
  values.push(1.5);
  const v: number = values.get(0);
  assert.equal(v, 1.5);
});
