import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError, DynamicArray, FreeListAllocator, struct } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";
import { RecordCodec } from "../../src/arrays/_record_codec.ts";

const Vertex = struct({ position: "f32x3", color: "f32x4", id: "u32" });
type V = { position: number[]; color: number[]; id: number };

function vertex(next: () => number): V {
  const f = () => Math.fround(((next() % 2001) - 1000) / 8);
  return { position: [f(), f(), f()], color: [f(), f(), f(), f()], id: next() >>> 0 };
}

// Runs `make` as on a host that disallows code generation from strings.
function withoutCodegen<T>(make: () => T): T {
  const allowed = globalThis.Function;
  globalThis.Function = function () {
    throw new EvalError("code generation from strings disallowed");
  } as unknown as FunctionConstructor;
  try {
    return make();
  } finally {
    globalThis.Function = allowed;
  }
}

test("DynamicArray matches a JS array over 20,000 seeded operations (records, snapshots included)", () => {
  const seed = 0xda7a;
  const next = xorshift32(seed);
  const heap = new FreeListAllocator({ capacity: 1 << 20 });
  let array = new DynamicArray<V>(Vertex, { allocator: heap, capacity: 4, growth: 1.5 });
  let model: V[] = [];
  const snapshots: [DynamicArray<V>, V[]][] = [];
  for (let step = 0; step < 20_000; step++) {
    const op = below(next, 100);
    const where = `seed ${seed} step ${step}`;
    if (op < 40 || model.length === 0) {
      const v = vertex(next);
      assert.equal(array.push(v), model.push(v), where);
    } else if (op < 50) {
      const i = below(next, model.length);
      const v = vertex(next);
      array.set(i, v);
      model[i] = v;
    } else if (op < 60) {
      const i = below(next, model.length);
      assert.deepEqual(array.remove(i), model.splice(i, 1)[0], where);
    } else if (op < 70) {
      const i = below(next, model.length);
      const expected = model[i];
      const last = model.pop()!;
      if (i < model.length) model[i] = last;
      assert.deepEqual(array.swapRemove(i), expected, where);
    } else if (op < 78) {
      assert.deepEqual(array.pop(), model.pop(), where);
    } else if (op < 82) {
      const batch = [vertex(next), vertex(next), vertex(next)];
      array.pushMany(batch);
      model.push(...batch);
    } else if (op < 84) {
      array.compact();
      assert.equal(array.capacity, Math.max(1, model.length));
    } else if (op < 86) {
      array.reserve(model.length + below(next, 100));
    } else if (op < 88 && snapshots.length < 5) {
      snapshots.push([array.snapshot(), model.slice()]);
    } else if (op < 90 && snapshots.length > 0) {
      const [snap, expected] = snapshots.splice(below(next, snapshots.length), 1)[0];
      assert.deepEqual([...snap], expected, `${where}: snapshot unchanged by later writes`);
      if (below(next, 2) === 0) {
        snap.free();
      } else {
        array.free(); // continue with the snapshot as the array
        array = snap;
        model = expected;
      }
    } else if (op < 91) {
      array.clear();
      model = [];
    } else {
      const i = below(next, model.length);
      assert.deepEqual(array.get(i), model[i], where);
    }
    assert.equal(array.length, model.length, where);
    if (step % 500 === 0) assert.deepEqual([...array], model, where);
  }
  assert.deepEqual([...array], model);
  for (const [snap, expected] of snapshots) {
    assert.deepEqual([...snap], expected);
    snap.free();
  }
  const m = array.metrics();
  assert.equal(m.count, model.length);
  assert.ok(m.reallocations > 0 && m.utilization <= 1);
  array.free();
  assert.equal(heap.stats().liveAllocations, 0, "every storage block went back");
});

