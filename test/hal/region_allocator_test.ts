// RegionAllocator: four regions with their own alignment (vertex 16, uniform
// 256, audio 4, texture 64), the allocate* methods sized from struct()
// layouts, deallocate into whichever region holds a view, the memory report,
// chains to a backing, and dispose.
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressOf, AllocationError, type Allocator, Arena, RegionAllocator, struct } from "../../mod.ts";
import { below, xorshift32 } from "../_helpers.ts";

const any = (v: unknown) => v as never;
const isCategory = (category: string) => (e: unknown) => e instanceof AllocationError && e.category === category;
const Vertex = struct({ position: "f32x3", color: "f32x4" }); // 32 bytes, align 16
const Uniforms = struct({ model: "f32x4x4", tint: "f32x4" }); // 80 bytes
const Big = struct({ a: "f32x4x4", b: "f32x4x4", c: "f32x4x4", d: "f32x4x4", e: "f32" }); // 272 bytes

test("each region aligns every block to its own alignment, whatever size comes before", () => {
  using regions = new RegionAllocator();
  const next = xorshift32(7);
  for (const [name, alignment] of [["vertex", 16], ["uniform", 256], ["audio", 4], ["texture", 64]] as const) {
    const region = regions.region(name);
    assert.equal(region.kind, "free-list");
    const blocks = Array.from({ length: 50 }, () => region.alloc(1 + below(next, 700)));
    for (const block of blocks) assert.equal(addressOf(block) % alignment, 0, `${name}: ${block.length} bytes`);
    assert.equal(addressOf(region.alloc(10, 1024)) % 1024, 0, `${name}: a larger alignment is honoured`);
    for (const block of blocks) region.free(block);
  }
  // In a fresh heap, blocks of a few bytes each take a 256-byte slot apiece in the uniform region and pack at
  // 16 bytes in the vertex region.
  using packed = new RegionAllocator();
  const u = [0, 1, 2].map(() => addressOf(packed.region("uniform").alloc(8))).sort((a, b) => a - b);
  assert.deepEqual([u[1] - u[0], u[2] - u[1]], [256, 256]);
  const v = [0, 1, 2].map(() => addressOf(packed.region("vertex").alloc(8))).sort((a, b) => a - b);
  assert.deepEqual([v[1] - v[0], v[2] - v[1]], [16, 16]);
});

test("allocateVertexData / allocateUniformData / allocateAudioData size blocks from the layouts", () => {
  using regions = new RegionAllocator();
  const vertices = regions.allocateVertexData(1000, Vertex);
  assert.equal(vertices.length, 1000 * 32);
  assert.equal(addressOf(vertices) % 16, 0);
  const uniforms = regions.allocateUniformData(10, Uniforms);
  assert.equal(uniforms.length, 10 * 256, "one 256-byte slot per record");
  assert.equal(addressOf(uniforms) % 256, 0);
  const bigUniforms = regions.allocateUniformData(3, Big);
  assert.equal(bigUniforms.length, 3 * 512, "a 272-byte record takes two slots");
  const samples = regions.allocateAudioData(4096);
  assert.ok(samples instanceof Float32Array);
  assert.equal(samples.length, 4096);
  samples[4095] = 0.5;
  const report = regions.getMemoryReport();
  assert.equal(report.totalAllocated, 32_000 + 2560 + 1536 + 16_384);
  assert.deepEqual(
    [
      report.regions.vertex.liveAllocations,
      report.regions.uniform.liveAllocations,
      report.regions.audio.allocatedBytes,
    ],
    [1, 2, 16_384],
  );
  assert.equal(report.regions.texture.capacityBytes, 0, "a region never used holds nothing");
  for (const data of [vertices, uniforms, bigUniforms, samples]) regions.deallocate(data);
  assert.equal(regions.getMemoryReport().totalAllocated, 0);
});

test("allocateAlignedBuffer: typed arrays for scalar types, bytes for layouts, at the asked alignment", () => {
  using regions = new RegionAllocator();
  const floats = regions.allocateAlignedBuffer(1000, 64, "f32");
  assert.ok(floats instanceof Float32Array);
  assert.equal(floats.length, 1000);
  const wide = regions.allocateAlignedBuffer(10, 4096, "u64");
  assert.ok(wide instanceof BigUint64Array);
  assert.equal(addressOf(wide) % 4096, 0);
  const records = regions.allocateAlignedBuffer(5, 128, Vertex);
  assert.ok(records instanceof Uint8Array);
  assert.equal(records.length, 160);
  assert.equal(addressOf(records) % 128, 0);
  const low = regions.allocateAlignedBuffer(3, 1, "u8");
  assert.equal(addressOf(low) % 64, 0, "never below the texture region's 64");
  assert.equal(regions.getMemoryReport().regions.texture.liveAllocations, 4);
  for (const data of [floats, wide, records, low]) regions.deallocate(data);
});

