import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  Arena,
  DebugAllocator,
  DynamicArray,
  FreeListAllocator,
  PoolAllocator,
  struct,
  SystemAllocator,
} from "../../mod.ts";
import { below, withoutCodegen, xorshift32 } from "../_helpers.ts";
import { spyBlocks } from "../fixtures/block_spy.ts";
import { RecordCodec } from "../../src/arrays/_record_codec.ts";
import { trapLayout, type TrapRecord, trapRecord, withRecordTraps } from "./_record_traps.ts";

const Vertex = struct({ position: "f32x3", color: "f32x4", id: "u32" });
type V = { position: number[]; color: number[]; id: number };

function vertex(next: () => number): V {
  const f = () => Math.fround(((next() % 2001) - 1000) / 8);
  return { position: [f(), f(), f()], color: [f(), f(), f(), f()], id: next() >>> 0 };
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
    if (step % 500 === 0) {
      assert.deepEqual([...array], model, where);
      assert.deepEqual(array.toArray(), model, where);
    }
  }
  assert.deepEqual([...array], model);
  assert.deepEqual(array.toArray(), model);
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
  assert.throws(() => new DynamicArray("f8" as "f32"), TypeError);
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
  // Shapes the generated writer leaves to the checked path: typed arrays (stored), missing fields (refused).
  const p = make();
  particles.set(0, { ...p, position: new Float32Array(p.position) as unknown as number[] });
  assert.deepEqual(particles.get(0), p);
  assert.throws(() => particles.set(0, { mass: 2 } as P), TypeError);
  assert.deepEqual(particles.get(0), p, "a refused record leaves the element as it was");
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
  // Integers here overflow their fields and have fractions: both paths wrap them as C converts them.
  // (<unknown>: the vectors here are computed, number[] of a length the type checker does not know.)
  const generated = new DynamicArray<unknown>(struct(fields), { wrap: true });
  const generic = withoutCodegen(() => new DynamicArray<unknown>(struct(fields), { wrap: true }));
  for (let step = 0; step < 500; step++) {
    const r = record();
    if (below(next, 5) === 0) {
      delete (r as Partial<typeof r>).h; // a missing field is refused by both
      assert.throws(() => generated.push(r), TypeError);
      assert.throws(() => generic.push(r), TypeError);
      continue;
    }
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
  // With `wrap`, any number (fractions and negative unsigned values included); strict, values that fit.
  const valueOf = (type: (typeof types)[number], wrap: boolean) => {
    const unsigned = type.startsWith("u");
    const integer = !type.startsWith("f");
    const n = (next() % 2001) - (wrap || !unsigned ? 1000 : 0) +
      (below(next, 3) === 0 && (wrap || !integer) ? 0.5 : 0);
    const fit = !wrap && (type === "i8" || type === "u8") ? (unsigned ? n % 256 : (n % 256) - 128 * Math.sign(n)) : n;
    if (type === "i64" || type === "u64") return BigInt(Math.trunc(fit));
    const count = { f32x2: 2, f32x3: 3, f32x4: 4, i32x4: 4, u32x4: 4, f32x4x4: 16 }[type as string];
    return count === undefined
      ? fit
      : Array.from({ length: count }, () => (next() % 2001) - (wrap || !unsigned ? 1000 : 0));
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
  for (const wrap of [true, false]) {
    for (const type of types) {
      const generated = new DynamicArray<unknown>(type, { wrap }); // (the values are of any of the types)
      const generic = withoutCodegen(() => new RecordCodec(type, "test", wrap));
      const values = Array.from({ length: 20 }, () => valueOf(type, wrap));
      for (const v of values) generated.push(v);
      const bytes = generic.encodeMany(values, "test").bytes;
      const view = new DataView(bytes.buffer);
      assert.deepEqual([...generated.bytes], [...bytes], type);
      assert.deepEqual(
        [...generated],
        Array.from({ length: 20 }, (_, i) => generic.read(view, i * generic.stride)),
        type,
      );
      generated.free();
    }
  }
  for (let n = 0; n < 300; n++) {
    const fields: Record<string, (typeof types)[number]> = {};
    const count = 1 + below(next, 6);
    for (let f = 0; f < count; f++) fields[`f${f}`] = types[below(next, types.length)];
    const options = { packed: below(next, 4) === 0, align: below(next, 4) === 0 ? 64 : undefined };
    const wrap = n % 2 === 0;
    // A fresh layout object for each path, so neither shares the other's cached codec.
    check(
      () => new DynamicArray(struct(fields, options), { wrap }),
      () => Object.fromEntries(Object.entries(fields).map(([name, type]) => [name, valueOf(type, wrap)])),
      `${JSON.stringify(fields)} ${JSON.stringify(options)} wrap ${wrap}`,
    );
  }
});

