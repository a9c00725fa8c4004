// GPU uploads through WebGPU (issue 17), one frame per iteration, each frame
// ending when the GPU has finished it (onSubmittedWorkDone), so work a case
// leaves to the GPU is paid inside the frame. Ratios are frames per second
// relative to the baseline; on lavapipe (Mesa's CPU driver) the "GPU" is the
// same two cores, so absolute numbers on a real GPU differ. bench/mod.ts
// imports this file only when requestGpu() finds an adapter.
import {
  GpuBufferPool,
  GpuBufferUsage,
  GpuStagingRing,
  GpuUniformRing,
  requestGpu,
  SIMDArray,
  struct,
  uniformArray,
  writeGpuBuffer,
} from "../mod.ts";
import { compare } from "./_ratios.ts";

const gpu = await requestGpu({ label: "bench" });
const device = gpu.device;
const queue = device.queue;

// 100k vertices of one vec4<f32> each (1.6 MB), moved on the CPU every frame.
const VERTICES = 100_000;
const BYTES = VERTICES * 16;
const VERTEX = GpuBufferUsage.VERTEX | GpuBufferUsage.COPY_DST;
const positions = new SIMDArray("f32x4", { capacity: VERTICES });
const velocities = new SIMDArray("f32x4", { capacity: VERTICES });
for (let i = 0; i < VERTICES; i++) {
  positions.push([i, 0, 0, 1]);
  velocities.push([0, 1, 0, 0]);
}
const pool = new GpuBufferPool(gpu);
const ring = new GpuStagingRing(gpu, { chunkBytes: 2 << 20 });
const persistent = device.createBuffer({ size: BYTES, usage: VERTEX });
// What a program without memkit keeps: its particles as JS objects, packed into a fresh Float32Array each frame.
const jsParticles = Array.from({ length: VERTICES }, (_, i) => ({ x: i, y: 0, z: 0 }));
// And one that keeps a Float32Array in the JS heap instead (the same bytes as the SIMDArray, without memkit).
const kept = new Float32Array(positions.bytes.slice().buffer);

compare(
  "GPU upload of 100k vertices per frame (1.6 MB, until the GPU is done)",
  "writeBuffer from a fresh Float32Array",
  {
    "writeBuffer from a fresh Float32Array": async () => {
      const data = new Float32Array(VERTICES * 4);
      for (let i = 0; i < VERTICES; i++) {
        const p = jsParticles[i];
        p.y += 1 / 60;
        data[i * 4] = p.x, data[i * 4 + 1] = p.y, data[i * 4 + 2] = p.z, data[i * 4 + 3] = 1;
      }
      queue.writeBuffer(persistent, 0, data);
      queue.submit([]);
      await queue.onSubmittedWorkDone();
    },
    "a new buffer per frame (mapped at creation, filled from the SIMDArray)": async () => {
      positions.axpy(1 / 60, velocities);
      const buffer = device.createBuffer({ size: BYTES, usage: VERTEX, mappedAtCreation: true });
      new Uint8Array(buffer.getMappedRange()).set(positions.bytes);
      buffer.unmap();
      queue.submit([]);
      await queue.onSubmittedWorkDone();
      buffer.destroy();
    },
    "writeBuffer from a kept Float32Array (JS heap, moved in place)": async () => {
      for (let i = 1; i < kept.length; i += 4) kept[i] += 1 / 60;
      queue.writeBuffer(persistent, 0, kept);
      queue.submit([]);
      await queue.onSubmittedWorkDone();
    },
    "the floor: an empty frame (submit, wait for the GPU)": async () => {
      queue.submit([]);
      await queue.onSubmittedWorkDone();
    },
    "memkit: pooled buffer + staging ring": async () => {
      positions.axpy(1 / 60, velocities);
      const buffer = pool.acquire(BYTES, VERTEX);
      ring.upload(buffer, 0, positions);
      ring.flush();
      pool.release(buffer);
      await queue.onSubmittedWorkDone();
    },
    "memkit: pooled buffer + writeGpuBuffer (queue write from native memory)": async () => {
      positions.axpy(1 / 60, velocities);
      const buffer = pool.acquire(BYTES, VERTEX);
      writeGpuBuffer(gpu, buffer, positions);
      queue.submit([]);
      pool.release(buffer);
      await queue.onSubmittedWorkDone();
    },
  },
);

