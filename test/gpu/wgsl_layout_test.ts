// The WGSL layouts of struct(), checked by a real WebGPU implementation (Deno:
// wgpu/Naga; Bun: Dawn/Tint; on lavapipe here and in CI): for each layout of
// the table, records written from JS through a DynamicArray (a uniformArray,
// one 256-byte slot per record, for uniform layouts) go to a GPU buffer; a
// compute shader declared with wgslDeclaration() copies every scalar of every
// field to an output buffer as u32 bits, and the test compares each with the
// value JS wrote, by field path. A layout memkit placed differently from the
// shader compiler fails here, naming the field.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DynamicArray, struct, type StructLayout, uniformArray } from "../../mod.ts";
import { type Leaf, recordOf } from "../arrays/_layout_leaves.ts";
import { readBack, testGpu, validated } from "./_gpu.ts";

const { gpu, reason } = await testGpu();
const skip = gpu === null ? reason : false;

const RECORDS = 3;
const SLOT = 256; // uniformArray's stride, and WebGPU's minimum dynamic-offset and storage-offset alignment

/** The u32 the shader writes for a leaf: the bits of its value as stored (an f16 widened to f32, exactly). */
function expectedBits(leaf: Leaf): number {
  const value = leaf.value as number;
  switch (leaf.kind) {
    case "f32":
    case "f16": {
      const rounded = leaf.kind === "f16" ? Math.f16round(value) : Math.fround(value);
      return new Uint32Array(new Float32Array([rounded]).buffer)[0];
    }
    case "i32":
      return value >>> 0;
    case "u32":
      return value;
    default:
      throw new Error(`no WGSL kind ${leaf.kind} (${leaf.path})`);
  }
}

/** The WGSL expression of a leaf of record `record` as u32 bits. */
function asBits(leaf: Leaf, record: string): string {
  const x = `${record}${leaf.wgsl}`;
  switch (leaf.kind) {
    case "f16":
      return `bitcast<u32>(f32(${x}))`;
    case "f32":
    case "i32":
      return `bitcast<u32>(${x})`;
    default:
      return x;
  }
}

function usesF16(layout: StructLayout): boolean {
  return layout.wgslDeclaration("Probe").startsWith("enable f16;");
}

interface Row {
  name: string;
  layout: StructLayout;
  /** Size the issue (or WGSL's rules) says the record has. */
  size?: number;
}

const Inner = struct({ p: "f32x2", w: "f32", k: "u32" }, { layout: "wgsl-storage" });
const UInner = struct({ x: "f32" }, { layout: "wgsl-uniform" });
const ULight = struct({ color: "f32x3", intensity: "f32" }, { layout: "wgsl-uniform" });

const ROWS: Row[] = [
  {
    name: "the issue's particle { pos: f32x3, mass, vel: f32x3, id } (storage)",
    layout: struct({ pos: "f32x3", mass: "f32", vel: "f32x3", id: "u32" }, { layout: "wgsl-storage" }),
    size: 32,
  },
  {
    name: "{ v: f32x3, f: f32 }: f packs into v's last 4 bytes (storage)",
    layout: struct({ v: "f32x3", f: "f32" }, { layout: "wgsl-storage" }),
    size: 16,
  },
  {
    name: "{ v: f32x3, f: f32 } (uniform)",
    layout: struct({ v: "f32x3", f: "f32" }, { layout: "wgsl-uniform" }),
    size: 16,
  },
  {
    name: "matrix, vectors, arrays of f32 and of vec3 (storage)",
    layout: struct(
      {
        m: "f32x4x4",
        uv: "f32x2",
        a: ["f32", 5],
        v3s: ["f32x3", 3],
        i: "i32x4",
        u: "u32x4",
        tail: "i32",
      },
      { layout: "wgsl-storage" },
    ),
  },
  {
    name: "nested struct, array of structs, array of arrays (storage)",
    layout: struct(
      { a: "f32", inner: Inner, list: [Inner, 3], grid: [["i32", 2], 3], end: "f32x3" },
      { layout: "wgsl-storage" },
    ),
  },
  {
    // naga (Deno) ignores a nested struct's member @align when it places the struct: the holder's @align says it.
    name: "nested layouts made with align, alone and in arrays (storage)",
    layout: struct(
      {
        a: "f32",
        n: struct({ x: "f32" }, { layout: "wgsl-storage", align: 64 }),
        b: "f32",
        list: [struct({ y: "f32" }, { layout: "wgsl-storage", align: 16 }), 3],
        c: "f32",
      },
      { layout: "wgsl-storage" },
    ),
  },
  {
    name: "align 64 (storage: each record 64 bytes apart)",
    layout: struct({ x: "f32", y: "u32" }, { layout: "wgsl-storage", align: 64 }),
    size: 64,
  },
  {
    name: "uniform: nested structs 16-aligned with 16 bytes clear after, arrays of structs and of vec4",
    layout: struct(
      {
        time: "f32",
        inner: UInner,
        after: "f32",
        lights: [ULight, 2],
        tint: "f32x4",
        ids: ["u32x4", 2],
        last: UInner,
      },
      { layout: "wgsl-uniform" },
    ),
  },
  {
    name: "a storage struct nesting a uniform one",
    layout: struct({ k: "u32", light: ULight, n: "f32" }, { layout: "wgsl-storage" }),
  },
  {
    name: "f16 scalars and arrays next to f32 (storage)",
    layout: struct({ h: "f16", v: "f32x3", h2: "f16", hs: ["f16", 3], f: "f32" }, { layout: "wgsl-storage" }),
  },
  {
    name: "f16 (uniform)",
    layout: struct({ a: "f16", b: "f16", v: "f32x4", c: "f16" }, { layout: "wgsl-uniform" }),
  },
  {
    name: "a C layout declared in WGSL (storage: @size keeps C's 16-byte f32x3)",
    layout: struct({ position: "f32x3", color: "f32x4", uv: "f32x2", id: "u32" }),
    size: 48,
  },
];