// ---------------------------------------------------------------- issue 10: all or nothing (the safety model: all or nothing)

const isUseAfterFree = (e: unknown) => e instanceof AllocationError && e.category === "use-after-free";
const Item = struct({ id: "u32", pos: "f32x3" });
type ItemRecord = { id: number; pos: number[] };

for (const [label, make] of [["generated", (f: () => unknown) => f()], ["DataView", withoutCodegen]] as const) {
  test(`issue 10 #5 (${label} path): set() with a bad vector leaves the element exactly as it was`, () => {
    const array = make(() => new DynamicArray<ItemRecord>(struct({ id: "u32", pos: "f32x3" }))) as DynamicArray<
      ItemRecord
    >;
    array.push({ id: 42, pos: [1, 2, 3] });
    const before = [...array.bytes];
    assert.throws(() => array.set(0, { id: 7, pos: [9, 9] }), RangeError);
    assert.throws(() => array.set(0, { id: 7, pos: [9, 9, "9" as unknown as number] }), TypeError);
    assert.throws(() => array.set(0, { id: 300.5, pos: [9, 9, 9] }), RangeError);
    assert.throws(() => array.set(0, { id: 7, pos: [9, 9, 9], extra: 1 } as ItemRecord), TypeError);
    assert.deepEqual([...array.bytes], before, "not zeroed, id not overwritten");
    assert.deepEqual(array.get(0), { id: 42, pos: [1, 2, 3] });
    array.free();
  });
}

test("issue 10 #6: a field getter that pushes to the same array runs before the slot is taken", () => {
  for (const wrap of [false, true]) {
    using array = new DynamicArray<ItemRecord>(Item, { capacity: 1, wrap });
    array.push({ id: 1, pos: [1, 1, 1] }); // full: the outer push must grow after the getter ran
    const record = {
      get id() {
        for (let i = 0; i < 100; i++) array.push({ id: 100 + i, pos: [i, i, i] }); // grows, maybe moves
        return 2;
      },
      pos: [2, 2, 2],
    };
    assert.equal(array.push(record), 102);
    assert.equal(array.length, 102);
    assert.deepEqual(array.get(101), { id: 2, pos: [2, 2, 2] }, "the outer value is the last element");
    assert.deepEqual(array.get(1), { id: 100, pos: [0, 0, 0] });
    assert.equal([...array].filter((r) => r.id === 0).length, 0, "no unwritten element was counted");
  }
});

test("issue 10 #6: a field getter that frees the array: use-after-free, and nothing written anywhere", () => {
  const heap = new FreeListAllocator({ capacity: 1 << 16 });
  const array = new DynamicArray<ItemRecord>(Item, { allocator: heap, capacity: 4 });
  array.push({ id: 1, pos: [1, 1, 1] });
  let neighbour: Uint8Array | null = null;
  const record = {
    id: 7,
    get pos() {
      array.free();
      neighbour = heap.alloc(4 * 32); // likely the freed block's memory
      neighbour.fill(0xab);
      return [9, 9, 9];
    },
  };
  assert.throws(() => array.push(record), isUseAfterFree);
  assert.ok(neighbour !== null);
  assert.ok((neighbour as Uint8Array).every((b) => b === 0xab), "the write did not land in another live block");
  heap.free(neighbour!);
});

