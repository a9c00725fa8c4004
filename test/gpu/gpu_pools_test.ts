// The GPU buffer pool, the suballocator, the staging ring and the uniform
// ring on a real device: reuse is observed in the accounting (buffers
// created), contents by reading the GPU's copy back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SIMDArray } from "../../src/arrays/simd_array.ts";
import { struct } from "../../src/arrays/struct.ts";
import { uniformArray } from "../../src/arrays/array_factories.ts";
import { PressureLevel } from "../../src/pressure/pressure_level.ts";
import { PressureMonitor } from "../../src/pressure/pressure_monitor.ts";
import type { MemoryStatus } from "../../src/pressure/memory_status.ts";
import { GpuBufferUsage as U, requestGpu } from "../../src/gpu/gpu_context.ts";
import { GpuBufferPool, sizeClass } from "../../src/gpu/gpu_buffer_pool.ts";
import { GpuSuballocator } from "../../src/gpu/gpu_suballocator.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { GpuUniformRing } from "../../src/gpu/gpu_uniform_ring.ts";
import { readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const VERTEX = U.VERTEX | U.COPY_DST | U.COPY_SRC;

test("GpuBufferPool: buffers reused by usage and size class; idle limit; stats", { skip: skipGpu }, () => {
  using gpu = context();
  using pool = new GpuBufferPool(gpu, { maxIdleBytes: 1 << 20 });
  assert.deepEqual([1, 256, 257, 1000, 4096, 5000].map(sizeClass), [256, 256, 512, 1024, 4096, 8192]);
  const a = pool.acquire(1000, VERTEX);
  assert.equal(a.size, 1024);
  pool.release(a);
  assert.equal(pool.acquire(900, VERTEX), a); // same class and usage: the same buffer
  const b = pool.acquire(900, U.UNIFORM | U.COPY_DST); // other usage: a new one
  assert.notEqual(b, a);
  pool.release(a);
  pool.release(b);
  assert.deepEqual(pool.stats(), {
    hits: 1,
    misses: 2,
    inUse: 0,
    inUseBytes: 0,
    idle: 2,
    idleBytes: 2048,
    trimmedBytes: 0,
  });
  // Past the idle limit the longest idle go first.
  const big = [pool.acquire(600_000, VERTEX), pool.acquire(600_000, VERTEX)];
  for (const buffer of big) pool.release(buffer);
  const stats = pool.stats();
  assert.equal(stats.idleBytes, 1 << 20); // the second 1 MiB buffer
  assert.equal(stats.trimmedBytes, 2048 + (1 << 20)); // the two small ones, then the first big one
  assert.equal(gpu.memoryStats().bytes, stats.idleBytes);
  assert.equal(pool.trim(), stats.idleBytes);
  assert.equal(gpu.memoryStats().buffers, 0);
});

test("GpuBufferPool: pressure trims idle buffers (half at Medium, all at Critical), never those in use", {
  skip: skipGpu,
}, () => {
  using gpu = context();
  let available = 90;
  const status = (): MemoryStatus => ({
    totalBytes: 100,
    availableBytes: available,
    limitBytes: null,
    usedBytes: 100 - available,
    rssBytes: 1,
    psi: null,
    events: null,
    source: "linux-meminfo",
  });
  using monitor = new PressureMonitor({ read: status, hysteresis: 1 });
  using pool = new GpuBufferPool(gpu, { pressure: monitor });
  const held = pool.acquire(4096, VERTEX);
  const idle = Array.from({ length: 4 }, () => pool.acquire(4096, VERTEX));
  for (const buffer of idle) pool.release(buffer);
  available = 20;
  assert.equal(monitor.refresh(), PressureLevel.Medium);
  assert.equal(pool.stats().idleBytes, 2 * 4096);
  available = 2;
  assert.equal(monitor.refresh(), PressureLevel.Critical);
  assert.equal(pool.stats().idleBytes, 0);
  assert.equal(pool.stats().inUse, 1);
  assert.ok(gpu.owns(held));
  pool.release(held);
});

test("GpuBufferPool: a lost device leaves pool and accounting consistent", { skip: skipGpu }, async () => {
  const gpu = await requestGpu({ label: "pool loss" });
  const pool = new GpuBufferPool(gpu);
  const inUse = pool.acquire(512, VERTEX);
  pool.release(pool.acquire(2048, VERTEX));
  gpu.device.destroy();
  await gpu.device.lost;
  await Promise.resolve();
  assert.deepEqual(pool.stats(), {
    hits: 0,
    misses: 2,
    inUse: 0,
    inUseBytes: 0,
    idle: 0,
    idleBytes: 0,
    trimmedBytes: 0,
  });
  assert.equal(gpu.memoryStats().bytes, 0);
  pool.release(inUse); // gone with the device: a no-op
  assert.throws(() => pool.acquire(16, VERTEX), { name: "AllocationError", category: "use-after-free" });
  pool.dispose();
  gpu.dispose();
});

test("after the device is lost, release and free still refuse what they never handed out", {
  skip: skipGpu,
}, async () => {
  const gpu = await requestGpu({ label: "refusals after loss" });
  using other = context("other");
  const pool = new GpuBufferPool(gpu);
  const sub = new GpuSuballocator(gpu, { usage: U.STORAGE });
  const handed = pool.acquire(256, VERTEX);
  const slice = sub.allocate(64);
  const foreign = other.createBuffer({ size: 16, usage: VERTEX });
  gpu.device.destroy();
  // Before: every one of these returned undefined once the device was gone.
  const rows: [string, () => unknown, object][] = [
    ["release(42)", () => pool.release(42 as never), { name: "TypeError" }],
    ["release('x')", () => pool.release("x" as never), { name: "TypeError" }],
    ["release({})", () => pool.release({} as never), { name: "TypeError" }],
    ["release(another's buffer)", () => pool.release(foreign), { name: "AllocationError", category: "invalid-free" }],
    ["free(null)", () => sub.free(null as never), { name: "TypeError" }],
    ["free(7)", () => sub.free(7 as never), { name: "TypeError" }],
    ["free({})", () => sub.free({} as never), { name: "AllocationError", category: "invalid-free" }],
  ];
  for (const [name, run, expected] of rows) assert.throws(run, expected, name);
  pool.release(handed); // its own: gone with the device, a no-op
  sub.free(slice);
  pool.dispose();
  sub.dispose();
  gpu.dispose();
});

// A collection on request: Deno with --v8-flags=--expose-gc, Bun always.
const collect = (globalThis as { gc?: () => void }).gc ??
  ((globalThis as { Bun?: { gc(full: boolean): void } }).Bun === undefined
    ? null
    : () => (globalThis as unknown as { Bun: { gc(full: boolean): void } }).Bun.gc(true));

test("pools, suballocators and staging rings, disposed or dropped, are not kept alive by their context", {
  skip: skipGpu || (collect === null ? "needs --v8-flags=--expose-gc" : false),
}, async () => {
  using gpu = context("collected");
  const refs: Record<string, WeakRef<object>[]> = { pool: [], sub: [], ring: [] };
  // In a function of its own: no local of the test holds what it made.
  const make = (dispose: boolean) => {
    for (let i = 0; i < 50; i++) {
      const pool = new GpuBufferPool(gpu);
      pool.release(pool.acquire(256, U.STORAGE));
      const sub = new GpuSuballocator(gpu, { usage: U.STORAGE, blockBytes: 256 });
      sub.free(sub.allocate(16));
      const ring = new GpuStagingRing(gpu, { chunkBytes: 256 });
      if (dispose) { for (const owner of [pool, sub, ring]) owner.dispose(); }
      refs.pool.push(new WeakRef(pool));
      refs.sub.push(new WeakRef(sub));
      refs.ring.push(new WeakRef(ring));
    }
  };
  make(true);
  make(false);
  for (let i = 0; i < 5; i++) {
    collect!();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Before: each context listener (onLost) held its owner, disposed or not: 100 of 100 alive. The engines
  // may keep a few alive (a conservative stack scan): most must go.
  for (const [name, list] of Object.entries(refs)) {
    const alive = list.filter((ref) => ref.deref() !== undefined).length;
    assert.ok(alive < list.length / 2, `${name}: ${alive} of ${list.length} still alive after collections`);
  }
});

test("GpuBufferPool bad input", { skip: skipGpu }, () => {
  using gpu = context();
  using pool = new GpuBufferPool(gpu);
  const a = pool.acquire(16, VERTEX);
  pool.release(a);
  const rows: [string, () => unknown, object][] = [
    ["gpu not a context", () => new GpuBufferPool({} as never), { name: "TypeError" }],
    ["pressure not a monitor", () => new GpuBufferPool(gpu, { pressure: {} as never }), { name: "TypeError" }],
    ["size 0", () => pool.acquire(0, VERTEX), { name: "RangeError" }],
    ["usage a string", () => pool.acquire(16, "VERTEX" as never), { name: "TypeError" }],
    ["usage out of range", () => pool.acquire(16, 0x800), { name: "RangeError" }],
    ["release twice", () => pool.release(a), { name: "AllocationError", category: "double-free" }],
    ["release a foreign buffer", () => pool.release(gpu.createBuffer({ size: 16, usage: VERTEX })), {
      name: "AllocationError",
      category: "invalid-free",
    }],
    ["trim -1", () => pool.trim(-1), { name: "RangeError" }],
  ];
  for (const [name, run, expected] of rows) assert.throws(run, expected, name);
  assert.equal(pool.stats().idle, 1);
});

test(
  "GpuSuballocator: 200 small buffers in one GPUBuffer, each written and read back in place",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    using heap = new GpuSuballocator(gpu, { usage: U.STORAGE | U.COPY_DST | U.COPY_SRC, blockBytes: 256 << 10 });
    const slices = Array.from({ length: 200 }, (_, i) => heap.allocate(4 * (10 + (i % 50))));
    assert.equal(gpu.memoryStats().buffers, 1);
    for (const [i, slice] of slices.entries()) {
      assert.equal(slice.offset % 256, 0); // storage usage: 256-byte binding offsets
      writeGpuBuffer(gpu, slice.buffer, new Uint32Array(slice.size / 4).fill(i), { offset: slice.offset });
    }
    const whole = new Uint32Array(slices[0].buffer.size / 4);
    await readGpuBuffer(gpu, slices[0].buffer, whole);
    for (const [i, slice] of slices.entries()) {
      assert.ok(whole.subarray(slice.offset / 4, (slice.offset + slice.size) / 4).every((v) => v === i), `slice ${i}`);
    }
    for (const slice of slices.slice(0, 100)) heap.free(slice);
    heap.allocate(40); // reuses freed space: still one block
    assert.equal(heap.stats().blocks, 1);
    const huge = heap.allocate(1 << 20); // larger than a block: a block of its own
    assert.equal(heap.stats().blocks, 2);
    heap.free(huge);
    assert.equal(heap.trim(), huge.buffer.size);
    assert.throws(() => heap.free(huge), { name: "AllocationError", category: "double-free" });
    assert.throws(() => heap.allocate(6), RangeError);
  },
);

test("GpuStagingRing: per-frame uploads never wait; chunks in flight are not reused until mapped again", {
  skip: skipGpu,
}, async () => {
  using gpu = context();
  using ring = new GpuStagingRing(gpu, { chunkBytes: 64 << 10 });
  using particles = new SIMDArray("f32x4");
  for (let i = 0; i < 1000; i++) particles.push([i, i, i, 1]);
  const target = gpu.createBuffer({ size: particles.bytes.length, usage: VERTEX });
  // Frames back to back without waiting: each flush leaves its chunk in flight, so the next frame needs another.
  for (let frame = 0; frame < 3; frame++) {
    particles.scale(2);
    ring.upload(target, 0, particles);
    ring.flush();
  }
  const burst = ring.stats();
  assert.equal(burst.created, 3);
  assert.equal(burst.uploadedBytes, 3 * particles.bytes.length);
  // With a frame's pace (the GPU finishes, the maps resolve), chunks come back and no more are created.
  for (let frame = 0; frame < 10; frame++) {
    await gpu.device.queue.onSubmittedWorkDone();
    await new Promise((resolve) => setTimeout(resolve, 5));
    particles.scale(0.5);
    ring.upload(target, 0, particles);
    ring.flush();
  }
  assert.ok(ring.stats().created <= 4, `created ${ring.stats().created}`);
  const back = new Float32Array(4 * 1000);
  await readGpuBuffer(gpu, target, back);
  assert.deepEqual([...back.subarray(4 * 10, 4 * 11)], [10 * 8 / 1024, 10 * 8 / 1024, 10 * 8 / 1024, 8 / 1024]);
  assert.equal(gpu.memoryStats().byUsage.upload.buffers, ring.stats().chunks);
});

test("GpuStagingRing: several uploads in one frame land in their targets", { skip: skipGpu }, async () => {
  using gpu = context();
  using ring = new GpuStagingRing(gpu, { chunkBytes: 256 });
  const a = gpu.createBuffer({ size: 200, usage: VERTEX });
  const b = gpu.createBuffer({ size: 400, usage: VERTEX });
  ring.upload(a, 0, new Uint32Array(50).fill(1));
  ring.upload(b, 16, new Uint32Array(96).fill(2)); // does not fit the first chunk's rest: a second chunk
  ring.upload(a, 100, new Uint32Array(25).fill(3));
  ring.flush();
  const backA = new Uint32Array(50), backB = new Uint32Array(100);
  await readGpuBuffer(gpu, a, backA);
  await readGpuBuffer(gpu, b, backB);
  assert.deepEqual([...backA], [...new Array(25).fill(1), ...new Array(25).fill(3)]);
  assert.deepEqual([...backB], [0, 0, 0, 0, ...new Array(96).fill(2)]);
  assert.throws(() => ring.upload(a, 2, new Uint32Array(1)), RangeError);
  assert.throws(() => ring.upload(a, 0, new Uint8Array(3)), RangeError);
  assert.throws(() => ring.upload(a, 196, new Uint32Array(2)), RangeError);
  assert.throws(() => ring.upload(gpu.createBuffer({ size: 16, usage: U.VERTEX }), 0, new Uint32Array(1)), TypeError);
});

test("GpuUniformRing: 300 draws' uniforms in one write, each at its 256-byte dynamic offset, read by a shader", {
  skip: skipGpu,
}, async () => {
  using gpu = context();
  using ring = new GpuUniformRing(gpu, { capacity: 600 * 256 });
  const Draw = struct({ tint: "f32x4", scale: "f32" }, { layout: "wgsl-uniform" });
  using draws = uniformArray<{ tint: number[]; scale: number }>(Draw);
  for (let i = 0; i < 300; i++) draws.push({ tint: [i, 0, 0, 1], scale: i * 0.5 });
  const base = ring.push(draws);
  // A compute pass per draw reads its uniforms through a dynamic offset and stores scale + tint.x.
  const device = gpu.device;
  const out = gpu.createBuffer({ size: 300 * 4, usage: U.STORAGE | U.COPY_SRC });
  const module = device.createShaderModule({
    code: `struct Draw { tint: vec4<f32>, scale: f32 }
      @group(0) @binding(0) var<uniform> draw: Draw;
      @group(0) @binding(1) var<storage, read_write> out: array<f32>;
      @group(0) @binding(2) var<uniform> index: vec4<u32>;
      @compute @workgroup_size(1) fn main() { out[index.x] = draw.scale + draw.tint.x; }`,
  });
  const layout = device.createBindGroupLayout({
    entries: [
      { binding: 0, visibility: 4, buffer: { type: "uniform", hasDynamicOffset: true } },
      { binding: 1, visibility: 4, buffer: { type: "storage" } },
      { binding: 2, visibility: 4, buffer: { type: "uniform", hasDynamicOffset: true } },
    ],
  });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main" },
  });
  using indices = uniformArray<{ i: number }>(struct({ i: "u32" }));
  for (let i = 0; i < 300; i++) indices.push({ i });
  const indexBase = ring.push(indices);
  assert.deepEqual([base, indexBase, ring.used], [0, 300 * 256, 600 * 256]);
  const group = device.createBindGroup({
    layout,
    entries: [
      { binding: 0, resource: { buffer: ring.buffer, size: 32 } },
      { binding: 1, resource: { buffer: out } },
      { binding: 2, resource: { buffer: ring.buffer, size: 16 } },
    ],
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  for (let i = 0; i < 300; i++) {
    pass.setBindGroup(0, group, [ring.offsetOf(base, i), ring.offsetOf(indexBase, i)]);
    pass.dispatchWorkgroups(1);
  }
  pass.end();
  device.queue.submit([encoder.finish()]);
  const back = new Float32Array(300);
  await readGpuBuffer(gpu, out, back);
  for (let i = 0; i < 300; i++) assert.equal(back[i], i * 1.5, `draw ${i}`);
  assert.throws(() => ring.push(indices), { name: "AllocationError", category: "limit-exceeded" }); // the frame is full
  assert.throws(() => ring.offsetOf(base, 300), RangeError);
  ring.reset();
  assert.equal(ring.push(indices), 0);
  using plain = new SIMDArray("f32x4");
  plain.push([1, 2, 3, 4]);
  assert.throws(() => ring.push(plain), RangeError); // a stride of 16 is not a uniform slot
});
