// WGSL layouts of struct(): the sizes and offsets WGSL's rules give (the
// known answers first), the uniform address space's extra rules, nesting,
// and the WGSL and C declarations. The GPU itself checks these layouts in
// test/gpu/wgsl_layout_test.ts; here C checks the same offsets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type LayoutRules, struct, type StructFieldType, type StructLayout, uniformArray } from "../../mod.ts";
import { cRoundTrip } from "./_c_roundtrip.ts";

const storage = { layout: "wgsl-storage" } as const;
const uniform = { layout: "wgsl-uniform" } as const;

test("known answers: { v: f32x3, f: f32 } is 16 bytes in WGSL (32 in C); the issue's particle is 32", () => {
  assert.equal(struct({ v: "f32x3", f: "f32" }, storage).size, 16);
  assert.equal(struct({ v: "f32x3", f: "f32" }, uniform).size, 16);
  assert.equal(struct({ v: "f32x3", f: "f32" }).size, 32);
  const particle = struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" }, storage);
  assert.equal(particle.size, 32);
  assert.deepEqual(
    Object.fromEntries(Object.entries(particle.fields).map(([name, f]) => [name, f.offset])),
    { pos: 0, mass: 12, vel: 16, id: 28 },
  );
  assert.equal(particle.layout, "wgsl-storage");
  assert.equal(struct({ x: "f32" }).layout, "c", "the default rules are C's");
});

const Inner4 = struct({ x: "f32" }, uniform); // 4 bytes, align 4
const Inner8 = struct({ p: "f32x2" }, storage); // 8 bytes, align 8

test("WGSL rules (table): sizes, alignments, offsets per address space", () => {
  const rows: [Record<string, StructFieldType>, LayoutRules, number, number, Record<string, number>][] = [
    [{ a: "f32", v: "f32x3" }, "wgsl-storage", 32, 16, { a: 0, v: 16 }],
    [{ v: "f32x3", a: "f32", b: "f32" }, "wgsl-storage", 32, 16, { v: 0, a: 12, b: 16 }],
    [{ uv: "f32x2", n: "f32" }, "wgsl-storage", 16, 8, { uv: 0, n: 8 }],
    [{ h: "f16", f: "f32", g: "f16" }, "wgsl-storage", 12, 4, { h: 0, f: 4, g: 8 }],
    [{ h: "f16", g: "f16" }, "wgsl-storage", 4, 2, { h: 0, g: 2 }],
    [{ m: "f32x4x4", id: "u32" }, "wgsl-storage", 80, 16, { m: 0, id: 64 }],
    // Arrays: stride = the element's size rounded to its alignment (a vec3 in an array takes 16).
    [{ a: ["f32", 3], b: "f32" }, "wgsl-storage", 16, 4, { a: 0, b: 12 }],
    [{ a: ["f32x3", 2], b: "f32" }, "wgsl-storage", 48, 16, { a: 0, b: 32 }],
    [{ a: ["f16", 3], b: "f16" }, "wgsl-storage", 8, 2, { a: 0, b: 6 }],
    [{ a: [["u32", 2], 3], b: "u32" }, "wgsl-storage", 28, 4, { a: 0, b: 24 }],
    // Nested structs: storage keeps their own alignment and size.
    [{ a: "f32", s: Inner4, b: "f32" }, "wgsl-storage", 12, 4, { a: 0, s: 4, b: 8 }],
    [{ a: "f32", s: Inner8, b: "f32" }, "wgsl-storage", 24, 8, { a: 0, s: 8, b: 16 }],
    // Uniform: nested structs aligned to 16, and 16 bytes (their size rounded up) clear before the next field.
    [{ a: "f32", s: Inner4, b: "f32" }, "wgsl-uniform", 48, 16, { a: 0, s: 16, b: 32 }],
    [{ s: Inner4, b: "f32" }, "wgsl-uniform", 32, 16, { s: 0, b: 16 }],
    // Uniform arrays: elements 16 bytes apart (vec4, vec3, matrices, 16-byte structs), the array aligned to 16.
    [{ a: "f32", v: ["f32x4", 2], b: "f32" }, "wgsl-uniform", 64, 16, { a: 0, v: 16, b: 48 }],
    [{ a: "f32", v: ["f32x3", 2], b: "f32" }, "wgsl-uniform", 64, 16, { a: 0, v: 16, b: 48 }],
    [{ a: "f32", l: [struct({ c: "f32x3", i: "f32" }, uniform), 2] }, "wgsl-uniform", 48, 16, { a: 0, l: 16 }],
    // Vectors and scalars follow the same rules in both address spaces.
    [{ v: "f32x3", f: "f32" }, "wgsl-uniform", 16, 16, { v: 0, f: 12 }],
    [{ a: "u32", b: "i32x4", c: "u32x4" }, "wgsl-uniform", 48, 16, { a: 0, b: 16, c: 32 }],
  ];
  for (const [fields, layout, size, align, offsets] of rows) {
    const label = `${layout} ${
      JSON.stringify(fields, (_, v) => (v === Inner4 ? "Inner4" : v === Inner8 ? "Inner8" : v))
    }`;
    const made = struct(fields, { layout });
    assert.equal(made.size, size, `size of ${label}`);
    assert.equal(made.align, align, `align of ${label}`);
    for (const [name, offset] of Object.entries(offsets)) {
      assert.equal(made.fields[name].offset, offset, `${name} in ${label}`);
    }
  }
});