test("issue 10 #6: a getter that frees the storage through the allocator (SystemAllocator.free): use-after-free", () => {
  const allocator = new SystemAllocator();
  const spy = spyBlocks(allocator);
  const array = new DynamicArray<ItemRecord>(Item, { allocator });
  array.push({ id: 1, pos: [1, 1, 1] });
  const block = spy.last(); // the allocator's own view of the storage
  const record = {
    id: 7,
    get pos() {
      allocator.free(block);
      return [9, 9, 9];
    },
  };
  assert.throws(() => array.push(record), isUseAfterFree);
  assert.equal(array.length, 0);
  array.free(); // nothing left to give back
});

test("issue 10 #9: pushMany is all or nothing; each value is read once", () => {
  for (const make of [(f: () => unknown) => f(), withoutCodegen]) {
    const array = make(() =>
      new DynamicArray<ItemRecord>(struct({ id: "u32", pos: "f32x3" }), { capacity: 2 })
    ) as DynamicArray<ItemRecord>;
    array.push({ id: 1, pos: [1, 1, 1] });
    const before = [...array.bytes];
    const good = (id: number) => ({ id, pos: [id, id, id] });
    assert.throws(() => array.pushMany([good(2), good(3), { id: 4, pos: [4, 4] }, good(5)]), /values\[2\]/);
    assert.throws(() => array.pushMany([good(2), { id: -1, pos: [1, 1, 1] }]), RangeError);
    assert.deepEqual([...array.bytes], before);
    assert.equal(array.capacity, 2, "it did not grow for values it refused");
    assert.equal(array.metrics().reallocations, 0);
    // Every getter runs once, before anything is stored.
    let reads = 0;
    const counted = {
      get id() {
        return ++reads;
      },
      pos: [0, 0, 0],
    };
    array.pushMany([counted, counted, counted]);
    assert.equal(reads, 3);
    assert.deepEqual([...array].map((r) => r.id), [1, 1, 2, 3]);
    // A getter that pushes: its element lands first, then all of the batch.
    const sneaky = {
      get id() {
        array.push(good(99));
        return 10;
      },
      pos: [0, 0, 0],
    };
    array.pushMany([good(8), sneaky, good(11)]);
    assert.deepEqual([...array].map((r) => r.id), [1, 1, 2, 3, 99, 8, 10, 11]);
    // A getter's own error passes through unchanged.
    class Mine extends Error {}
    assert.throws(() =>
      array.pushMany([{
        get id(): number {
          throw new Mine("mine");
        },
        pos: [0, 0, 0],
      }]), Mine);
    assert.equal(array.length, 8);
    array.free();
  }
});

test("issue 10 #10: pushMany(arr.bytes) when the array must grow copies the source first", () => {
  for (const allocator of [new SystemAllocator(), new FreeListAllocator({ capacity: 1 << 16 }), new Arena()]) {
    using array = new DynamicArray<number>("u32", { allocator, capacity: 3 });
    array.pushMany([1, 2, 3]);
    assert.equal(array.pushMany(array.bytes), 6);
    assert.equal(array.pushMany(array.view(Uint32Array).subarray(1, 3)), 8);
    assert.equal(array.pushMany(array.view(DataView)), 16);
    assert.deepEqual([...array], [1, 2, 3, 1, 2, 3, 2, 3, 1, 2, 3, 1, 2, 3, 2, 3]);
  }
});

