// struct() infers its record type, so arrays of a layout take and return typed
// records without a type argument. `deno test` type-checks this file: each
// `@ts-expect-error` line must be an error (a misspelled field, a wrong value
// type), or the check fails; the assertions check the values at run time on
// both runtimes.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DynamicArray,
  type FieldType,
  type FieldValue,
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
// (A vector takes exactly its count of numbers: a tuple, here `as const`; a number[] of unknown length is refused.)
const first = { pos: [0, 1, 2] as const, mass: 1, id: 3n, alive: true, tags: [1, 2], inner: { q: 0.5 } };

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
  const matrix: FieldValueOf<"f32x4x4"> = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
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

// The element type of `new DynamicArray("<field type>")` (no type argument) is what get returns and push
// takes; i64/u64 read as bigints and take integer numbers or bigints, in scalars and record fields alike;
// vector types read as tuples of their length. Each `@ts-expect-error` fails the check if the types are too
// loose; each annotated assignment fails it if they are too narrow or wrong.

test("new DynamicArray(a field type string) infers its element type: get's result, push's argument", () => {
  using ids = new DynamicArray("u64");
  ids.push(1); // an integer number, read back as a bigint
  ids.push(2n);
  ids.pushMany([3, 4n]);
  ids.set(0, 5);
  const id: bigint = ids.get(0);
  const all: bigint[] = ids.toArray();
  for (const each of ids) {
    const b: bigint = each;
    assert.equal(typeof b, "bigint");
  }
  const last: bigint | undefined = ids.pop();
  const removed: bigint = ids.swapRemove(0);
  assert.deepEqual([id, all, last, removed], [5n, [5n, 2n, 3n, 4n], 4n, 5n]);
  // @ts-expect-error get returns a bigint, not a number
  const notNumber: number = ids.get(0);
  assert.equal(notNumber, 3n);
  // @ts-expect-error a string is not a u64 (a TypeError at run time)
  assert.throws(() => ids.push("7"), TypeError);

  using signed = new DynamicArray("i64");
  signed.push(-1);
  const s: bigint = signed.get(0);
  assert.equal(s, -1n);

  using floats = new DynamicArray("f32");
  floats.push(0.5);
  const f: number = floats.get(0);
  assert.equal(f, 0.5);
  // @ts-expect-error an f32 takes numbers only (a TypeError at run time)
  assert.throws(() => floats.push(1n), TypeError);

  using bytes = new DynamicArray("u8");
  bytes.pushMany([1, 2]);
  const sum: number = bytes.get(0) + bytes.get(1);
  assert.equal(sum, 3);

  using flags = new DynamicArray("bool");
  flags.push(true);
  const flag: boolean = flags.get(0);
  assert.equal(flag, true);
  // @ts-expect-error a bool takes true or false, not 1 (a TypeError at run time)
  assert.throws(() => flags.push(1), TypeError);
});

test("an explicit element type and the inferred one are the same array type", () => {
  const inferred = new DynamicArray("u64");
  const explicit: DynamicArray<bigint> = inferred;
  explicit.push(1);
  const back: DynamicArray<"u64"> = new DynamicArray<bigint>("u64");
  back.push(2);
  // @ts-expect-error an array of bigints is not an array of numbers
  const numbers: DynamicArray<number> = inferred;
  assert.equal(numbers.length, 1);
  inferred.free();
  back.free();
});

test("u64 and i64 fields take integer numbers or bigints and read as bigints", () => {
  const Event = struct({ id: "u64", at: "i64", ids: ["u64", 2], inner: struct({ seq: "u64" }) });
  using events = new DynamicArray(Event);
  events.push({ id: 1, at: -2, ids: [3, 4n], inner: { seq: 5 } });
  events.pushMany([{ id: 6n, at: 7, ids: [8, 9], inner: { seq: 10n } }]);
  events.set(1, { id: 11, at: 12n, ids: [13n, 14], inner: { seq: 15 } });
  const e = events.get(0);
  const id: bigint = e.id;
  const at: bigint = e.at;
  const ids: bigint[] = e.ids;
  const seq: bigint = e.inner.seq;
  assert.deepEqual([id, at, ids, seq], [1n, -2n, [3n, 4n], 5n]);
  assert.deepEqual(events.get(1), { id: 11n, at: 12n, ids: [13n, 14n], inner: { seq: 15n } });
  // @ts-expect-error a field read back is a bigint, not a number
  const notNumber: number = events.get(0).id;
  assert.equal(notNumber, 1n);
  // @ts-expect-error a u64 field takes numbers and bigints, not strings (a TypeError at run time)
  assert.throws(() => events.push({ id: "1", at: 0, ids: [0, 0], inner: { seq: 0 } }), TypeError);

  // An explicit record type with bigint fields takes numbers there too, as the arrays do.
  using explicit = new DynamicArray<{ id: bigint; at: bigint; ids: bigint[]; inner: { seq: bigint } }>(Event);
  explicit.push({ id: 1, at: 2, ids: [3, 4], inner: { seq: 5 } });
  const explicitId: bigint = explicit.get(0).id;
  assert.equal(explicitId, 1n);

  // The factories and SharedDynamicArray take the same values.
  using vertices = vertexArray(Event);
  vertices.push({ id: 1, at: 2, ids: [3, 4], inner: { seq: 5 } });
  const shared = new SharedDynamicArray(Event, { maxCapacity: 4 });
  shared.push({ id: 1, at: 2n, ids: [3, 4], inner: { seq: 5 } });
  const sharedId: bigint = shared.get(0).id;
  const sharedScalars = new SharedDynamicArray("i64", { maxCapacity: 4 });
  sharedScalars.push(-3);
  const sharedScalar: bigint = sharedScalars.get(0);
  const attached = SharedDynamicArray.attach(sharedScalars.buffer, "i64");
  attached.push(4);
  const attachedScalar: bigint = attached.get(1);
  assert.deepEqual([vertices.get(0).id, sharedId, sharedScalar, attachedScalar], [1n, 1n, -3n, 4n]);
});

