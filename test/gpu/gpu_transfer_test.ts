// Uploads from memkit arrays into GPU buffers and readback into native memory,
// checked by reading the GPU's copy back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DynamicArray } from "../../src/arrays/dynamic_array.ts";
import { SIMDArray } from "../../src/arrays/simd_array.ts";
import { struct } from "../../src/arrays/struct.ts";
import { uniformArray } from "../../src/arrays/array_factories.ts";
import { SystemAllocator } from "../../src/alloc/system_allocator.ts";
import { GpuBufferUsage as U } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const STORAGE = U.STORAGE | U.COPY_DST | U.COPY_SRC;

test(
  "createGpuBufferFrom: a SIMDArray's f32x3 records arrive as written, padding included",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    using positions = new SIMDArray("f32x3");
    for (let i = 0; i < 100; i++) positions.push([i, i + 0.5, -i]);
    const buffer = createGpuBufferFrom(gpu, positions, U.VERTEX | U.COPY_SRC, "positions");
    assert.equal(buffer.size, positions.bytes.length);
    const back = new Uint8Array(buffer.size);
    assert.equal(await readGpuBuffer(gpu, buffer, back), buffer.size);
    assert.deepEqual(back, positions.bytes);
    assert.equal(gpu.memoryStats().byUsage.vertex.bytes, buffer.size);
  },
);

test("createGpuBufferFrom: a source of 5 bytes makes an 8-byte buffer holding them", { skip: skipGpu }, async () => {
  using gpu = context();
  const buffer = createGpuBufferFrom(gpu, new Uint8Array([1, 2, 3, 4, 5]), U.COPY_SRC);
  assert.equal(buffer.size, 8);
  const back = new Uint8Array(8);
  await readGpuBuffer(gpu, buffer, back);
  assert.deepEqual([...back], [1, 2, 3, 4, 5, 0, 0, 0]);
});

test(
  "writeGpuBuffer: at an offset, then only dirty ranges, leaving other bytes as they were",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    const buffer = gpu.createBuffer({ size: 1024, usage: STORAGE });
    using values = new DynamicArray<number>("u32");
    values.pushMany(Uint32Array.from({ length: 64 }, (_, i) => i));
    assert.equal(writeGpuBuffer(gpu, buffer, values, { offset: 256 }), 256);
    values.set(3, 1000);
    values.set(40, 4000);
    values.set(41, 4100);
    values.set(60, 6000); // changed but not in a dirty range: must not reach the GPU
    const written = writeGpuBuffer(gpu, buffer, values, {
      offset: 256,
      ranges: [{ first: 3, count: 1 }, { first: 40, count: 2 }],
    });
    assert.equal(written, 12);
    const back = new Uint32Array(256);
    await readGpuBuffer(gpu, buffer, back);
    const expected = new Uint32Array(256);
    for (let i = 0; i < 64; i++) expected[64 + i] = i;
    expected[64 + 3] = 1000;
    expected[64 + 40] = 4000;
    expected[64 + 41] = 4100;
    assert.deepEqual(back, expected);
  },
);

test("writeGpuBuffer: dirty ranges of u8 elements widen to whole words", { skip: skipGpu }, async () => {
  using gpu = context();
  const buffer = gpu.createBuffer({ size: 16, usage: STORAGE });
  const bytes = new Uint8Array(16).fill(7);
  writeGpuBuffer(gpu, buffer, bytes);
  bytes.fill(9);
  assert.equal(writeGpuBuffer(gpu, buffer, bytes, { ranges: [{ first: 5, count: 1 }] }), 4);
  const back = new Uint8Array(16);
  await readGpuBuffer(gpu, buffer, back);
  assert.deepEqual([...back], [7, 7, 7, 7, 9, 9, 9, 9, 7, 7, 7, 7, 7, 7, 7, 7]);
});

test(
  "uniformArray: records at 256-byte slots upload as one buffer; slot i is at i * 256",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    const Uniforms = struct({ tint: "f32x4", scale: "f32" });
    using uniforms = uniformArray<{ tint: number[]; scale: number }>(Uniforms);
    for (let i = 0; i < 4; i++) uniforms.push({ tint: [i, i, i, 1], scale: i * 2 });
    const buffer = createGpuBufferFrom(gpu, uniforms, U.UNIFORM | U.COPY_SRC);
    assert.equal(buffer.size, 1024);
    const back = new Float32Array(256);
    await readGpuBuffer(gpu, buffer, back);
    for (let i = 0; i < 4; i++) {
      assert.deepEqual([...back.subarray(i * 64, i * 64 + 5)], [i, i, i, 1, i * 2]);
    }
    assert.equal(gpu.memoryStats().byUsage.uniform.bytes, 1024);
  },
);

test("readGpuBuffer: into native memory at an offset; the staging buffer is destroyed", { skip: skipGpu }, async () => {
  using gpu = context();
  const source = Float64Array.from({ length: 32 }, (_, i) => i * 1.25);
  const buffer = createGpuBufferFrom(gpu, source, U.COPY_SRC);
  using allocator = new SystemAllocator();
  const into = allocator.array(Float64Array, 8);
  await readGpuBuffer(gpu, buffer, into, { offset: 64 });
  assert.deepEqual([...into], [...source.subarray(8, 16)]);
  assert.equal(gpu.memoryStats().buffers, 1);
  assert.equal(gpu.memoryStats().byUsage.readback.bytes, 0);
  allocator.free(into);
});

test(
  "readGpuBuffer: a DynamicArray freed while the map waits rejects with use-after-free",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    const buffer = createGpuBufferFrom(gpu, new Uint32Array(64).fill(5), U.COPY_SRC);
    const target = new DynamicArray<number>("u32");
    target.pushMany(new Uint32Array(64));
    const reading = readGpuBuffer(gpu, buffer, target);
    target.free();
    await assert.rejects(reading, { name: "AllocationError", category: "use-after-free" });
    assert.equal(gpu.memoryStats().buffers, 1); // the staging buffer went
  },
);