test("strict records: exactly the layout's fields; integers that fit; floats of any value; class instances work", () => {
  const All = {
    a: "u8",
    b: "i8",
    c: "i16",
    d: "u16",
    e: "i32",
    f: "u32",
    g: "i64",
    h: "u64",
    x: "f32",
    y: "f64",
  } as const;
  const fit = {
    a: 255,
    b: -128,
    c: -32768,
    d: 65535,
    e: -(2 ** 31),
    f: 2 ** 32 - 1,
    g: -(2n ** 63n),
    h: 2n ** 64n - 1n,
  };
  for (const make of [(f: () => unknown) => f(), withoutCodegen]) {
    const array = make(() => new DynamicArray<Record<string, unknown>>(struct(All))) as DynamicArray<
      Record<string, unknown>
    >;
    array.push({ ...fit, x: Infinity, y: NaN });
    assert.deepEqual(array.get(0), { ...fit, x: Infinity, y: NaN });
    array.push({ ...fit, g: 5, h: 2 ** 53, x: -0, y: 1e300 }); // numbers for 64-bit fields, when integers
    assert.deepEqual(array.get(1), { ...fit, g: 5n, h: 2n ** 53n, x: -0, y: 1e300 });
    class Record_ {
      get a() {
        return 1;
      }
      b = 2;
      c = 3;
      d = 4;
      e = 5;
      f = 6;
      g = 7n;
      h = 8n;
      x = 9;
      y = 10;
    }
    array.push(new Record_() as unknown as Record<string, unknown>); // a getter on the prototype is a field
    assert.deepEqual(array.get(2), { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7n, h: 8n, x: 9, y: 10 });
    const inherited = Object.assign(Object.create({ extra: 1 }), { ...fit, x: 0, y: 0 });
    assert.throws(() => array.push(inherited), TypeError, "an enumerable inherited property is not a field");
    assert.equal(array.length, 3);
    array.free();
  }
});

test("wrap: true stores integers as C converts them, on both paths and for every integer type", () => {
  const All = { a: "u8", b: "i8", c: "i16", d: "u16", e: "i32", f: "u32", g: "i64", h: "u64", v: "i32x4" } as const;
  const input = {
    a: 300,
    b: 200,
    c: 40000,
    d: -1,
    e: 2 ** 31,
    f: -1.9,
    g: 2n ** 63n,
    h: -1,
    v: [NaN, 1.9, -1.9, 2 ** 32 + 3],
  };
  const expected = {
    a: 44,
    b: -56,
    c: -25536,
    d: 65535,
    e: -(2 ** 31),
    f: 4294967295,
    g: -(2n ** 63n),
    h: 2n ** 64n - 1n,
    v: [0, 1, -1, 3],
  };
  for (const make of [(f: () => unknown) => f(), withoutCodegen]) {
    const array = make(() => new DynamicArray<Record<string, unknown>>(struct(All), { wrap: true })) as DynamicArray<
      Record<string, unknown>
    >;
    array.push(input);
    assert.deepEqual(array.get(0), expected);
    assert.throws(() => array.push({ ...input, a: "300" }), TypeError, "wrapping converts numbers only");
    const snap = array.snapshot();
    snap.push(input); // a snapshot wraps too
    assert.deepEqual(snap.get(1), expected);
    snap.free();
    array.free();
  }
  using bytes = new DynamicArray<number>("u8", { wrap: true });
  bytes.pushMany([256, 257, -1, 1.5, Infinity]);
  assert.deepEqual([...bytes], [0, 1, 255, 1, 0]);
});

test("view(DataView) gives a DataView over the live bytes on both runtimes; view() refuses other constructors", () => {
  using array = new DynamicArray<ItemRecord>(Item);
  array.push({ id: 7, pos: [1, 2, 3] });
  const view = array.view(DataView);
  assert.ok(view instanceof DataView);
  assert.equal(view.byteLength, 32);
  assert.equal(view.getUint32(0, true), 7);
  assert.equal(view.getFloat32(20, true), 2);
  assert.throws(() => array.view(Array as never), TypeError);
  assert.throws(() => array.view(class extends Uint8Array {}), TypeError);
});

test("indexes: a non-number is a TypeError, a number out of range a RangeError", () => {
  using array = new DynamicArray<number>("u32");
  array.pushMany([1, 2]);
  for (const bad of ["0", 0n, null, {}, { valueOf: () => 0 }]) {
    for (const use of [(i: never) => array.get(i), (i: never) => array.set(i, 5), (i: never) => array.remove(i)]) {
      assert.throws(() => use(bad as never), TypeError);
    }
  }
  for (const bad of [-1, 0.5, 2, NaN, Infinity]) assert.throws(() => array.get(bad), RangeError);
  assert.deepEqual([...array], [1, 2]);
});