test('FieldValueOf<F, "write"> names what a write takes; FieldValueOf<F> what a read gives', () => {
  const write: FieldValueOf<"u64", "write"> = 1;
  const writeBig: FieldValueOf<"i64", "write"> = 1n;
  const read: FieldValueOf<"u64"> = 1n;
  // @ts-expect-error a read u64 is a bigint
  const readNumber: FieldValueOf<"u64"> = 1;
  const record: FieldValueOf<RecordOf<{ id: "u64"; v: "f32x2" }>, "write"> = { id: 1, v: [1, 2] as const };
  assert.deepEqual([write, writeBig, read, readNumber, record], [1, 1n, 1n, 1, { id: 1, v: [1, 2] }]);
});

test("vector fields read as tuples of their length and take exactly that many numbers", () => {
  const Vertex = struct({ uv: "f32x2", position: "f32x3", color: "f32x4", ids: "u32x4", flags: "i32x4" });
  const vertex = {
    uv: [0, 1],
    position: [1, 2, 3],
    color: [1, 0, 0, 1],
    ids: [1, 2, 3, 4],
    flags: [-1, 0, 1, 2],
  } as const; // (readonly tuples are taken as they are)
  using vertices = new DynamicArray(Vertex);
  vertices.push(vertex);
  const v = vertices.get(0);
  const uv: [number, number] = v.uv;
  const position: [number, number, number] = v.position;
  const color: [number, number, number, number] = v.color;
  const ids: [number, number, number, number] = v.ids;
  const flags: [number, number, number, number] = v.flags;
  const general: number[] = v.position; // a tuple is still an array of numbers
  assert.deepEqual({ uv, position, color, ids, flags }, vertex);
  assert.equal(general.length, 3);
  // @ts-expect-error an f32x3 reads as 3 numbers, not 4
  const four: [number, number, number, number] = v.position;
  assert.equal(four.length, 3);
  // @ts-expect-error an f32x3 takes exactly 3 numbers (a RangeError at run time)
  assert.throws(() => vertices.push({ ...vertex, position: [1, 2] }), RangeError);
  // @ts-expect-error an f32x2 takes exactly 2 numbers (a RangeError at run time)
  assert.throws(() => vertices.set(0, { ...vertex, uv: [1, 2, 3] }), RangeError);

  using pairs = new DynamicArray("f32x2");
  pairs.push([1, 2]);
  const pair: [number, number] = pairs.get(0);
  assert.deepEqual(pair, [1, 2]);
  // @ts-expect-error an f32x2 element takes exactly 2 numbers (a RangeError at run time)
  assert.throws(() => pairs.push([1, 2, 3]), RangeError);

  const matrix: FieldValueOf<"f32x4x4"> = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  // @ts-expect-error a 4×4 matrix is 16 numbers
  const short: FieldValueOf<"f32x4x4"> = [1, 0, 0, 0];
  assert.deepEqual([matrix.length, short.length], [16, 4]);
});

test("a vector whose type is not known statically reads as an array of numbers", () => {
  for (const type of ["f32x3", "f32x4"] as const) {
    using vectors = new DynamicArray(type); // "f32x3" | "f32x4"
    vectors.push(type === "f32x3" ? [1, 2, 3] : [1, 2, 3, 4]);
    const v: number[] = vectors.get(0);
    // @ts-expect-error 3 or 4 numbers: not known to be 3
    const three: [number, number, number] = vectors.get(0);
    assert.deepEqual(three, v);
    assert.equal(v.length, type === "f32x3" ? 3 : 4);
  }
  const fields: Record<string, FieldType> = { v: "f32x3" };
  using loose = new DynamicArray(struct(fields));
  loose.push({ v: [1, 2, 3] });
  const record: Record<string, FieldValue> = loose.get(0);
  assert.deepEqual(record, { v: [1, 2, 3] });
});