// 10k draws' uniforms per frame, each draw a compute dispatch that binds its record.
const DRAWS = 10_000;
const Draw = struct({ tint: "f32x4", scale: "f32" }, { layout: "wgsl-uniform" });
const draws = uniformArray<{ tint: number[]; scale: number }>(Draw, { capacity: DRAWS });
for (let i = 0; i < DRAWS; i++) draws.push({ tint: [1, 0, 0, 1], scale: i });
const scales = draws.view(Float32Array) as Float32Array; // scale of draw i at [i * 64 + 4]
const uniformRing = new GpuUniformRing(gpu, { capacity: DRAWS * 256 });
const module = device.createShaderModule({
  code: `struct Draw { tint: vec4<f32>, scale: f32 }
    @group(0) @binding(0) var<uniform> draw: Draw;
    @group(0) @binding(1) var<storage, read_write> out: array<f32>;
    @compute @workgroup_size(1) fn main() { out[0] = draw.scale * draw.tint.x; }`,
});
const dynamicLayout = device.createBindGroupLayout({
  entries: [
    { binding: 0, visibility: 4, buffer: { type: "uniform", hasDynamicOffset: true } },
    { binding: 1, visibility: 4, buffer: { type: "storage" } },
  ],
});
const staticLayout = device.createBindGroupLayout({
  entries: [
    { binding: 0, visibility: 4, buffer: { type: "uniform" } },
    { binding: 1, visibility: 4, buffer: { type: "storage" } },
  ],
});
const pipelineFor = (layout: GPUBindGroupLayout) =>
  device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main" },
  });
const dynamicPipeline = pipelineFor(dynamicLayout);
const staticPipeline = pipelineFor(staticLayout);
const out = device.createBuffer({ size: 4, usage: GpuBufferUsage.STORAGE });
const ringGroup = device.createBindGroup({
  layout: dynamicLayout,
  entries: [{ binding: 0, resource: { buffer: uniformRing.buffer, size: 32 } }, {
    binding: 1,
    resource: { buffer: out },
  }],
});
// The baseline's buffers and bind groups are made once, outside the frame (in its favour).
const perDraw = Array.from(
  { length: DRAWS },
  () => device.createBuffer({ size: 32, usage: GpuBufferUsage.UNIFORM | GpuBufferUsage.COPY_DST }),
);
const perDrawGroups = perDraw.map((buffer) =>
  device.createBindGroup({
    layout: staticLayout,
    entries: [{ binding: 0, resource: { buffer } }, { binding: 1, resource: { buffer: out } }],
  })
);
// The ring's slots bound without dynamic offsets: a bind group per slot, made once.
const slotGroups = Array.from({ length: DRAWS }, (_, i) =>
  device.createBindGroup({
    layout: staticLayout,
    entries: [
      { binding: 0, resource: { buffer: uniformRing.buffer, offset: i * 256, size: 32 } },
      { binding: 1, resource: { buffer: out } },
    ],
  }));
const record = new Float32Array(8);
const offset = new Uint32Array(1);
let frame = 0;

compare(
  "GPU 10k uniform updates per frame (a dispatch per draw, until the GPU is done)",
  "one buffer per draw (writeBuffer each)",
  {
    "one buffer per draw (writeBuffer each)": async () => {
      frame++;
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(staticPipeline);
      for (let i = 0; i < DRAWS; i++) {
        record[0] = 1, record[3] = 1, record[4] = i + frame;
        queue.writeBuffer(perDraw[i], 0, record);
        pass.setBindGroup(0, perDrawGroups[i]);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      queue.submit([encoder.finish()]);
      await queue.onSubmittedWorkDone();
    },
    "memkit: uniform ring, dynamic offsets (one write)": async () => {
      frame++;
      for (let i = 0; i < DRAWS; i++) scales[i * 64 + 4] = i + frame;
      uniformRing.reset();
      const base = uniformRing.push(draws);
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(dynamicPipeline);
      for (let i = 0; i < DRAWS; i++) {
        offset[0] = base + i * 256; // one Uint32Array for every draw (bun-webgpu copies a plain array into a new one per call)
        pass.setBindGroup(0, ringGroup, offset, 0, 1);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      queue.submit([encoder.finish()]);
      await queue.onSubmittedWorkDone();
    },
    "memkit: uniform ring, a bind group per slot (one write, no dynamic offsets)": async () => {
      frame++;
      for (let i = 0; i < DRAWS; i++) scales[i * 64 + 4] = i + frame;
      uniformRing.reset();
      uniformRing.push(draws);
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(staticPipeline);
      for (let i = 0; i < DRAWS; i++) {
        pass.setBindGroup(0, slotGroups[i]);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      queue.submit([encoder.finish()]);
      await queue.onSubmittedWorkDone();
    },
  },
);

// The same 10k updates without the dispatches, which dominate the frame above on lavapipe: only
// the uploads, until the GPU has taken them.
compare(
  "GPU 10k uniform updates per frame, uploads only (until the GPU is done)",
  "one buffer per draw (writeBuffer each)",
  {
    "one buffer per draw (writeBuffer each)": async () => {
      frame++;
      for (let i = 0; i < DRAWS; i++) {
        record[0] = 1, record[3] = 1, record[4] = i + frame;
        queue.writeBuffer(perDraw[i], 0, record);
      }
      queue.submit([]);
      await queue.onSubmittedWorkDone();
    },
    "memkit: uniform ring (one write of 10k 256-byte slots)": async () => {
      frame++;
      for (let i = 0; i < DRAWS; i++) scales[i * 64 + 4] = i + frame;
      uniformRing.reset();
      uniformRing.push(draws);
      queue.submit([]);
      await queue.onSubmittedWorkDone();
    },
  },
);