test("the known WGSL sizes of the table hold before any GPU work", () => {
  for (const row of ROWS) if (row.size !== undefined) assert.equal(row.layout.size, row.size, row.name);
});

for (const row of ROWS) {
  test(`WGSL layout on the GPU: ${row.name}`, { skip }, async () => {
    const { device } = gpu!;
    const layout = row.layout;
    if (usesF16(layout) && !device.features.has("shader-f16")) {
      console.log(`skipped: the adapter has no shader-f16 (${row.name})`);
      return;
    }
    const uniform = layout.layout === "wgsl-uniform";
    const records = Array.from({ length: RECORDS }, (_, i) => recordOf(layout, i));
    const leafCount = records[0].leaves.length;
    const lines = records[0].leaves.map((leaf, k) => `  out[base + ${k}u] = ${asBits(leaf, "r")};`);
    const declaration = layout.wgslDeclaration("Rec");
    const code = uniform
      ? `${declaration}
@group(0) @binding(0) var<uniform> rec: Rec;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1) fn main() {
  let base = 0u;
  let r = rec;
${lines.join("\n")}
}`
      : `${declaration}
@group(0) @binding(0) var<storage, read> recs: array<Rec>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let base = id.x * ${leafCount}u;
  let r = recs[id.x];
${lines.join("\n")}
}`;
    // Records from JS, as a program would write them: pushed into a memkit array, uploaded from its bytes.
    using array = uniform ? uniformArray(layout) : new DynamicArray(layout);
    array.pushMany(records.map((r) => r.value));
    const bytes = array.bytes;
    assert.equal(bytes.length, RECORDS * (uniform ? SLOT : layout.size));
    const input = device.createBuffer({
      size: bytes.length,
      usage: (uniform ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE) | GPUBufferUsage.COPY_DST,
    });
    // Each record's output in its own 256-byte-aligned slot (a storage binding's offset alignment).
    const outSlot = Math.ceil((leafCount * 4) / SLOT) * SLOT;
    const output = device.createBuffer({
      size: outSlot * RECORDS,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    try {
      device.queue.writeBuffer(input, 0, bytes as Uint8Array<ArrayBuffer>);
      await validated(device, () => {
        const module = device.createShaderModule({ code });
        const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        if (uniform) {
          for (let i = 0; i < RECORDS; i++) {
            pass.setBindGroup(
              0,
              device.createBindGroup({
                layout: pipeline.getBindGroupLayout(0),
                entries: [
                  { binding: 0, resource: { buffer: input, offset: i * SLOT, size: layout.size } },
                  { binding: 1, resource: { buffer: output, offset: i * outSlot, size: outSlot } },
                ],
              }),
            );
            pass.dispatchWorkgroups(1);
          }
        } else {
          pass.setBindGroup(
            0,
            device.createBindGroup({
              layout: pipeline.getBindGroupLayout(0),
              entries: [
                { binding: 0, resource: { buffer: input } },
                { binding: 1, resource: { buffer: output } },
              ],
            }),
          );
          pass.dispatchWorkgroups(RECORDS);
        }
        pass.end();
        device.queue.submit([encoder.finish()]);
      }).catch((error) => {
        throw new Error(`${error.message}\nshader:\n${code}`);
      });
      const result = new Uint32Array((await readBack(device, output, 0, outSlot * RECORDS)).buffer);
      const wrong: string[] = [];
      records.forEach(({ leaves }, i) => {
        leaves.forEach((leaf, k) => {
          const at = uniform ? (i * outSlot) / 4 + k : i * leafCount + k;
          const expected = expectedBits(leaf);
          if (result[at] !== expected) {
            wrong.push(
              `record ${i} ${leaf.path}: wrote ${leaf.value} (bits ${expected}), the GPU read bits ${result[at]}`,
            );
          }
        });
      });
      assert.deepEqual(wrong, [], `fields the GPU read differently (declaration:\n${declaration})`);
    } finally {
      input.destroy();
      output.destroy();
    }
  });
}