test("align raises a WGSL record's alignment and size (a 256-byte uniform slot)", () => {
  const slotted = struct({ time: "f32" }, { layout: "wgsl-uniform", align: 256 });
  assert.equal(slotted.size, 256);
  assert.equal(slotted.align, 256);
  assert.match(slotted.wgslDeclaration("U"), /@align\(256\) time: f32,/);
});

test("fields report their type, size and alignment; array types are frozen copies", () => {
  const spec: [StructFieldType, number] = ["f32x3", 2];
  const layout = struct({ a: spec, s: Inner4 }, uniform);
  spec[1] = 99; // changing the caller's array afterwards changes nothing
  assert.deepEqual(layout.fields.a.type, ["f32x3", 2]);
  assert.ok(Object.isFrozen(layout.fields.a.type));
  assert.equal(layout.fields.a.size, 32);
  assert.equal(layout.fields.s.type, Inner4);
  assert.equal(layout.fields.s.size, 4, "a field's own size; the 12 bytes after it keep the next field off");
  assert.equal(layout.fields.s.align, 16);
  assert.equal(layout.fields.a.align, 16);
});

test("wgslDeclaration(): plain when WGSL's rules place every field; @align/@size only where needed (and on every member holding a struct)", () => {
  assert.equal(
    struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" }, storage).wgslDeclaration("Particle"),
    "struct Particle {\n  pos: vec3<f32>,\n  mass: f32,\n  vel: vec3<f32>,\n  id: u32,\n}",
  );
  const Light = struct({ color: "f32x3", intensity: "f32" }, uniform);
  const Scene = struct({ time: "f32", inner: Inner4, lights: [Light, 2], h: "f16", m: "f32x4x4" }, uniform);
  assert.equal(
    Scene.wgslDeclaration("Scene"),
    [
      "enable f16;",
      "",
      "struct Scene_inner {\n  x: f32,\n}",
      "",
      "struct Scene_lights {\n  color: vec3<f32>,\n  intensity: f32,\n}",
      "",
      "struct Scene {\n  time: f32,\n  @align(16) @size(16) inner: Scene_inner,\n  @align(16) lights: array<Scene_lights, 2>,\n" +
      "  h: f16,\n  m: mat4x4<f32>,\n}",
    ].join("\n"),
  );
  // One struct per nested layout, however many fields hold it.
  const Pair = struct({ a: Inner8, b: Inner8, list: [Inner8, 2] }, storage);
  assert.equal(Pair.wgslDeclaration("Pair").match(/struct /g)?.length, 2);
  // A C layout keeps its offsets in WGSL: an f32x3 takes 16 bytes.
  assert.equal(
    struct({ position: "f32x3", color: "f32x4" }).wgslDeclaration("Vertex"),
    "struct Vertex {\n  @size(16) position: vec3<f32>,\n  color: vec4<f32>,\n}",
  );
});