test("an allocator that returns something unusable is named in AllocationError('corruption')", () => {
  const system = new SystemAllocator();
  const lying = (returns: (size: number) => unknown) => ({
    kind: "system" as const,
    alloc: (size: number) => returns(size),
    tryAlloc: (size: number) => returns(size),
    array: system.array.bind(system),
    free: () => {},
    resize: (_: ArrayBufferView, size: number) => returns(size),
    owns: () => false,
    stats: () => system.stats(),
  });
  const corrupt = (e: unknown) =>
    e instanceof AllocationError && e.category === "corruption" && /system/.test(e.message);
  assert.throws(() => new DynamicArray("f32", { allocator: lying(() => new Uint8Array(2)) as never }), corrupt);
  assert.throws(
    () => new DynamicArray("f32", { allocator: lying((n) => new DataView(new ArrayBuffer(n))) as never }),
    corrupt,
  );
  assert.throws(
    () => new DynamicArray("f32", { allocator: lying((n) => new Uint8Array(new ArrayBuffer(n + 4), 4, n)) as never }),
    corrupt,
  );
  // A resize that returns garbage leaves the array unusable, not writing through the garbage.
  let calls = 0;
  const array = new DynamicArray<number>("f32", {
    allocator: lying((n) => (calls++ === 0 ? new Uint8Array(n) : new Uint8Array(1))) as never,
    capacity: 1,
  });
  array.push(1);
  assert.throws(() => array.push(2), corrupt);
  assert.throws(() => array.get(0), isUseAfterFree);
});

test("an iteration started before free() stops with use-after-free", () => {
  const array = new DynamicArray<number>("u8");
  array.pushMany([1, 2, 3]);
  const seen: number[] = [];
  assert.throws(() => {
    for (const value of array) {
      seen.push(value);
      if (value === 2) array.free();
    }
  }, isUseAfterFree);
  assert.deepEqual(seen, [1, 2]);
  assert.equal(array.length, 0);
  assert.throws(() => array.bytes, isUseAfterFree);
});

test("a user-written allocator that detaches on free: the array sees it; a call from inside its resize is refused", () => {
  const system = new SystemAllocator();
  let array: DynamicArray<number> | null = null;
  let reentered: unknown = null;
  const own = {
    kind: "system" as const,
    alloc: (size: number) => new Uint8Array(new ArrayBuffer(size)),
    tryAlloc: (size: number) => new Uint8Array(new ArrayBuffer(size)),
    array: system.array.bind(system),
    free: (view: ArrayBufferView) => void (view.buffer as ArrayBuffer).transfer(0),
    resize: (view: ArrayBufferView, size: number) => {
      try {
        array?.push(99);
      } catch (error) {
        reentered = error;
      }
      const bigger = new Uint8Array(new ArrayBuffer(size));
      bigger.set(new Uint8Array(view.buffer, view.byteOffset, Math.min(size, view.byteLength)));
      (view.buffer as ArrayBuffer).transfer(0);
      return bigger;
    },
    owns: () => false,
    stats: () => system.stats(),
  };
  array = new DynamicArray<number>("u32", { allocator: own, capacity: 1 });
  array.push(1);
  array.push(2); // grows: the allocator's push from inside resize is refused
  assert.ok(reentered instanceof AllocationError && reentered.category === "unsupported", String(reentered));
  assert.deepEqual([...array], [1, 2]);
  own.free(array.bytes);
  assert.equal(array.length, 0);
  assert.throws(() => array!.push(3), isUseAfterFree);
  assert.throws(() => array!.get(0), isUseAfterFree);
  array.free();
});