test("DynamicArray of scalars: bytes, typed views and FFI address; bad input", () => {
  using values = new DynamicArray<number>("f32", { capacity: 2 });
  values.pushMany(new Float32Array([1, 2, 3]));
  values.push(4);
  assert.deepEqual([...values.view(Float32Array)], [1, 2, 3, 4]);
  assert.equal(values.bytes.length, 16);
  assert.ok(values.address > 0);
  const before = values.bytes;
  values.reserve(1000);
  assert.equal(before.length, 0, "a view taken before a moving growth is detached, not dangling");
  assert.throws(() => values.get(4), RangeError);
  assert.throws(() => values.get(-1), RangeError);
  assert.throws(() => values.push("x" as unknown as number), TypeError);
  assert.throws(() => values.pushMany(new Uint8Array(3)), RangeError);
  assert.throws(() => new DynamicArray("f16" as "f32"), TypeError);
  assert.throws(() => new DynamicArray("f32", { growth: 1 }), RangeError);
  using points = new DynamicArray<V>(Vertex);
  assert.throws(() => points.push({ position: [1, 2], color: [0, 0, 0, 0], id: 1 }), RangeError);
  assert.throws(() => points.push(5 as unknown as V), TypeError);
  const gone = new DynamicArray<number>("u8");
  gone.free();
  assert.throws(() => gone.push(1), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
  using big = new DynamicArray<bigint>("i64");
  big.push(2n ** 60n);
  assert.equal(big.get(0), 2n ** 60n);
});

test("Vertex records are laid out for the GPU: position padded, color at 16", () => {
  using vertices = new DynamicArray<V>(Vertex);
  vertices.push({ position: [1, 2, 3], color: [4, 5, 6, 7], id: 9 });
  const floats = vertices.view(Float32Array);
  assert.deepEqual([...floats.subarray(0, 8)], [1, 2, 3, 0, 4, 5, 6, 7]);
  assert.equal(new Uint32Array(vertices.bytes.buffer, vertices.bytes.byteOffset, 12)[8], 9);
  assert.equal(vertices.stride, 48);
});

test("float-only records take the Float32Array path and behave the same", () => {
  const Particle = struct({ position: "f32x3", mass: "f32", velocity: "f32x2", transform: "f32x4x4" });
  type P = { position: number[]; mass: number; velocity: number[]; transform: number[] };
  const next = xorshift32(0xf1);
  const f = () => Math.fround(((next() % 2001) - 1000) / 16);
  const make = (): P => ({
    position: [f(), f(), f()],
    mass: f(),
    velocity: [f(), f()],
    transform: Array.from({ length: 16 }, f),
  });
  using particles = new DynamicArray<P>(Particle, { capacity: 2 });
  const model: P[] = [];
  for (let step = 0; step < 3000; step++) {
    const op = below(next, 10);
    if (op < 5 || model.length === 0) {
      const p = make();
      particles.push(p);
      model.push(p);
    } else if (op < 7) {
      const i = below(next, model.length);
      const p = make();
      particles.set(i, p);
      model[i] = p;
    } else {
      const i = below(next, model.length);
      assert.deepEqual(particles.swapRemove(i), model[i]);
      const last = model.pop()!;
      if (i < model.length) model[i] = last;
    }
  }
  assert.deepEqual([...particles], model);
  const floats = particles.view(Float32Array);
  for (let i = 0; i < model.length; i++) assert.equal(floats[i * (Particle.size / 4) + 3], 0, "f32x3 padding is 0");
  assert.throws(() => particles.push({ ...make(), velocity: [1, 2, 3] }), RangeError);
  assert.throws(() => particles.push({ ...make(), position: 5 as unknown as number[] }), TypeError);
  assert.throws(() => particles.push({ ...make(), mass: "x" as unknown as number }), TypeError);
  // Shapes the generated writer leaves to the checked path: typed arrays, missing fields.
  const p = make();
  particles.set(0, { ...p, position: new Float32Array(p.position) as unknown as number[] });
  assert.deepEqual(particles.get(0), p);
  particles.set(0, { mass: 2 } as P);
  assert.deepEqual(particles.get(0), {
    position: [0, 0, 0],
    mass: 2,
    velocity: [0, 0],
    transform: new Array(16).fill(0),
  });
});

test("float-only records are written the same where code generation is not allowed", () => {
  const Particle = struct({ position: "f32x3", mass: "f32" });
  const particles = withoutCodegen(() => new DynamicArray<{ position: number[]; mass: number }>(Particle));
  particles.push({ position: [1, 2, 3], mass: 4 });
  assert.deepEqual(particles.get(0), { position: [1, 2, 3], mass: 4 });
  assert.deepEqual([...particles.view(Float32Array)], [1, 2, 3, 0, 4, 0, 0, 0]);
  assert.throws(() => particles.push({ position: [1, 2], mass: 4 }), RangeError);
  particles.free();
});

test("generated readers and writers store the same bytes as the DataView path, for every field type", () => {
  const fields = {
    a: "u8",
    b: "i8",
    c: "u16",
    d: "i16",
    e: "u32",
    f: "i32",
    g: "f32",
    h: "f64",
    i: "i64",
    j: "u64",
    k: "f32x2",
    l: "f32x3",
    m: "f32x4",
    n: "i32x4",
    o: "u32x4",
    p: "f32x4x4",
  } as const;
  const next = xorshift32(0x6e4);
  const int = () => (next() % 100_000) - 50_000 + (below(next, 4) === 0 ? 0.75 : 0);
  const float = () => below(next, 10) === 0 ? NaN : int() / 7;
  const big = () => BigInt(Math.trunc(int())) * 1_000_003n;
  const vector = (n: number) => Array.from({ length: n }, float);
  const record = () => ({
    a: int(),
    b: int(),
    c: int(),
    d: int(),
    e: int(),
    f: int(),
    g: float(),
    h: float(),
    i: big(),
    j: big(),
    k: vector(2),
    l: vector(3),
    m: vector(4),
    n: vector(4).map(Math.trunc),
    o: vector(4).map(Math.trunc),
    p: vector(16),
  });
  const generated = new DynamicArray(struct(fields));
  const generic = withoutCodegen(() => new DynamicArray<unknown>(struct(fields)));
  for (let step = 0; step < 500; step++) {
    const r = record();
    if (below(next, 5) === 0) delete (r as Partial<typeof r>).h; // a missing field is stored as zeros
    generated.push(r);
    generic.push(r);
  }
  generated.set(3, record());
  generic.set(3, generated.get(3));
  assert.deepEqual([...generated.bytes], [...generic.bytes]);
  assert.deepEqual([...generated], [...generic]);
  generated.free();
  generic.free();
});

test("generated and DataView paths agree on 300 random layouts and on every scalar type", () => {
  const types = [
    "u8",
    "i8",
    "u16",
    "i16",
    "u32",
    "i32",
    "f32",
    "f64",
    "i64",
    "u64",
    "f32x2",
    "f32x3",
    "f32x4",
    "i32x4",
    "u32x4",
    "f32x4x4",
  ] as const;
  const next = xorshift32(0x1a7);
  const valueOf = (type: (typeof types)[number]) => {
    const n = (next() % 2001) - 1000 + (below(next, 3) === 0 ? 0.5 : 0);
    if (type === "i64" || type === "u64") return BigInt(Math.trunc(n));
    const count = { f32x2: 2, f32x3: 3, f32x4: 4, i32x4: 4, u32x4: 4, f32x4x4: 16 }[type as string];
    return count === undefined ? n : Array.from({ length: count }, () => (next() % 2001) - 1000);
  };
  const check = (make: () => DynamicArray<unknown>, value: () => unknown, label: string) => {
    const generated = make();
    const generic = withoutCodegen(make);
    for (let i = 0; i < 20; i++) {
      const v = value();
      generated.push(v);
      generic.push(v);
    }
    assert.deepEqual([...generated.bytes], [...generic.bytes], label);
    assert.deepEqual([...generated], [...generic], label);
    generated.free();
    generic.free();
  };
  // Scalar codecs are cached per type name, so the DataView side is a codec made directly.
  for (const type of types) {
    const generated = new DynamicArray(type);
    const generic = withoutCodegen(() => new RecordCodec(type, "test"));
    const bytes = new Uint8Array(20 * generic.stride);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 20; i++) {
      const v = valueOf(type);
      generated.push(v);
      generic.write(view, bytes, i * generic.stride, v);
    }
    assert.deepEqual([...generated.bytes], [...bytes], type);
    assert.deepEqual(
      [...generated],
      Array.from({ length: 20 }, (_, i) => generic.read(view, i * generic.stride)),
      type,
    );
    generated.free();
  }
  for (let n = 0; n < 300; n++) {
    const fields: Record<string, (typeof types)[number]> = {};
    const count = 1 + below(next, 6);
    for (let f = 0; f < count; f++) fields[`f${f}`] = types[below(next, types.length)];
    const options = { packed: below(next, 4) === 0, align: below(next, 4) === 0 ? 64 : undefined };
    // A fresh layout object for each path, so neither shares the other's cached codec.
    check(
      () => new DynamicArray(struct(fields, options)),
      () => Object.fromEntries(Object.entries(fields).map(([name, type]) => [name, valueOf(type)])),
      `${JSON.stringify(fields)} ${JSON.stringify(options)}`,
    );
  }
});