test("deallocate: twice, foreign and interior views are reported; fragmentation shows in the report", () => {
  using regions = new RegionAllocator({ capacity: 1 << 16 });
  const blocks = Array.from({ length: 16 }, () => regions.allocateVertexData(32, Vertex));
  for (let i = 0; i < blocks.length; i += 2) regions.deallocate(blocks[i]);
  const report = regions.getMemoryReport();
  assert.ok(report.regions.vertex.fragmentation > 0, "holes between live blocks");
  assert.ok(report.fragmentation > 0);
  assert.throws(() => regions.deallocate(blocks[0]), isCategory("double-free"));
  assert.throws(() => regions.deallocate(new Uint8Array(8)), isCategory("invalid-free"));
  assert.throws(() => regions.deallocate(blocks[1].subarray(16)), isCategory("invalid-free"));
  for (let i = 1; i < blocks.length; i += 2) regions.deallocate(blocks[i]);
});

test("regions draw chunks from a backing; its release reaches every region's views", () => {
  const arena = new Arena({ capacity: 8 << 20 });
  const regions = new RegionAllocator({ backing: arena, capacity: 1 << 16 });
  const vertices = regions.allocateVertexData(10, Vertex);
  const samples = regions.allocateAudioData(100);
  arena.reset();
  assert.deepEqual([vertices.length, samples.length], [0, 0]);
  assert.throws(() => regions.allocateAudioData(10), isCategory("use-after-free"));
  regions.dispose();
  arena.dispose();
});

test("dispose: views read as length 0, later calls throw use-after-free", () => {
  const regions = new RegionAllocator();
  const vertices = regions.allocateVertexData(10, Vertex);
  regions.dispose();
  assert.equal(vertices.length, 0);
  assert.throws(() => regions.allocateVertexData(1, Vertex), isCategory("use-after-free"));
  assert.throws(() => regions.deallocate(vertices), isCategory("use-after-free"));
  assert.throws(() => regions.region("vertex").alloc(8), isCategory("use-after-free"));
  assert.equal(regions.getMemoryReport().totalAllocated, 0);
});

test("a region's allocator cannot be disposed on its own: it goes with its RegionAllocator", () => {
  using regions = new RegionAllocator({ capacity: 4096 });
  const samples = regions.allocateAudioData(4);
  samples[3] = 1;
  const audio = regions.region("audio") as Allocator & Disposable & { dispose(): void }; // it has them at run time
  for (const dispose of [() => audio.dispose(), () => audio[Symbol.dispose]()]) {
    assert.throws(dispose, (e: unknown) => {
      assert.ok(e instanceof AllocationError);
      assert.equal(e.category, "unsupported");
      assert.equal(
        e.message,
        "Cannot dispose the audio region's allocator: it goes when its RegionAllocator is disposed " +
          "(regions.dispose()); give its blocks back with deallocate",
      );
      return true;
    });
  }
  // Refused, so nothing changed: the region and its blocks live on.
  assert.equal(samples[3], 1);
  regions.deallocate(regions.allocateAudioData(4));
  assert.equal(regions.getMemoryReport().regions.audio.liveAllocations, 1);
  regions.deallocate(samples);
});

test("a disposed RegionAllocator: every call is use-after-free naming it; its report reads zeros", () => {
  const regions = new RegionAllocator({ capacity: 4096 });
  const vertices = regions.allocateVertexData(2, Vertex);
  const audio = regions.region("audio") as Allocator & { dispose(): void };
  regions.dispose();
  const useAfterFree = (e: unknown) =>
    e instanceof AllocationError && e.category === "use-after-free" && /RegionAllocator was disposed/.test(e.message);
  const calls: [string, () => unknown][] = [
    ["region", () => regions.region("texture")],
    ["allocateVertexData", () => regions.allocateVertexData(1, Vertex)],
    ["allocateUniformData", () => regions.allocateUniformData(1, Vertex)],
    ["allocateAudioData", () => regions.allocateAudioData(1)],
    ["allocateAlignedBuffer", () => regions.allocateAlignedBuffer(1, 64, "f32")],
    ["deallocate", () => regions.deallocate(vertices)],
    ["a region's alloc", () => audio.alloc(8)],
    ["a region's free", () => audio.free(new Uint8Array(8))],
  ];
  for (const [name, call] of calls) assert.throws(call, useAfterFree, name);
  assert.throws(() => regions.region(any("normals")), TypeError, "a bad name is still named first");
  assert.equal(regions.getMemoryReport().totalCapacity, 0);
  assert.throws(() => audio.dispose(), (e: unknown) => e instanceof AllocationError && e.category === "unsupported");
  regions.dispose(); // a second call does nothing
});