test("an allocator that hands the same bytes to two live arrays is corruption; a resize in place is not", () => {
  const memory = new ArrayBuffer(1 << 12);
  // A (broken) allocator whose every block is the start of one buffer, grown or shrunk in place.
  const same = {
    kind: "system" as const,
    alloc: (size: number) => new Uint8Array(memory, 0, size),
    tryAlloc: (size: number) => new Uint8Array(memory, 0, size),
    array: () => {
      throw new Error("not used");
    },
    free: () => {},
    resize: (_view: ArrayBufferView, size: number) => new Uint8Array(memory, 0, size),
    owns: () => true,
    stats: () => new SystemAllocator().stats(),
  };
  const a = new DynamicArray<number>("u32", { allocator: same as never, capacity: 4 });
  a.pushMany([1, 2, 3, 4, 5]); // grows in place: the block replaces its own storage
  assert.deepEqual([...a], [1, 2, 3, 4, 5]);
  assert.throws(
    () => new DynamicArray<number>("u32", { allocator: same as never }),
    (e) => e instanceof AllocationError && e.category === "corruption" && /overlap/.test(e.message),
  );
  assert.deepEqual([...a], [1, 2, 3, 4, 5]); // the first array is untouched
  a.free();
  const b = new DynamicArray<number>("u32", { allocator: same as never }); // the bytes are free again
  b.push(7);
  assert.deepEqual([...b], [7]);
  b.free();
});

test("DynamicArray.toArray copies the elements out (scalars, tuples, records) and refuses a freed array", () => {
  const scalars = new DynamicArray<number>("i16");
  scalars.pushMany([1, -2, 3]);
  const copy = scalars.toArray();
  scalars.set(0, 9);
  assert.deepEqual(copy, [1, -2, 3], "a copy: later writes do not show");
  const tuples = new DynamicArray<number[]>("f32x3");
  tuples.push([1, 2, 3]);
  assert.deepEqual(tuples.toArray(), [[1, 2, 3]]);
  const records = new DynamicArray<{ id: number; pos: number[] }>(struct({ id: "u32", pos: "f32x2" }));
  assert.deepEqual(records.toArray(), []);
  records.push({ id: 7, pos: [0.5, 1] });
  assert.deepEqual(records.toArray(), [{ id: 7, pos: [0.5, 1] }]);
  for (const array of [scalars, tuples, records] as DynamicArray<unknown>[]) {
    array.free();
    assert.throws(
      () => array.toArray(),
      (e: unknown) => e instanceof AllocationError && e.category === "use-after-free",
    );
  }
});