test("fields WGSL cannot hold are a TypeError naming the field", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => struct({ ok: "f32", flag: "bool" }, storage), /'flag'.*bool.*not host-shareable/],
    [() => struct({ flags: ["bool", 4] }, uniform), /'flags\[\]'.*bool/],
    [() => struct({ b: "u8" }, storage), /'b'.*8-bit/],
    [() => struct({ d: "f64" }, uniform), /'d'.*f64/],
    [() => struct({ n: "i64" }, storage), /'n'.*64-bit/],
    [() => struct({ a: ["f32", 4] }, uniform), /'a'.*4 bytes apart.*multiple of 16/],
    [() => struct({ a: ["f32x2", 2] }, uniform), /'a'.*8 bytes apart/],
    [() => struct({ s: struct({ x: "f32" }) }, storage), /'s'.*layout "c"/],
    [() => struct({ s: struct({ x: "f32" }, storage) }, uniform), /'s'.*layout "wgsl-storage"/],
    [() => struct({ s: Inner4 }), /'s'.*layout "wgsl-uniform".*layout "c"/],
    [() => struct({ flag: "bool", x: "f32" }).wgslDeclaration("X"), /'flag'.*bool/],
    [() => struct({ a: "u8", x: "f32" }, { packed: true }).wgslDeclaration("X"), /packed/],
    [() => struct({ s: struct({ b: "u16" }) }).wgslDeclaration("X"), /'s\.b'.*16-bit/],
    [() => struct({ loop: "f32" }).wgslDeclaration("X"), /'loop'.*keyword/],
    [() => struct({ x: "f32" }, storage).wgslDeclaration("struct"), /keyword/],
    [() => struct({ x: "f32" }, storage).wgslDeclaration("_"), /WGSL identifier/],
    [() => struct({ x: "f32" }, storage).wgslDeclaration(7 as unknown as string), /WGSL identifier/],
    [() => struct({ x: "f32" }, { layout: "wgsl-storage", packed: true }), /'packed' is only for layout "c"/],
  ];
  for (const [act, message] of cases) assert.throws(act, (e) => e instanceof TypeError && message.test(e.message));
});

test("uniformArray() keeps a WGSL layout's rules in its 256-byte slots", () => {
  const U = struct({ v: "f32x3", f: "f32", s: Inner4 }, uniform);
  using slots = uniformArray<{ v: number[]; f: number; s: { x: number } }>(U);
  slots.push({ v: [1, 2, 3], f: 4, s: { x: 5 } });
  slots.push({ v: [6, 7, 8], f: 9, s: { x: 10 } });
  assert.equal(slots.stride, 256);
  const floats = new Float32Array(slots.bytes.buffer, slots.bytes.byteOffset, 128);
  assert.deepEqual([...floats.subarray(0, 5)], [1, 2, 3, 4, 5], "f at byte 12, s at 16 as in WGSL");
  assert.deepEqual([...floats.subarray(64, 69)], [6, 7, 8, 9, 10]);
  assert.deepEqual(slots.get(1), { v: [6, 7, 8], f: 9, s: { x: 10 } });
});

test("cDeclaration() of WGSL layouts compiles, and C reads records written through DynamicArray field by field", () => {
  const Light = struct({ color: "f32x3", intensity: "f32" }, uniform);
  const layouts: [string, StructLayout][] = [
    ["Particle", struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" }, storage)],
    ["Packed3", struct({ v: "f32x3", f: "f32" }, storage)],
    ["Arrays", struct({ a: ["f32", 3], v3: ["f32x3", 2], m: "f32x4x4", uv: "f32x2", h: ["f16", 3] }, storage)],
    [
      "Scene",
      struct({ time: "f32", inner: Inner4, after: "f32", lights: [Light, 2], ids: ["u32x4", 2], last: Inner4 }, {
        layout: "wgsl-uniform",
        align: 256,
      }),
    ],
    ["Nesting", struct({ k: "u32", light: Light, pair: [Inner8, 2], n: "f16" }, storage)],
  ];
  const out = cRoundTrip(layouts);
  for (const [name] of layouts) assert.equal(out[name], "ok", `${name}: ${out[name]}`);
});