test("free() whose allocator's free throws keeps the storage and elements; a later free() gives the block back", () => {
  const sys = new SystemAllocator();
  let failOnce = true;
  const allocator = {
    kind: "flaky",
    alloc: (size: number, align?: number) => sys.alloc(size, align),
    resize: (b: Uint8Array, size: number) => sys.resize(b, size),
    free: (b: Uint8Array) => {
      if (failOnce) {
        failOnce = false;
        throw new AllocationError("platform", "transient failure in free");
      }
      sys.free(b);
    },
    owns: (b: Uint8Array) => sys.owns(b), // still its block after the refusal: the array keeps it
  };
  const a = new DynamicArray<number>("f32", { allocator: allocator as never });
  a.push(1);
  a.push(2);
  const view = a.view(Float32Array);
  assert.equal(sys.stats().liveAllocations, 1);
  assert.throws(
    () => a.free(),
    (e: unknown) => e instanceof AllocationError && e.message === "transient failure in free",
  );
  assert.equal(view.length, 0, "views taken before are detached");
  assert.equal(a.length, 2);
  assert.equal(a.get(0), 1);
  assert.equal(a.get(1), 2);
  a.push(3);
  assert.deepEqual([...a.view(Float32Array)], [1, 2, 3]);
  assert.equal(sys.stats().liveAllocations, 1);
  a.free(); // the retry gives the block back
  assert.equal(sys.stats().liveAllocations, 0);
  assert.throws(() => a.get(0), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
  a.free(); // and a third call does nothing
  assert.equal(sys.stats().liveAllocations, 0);
});

test("free() whose allocator's free throws after releasing the block leaves the array freed (never sharing the block)", () => {
  // Before: the array took the block back though the allocator had released it, and the allocator's next alloc
  // handed the same bytes to another owner (a DebugAllocator reporting an overrun frees the block, then throws).
  const memory = new ArrayBuffer(1 << 16);
  let cursor = 0;
  const given: Uint8Array[] = []; // a backing in JavaScript that hands a freed block out again
  const take = (size: number) => {
    const again = given.findIndex((view) => view.length === size);
    if (again >= 0) return given.splice(again, 1)[0];
    const view = new Uint8Array(memory, cursor, size);
    cursor += (size + 15) & ~15;
    return view;
  };
  const backing = {
    kind: "system",
    alloc: take,
    tryAlloc: take,
    free: (view: ArrayBufferView) => void given.push(view as Uint8Array),
    resize: () => {
      throw new RangeError("not used");
    },
    owns: () => true, // it says so for every block
    stats: () => new SystemAllocator().stats(),
  };
  using debug = new DebugAllocator(backing as never);
  const arr = new DynamicArray<number>("u8", { allocator: debug, capacity: 64 });
  for (let i = 0; i < 64; i++) arr.push(0xaa);
  const raw = new Uint8Array(memory);
  raw[raw.indexOf(0xaa) + 64] ^= 0xff; // one byte past the block: an overrun, found by free()'s canary check
  assert.throws(() => arr.free(), (e: unknown) => e instanceof AllocationError && e.category === "corruption");
  assert.throws(() => arr.get(0), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
  const other = debug.alloc(64).fill(0x55); // may be the same bytes: the array must not reach them
  assert.throws(() => arr.get(0), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
  arr.free(); // nothing: already freed
  debug.free(other);

  // The same with an allocator in JavaScript that passes the free on and then throws.
  const inner = new FreeListAllocator({ capacity: 1 << 16 });
  const wrapper = {
    kind: "wrapper",
    alloc: (size: number, align?: number) => inner.alloc(size, align),
    tryAlloc: (size: number, align?: number) => inner.tryAlloc(size, align),
    resize: (view: ArrayBufferView, size: number) => inner.resize(view, size),
    free: (view: ArrayBufferView) => {
      inner.free(view);
      throw new Error("free failed after releasing");
    },
    owns: (view: ArrayBufferView) => inner.owns(view),
    stats: () => inner.stats(),
  };
  const kept = new DynamicArray<number>("u8", { allocator: wrapper as never, capacity: 1024 });
  kept.push(0xaa);
  assert.throws(() => kept.free(), /free failed after releasing/);
  assert.throws(() => kept.get(0), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
  inner.alloc(1024, 16).fill(0x55);
  assert.throws(() => kept.get(0), (e: unknown) => e instanceof AllocationError && e.category === "use-after-free");
});

test("a copy on write whose allocator's code frees the snapshots keeps the storage and leaks nothing", () => {
  // Before: the array copied the storage anyway and dropped the old block with no holder left: never given back.
  const pool = new PoolAllocator({ blockSize: 64 });
  let hook: (() => void) | null = null;
  const allocator = {
    kind: "custom",
    alloc(size: number, align?: number) {
      const run = hook;
      hook = null;
      run?.();
      return pool.alloc(size, align);
    },
    tryAlloc(size: number, align?: number) {
      return this.alloc(size, align);
    },
    free: (view: Uint8Array) => pool.free(view),
    resize: (view: Uint8Array, size: number) => pool.resize(view, size),
    owns: (view: Uint8Array) => pool.owns(view),
    stats: () => pool.stats(),
  };
  const a = new DynamicArray<number>("u32", { allocator: allocator as never, capacity: 4 });
  a.push(1);
  const snapshot = a.snapshot();
  hook = () => snapshot.free(); // the only other holder lets go while the array copies what they share
  a.push(2);
  assert.deepEqual([...a.view(Uint32Array)], [1, 2]);
  assert.equal(pool.stats().liveAllocations, 1);
  a.free();
  assert.equal(pool.stats().liveAllocations, 0);
});

test("a snapshot copied at once through a JavaScript allocator: a call into the source from its code is refused", () => {
  // An array that handed out a view is copied when a snapshot is taken: the allocator's code runs after the
  // source's length was read and before its bytes are copied. Before, a remove(0) there gave a snapshot that
  // was neither the array before nor after ([2, 3, 3]).
  const sys = new SystemAllocator();
  let hook: (() => void) | null = null;
  const allocator = {
    kind: "js",
    alloc(size: number, align?: number) {
      const run = hook;
      hook = null;
      run?.();
      return sys.alloc(size, align);
    },
    resize: (view: Uint8Array, size: number) => sys.resize(view, size),
    free: (view: Uint8Array) => sys.free(view),
  };
  const calls: [string, (a: DynamicArray<number>) => unknown][] = [
    ["remove(0)", (a) => a.remove(0)],
    ["swapRemove(0)", (a) => a.swapRemove(0)],
    ["pop()", (a) => a.pop()],
    ["clear()", (a) => a.clear()],
    ["set(0, 7)", (a) => a.set(0, 7)],
    ["push(9)", (a) => a.push(9)],
    ["compact()", (a) => a.compact()],
    ["free()", (a) => a.free()],
  ];
  for (const [name, call] of calls) {
    const a = new DynamicArray<number>("u32", { allocator: allocator as never, capacity: 4 });
    a.pushMany([1, 2, 3]);
    void a.bytes; // exposed: a snapshot copies at once
    let inner: unknown = null;
    hook = () => {
      try {
        call(a);
      } catch (error) {
        inner = error;
      }
    };
    const snapshot = a.snapshot();
    assert.equal(hook, null, `${name}: the allocator ran`);
    assert.ok(inner instanceof AllocationError && inner.category === "unsupported", `${name}: ${inner}`);
    assert.deepEqual([...snapshot], [1, 2, 3], name);
    assert.deepEqual([...a], [1, 2, 3], name);
    a.push(4); // the source's fast path works again
    assert.deepEqual([...a], [1, 2, 3, 4], name);
    snapshot.free();
    a.free();
  }
  assert.equal(sys.stats().liveAllocations, 0);
});

// A record read back is built without running program code: before, the DataView path (packed layouts, or no
// code generation) assigned each field (`out[name] = value`), so a setter for that name on Object.prototype ran
// between remove()'s checks and its length change (a clear() there left the length at -1).
for (
  const [label, packed, make] of [
    ["packed: DataView path", true, (f: () => unknown) => f()],
    ["aligned: generated path", false, (f: () => unknown) => f()],
    ["aligned, no code generation: DataView path", false, withoutCodegen],
  ] as const
) {
  test(`reading records runs no program code (${label}): get, remove, swapRemove, pop, toArray, iteration, snapshot`, () => {
    const all = [0, 1, 2, 3];
    const reads: [string, (a: DynamicArray<TrapRecord>) => unknown, unknown, number[]][] = [
      ["get(1)", (a) => a.get(1), trapRecord(1), all],
      ["remove(0)", (a) => a.remove(0), trapRecord(0), [1, 2, 3]],
      ["swapRemove(0)", (a) => a.swapRemove(0), trapRecord(0), [3, 1, 2]],
      ["pop()", (a) => a.pop(), trapRecord(3), [0, 1, 2]],
      ["toArray()", (a) => a.toArray(), all.map(trapRecord), all],
      ["iteration", (a) => [...a], all.map(trapRecord), all],
      ["snapshot().remove(1)", (a) => a.snapshot().remove(1), trapRecord(1), all],
      ["snapshot().toArray()", (a) => a.snapshot().toArray(), all.map(trapRecord), all],
    ];
    for (const [name, read, expected, left] of reads) {
      const array = make(() => new DynamicArray<TrapRecord>(trapLayout(packed), { capacity: 4 })) as DynamicArray<
        TrapRecord
      >;
      array.pushMany(all.map(trapRecord));
      // Any trap that runs clears the array: the state change a read must not let happen in its middle.
      const { result, error, trapped } = withRecordTraps(() => read(array), () => array.clear());
      assert.deepEqual(trapped, [], `${name}: no program code ran`);
      assert.equal(error, undefined, `${name}: ${error}`);
      assert.deepEqual(result, expected, name);
      assert.equal(Object.getPrototypeOf(Array.isArray(result) ? result[0] : result), Object.prototype, name);
      assert.deepEqual(array.toArray(), left.map(trapRecord), `${name}: the array after`);
      assert.equal(array.metrics().count, left.length);
      array.push(trapRecord(9));
      assert.deepEqual(array.get(left.length), trapRecord(9), `${name}: usable after`);
      array.free();
    }
  });
}
