// A particle system on the GPU through memkit: positions and velocities live
// in SIMDArrays (native memory), updated on the CPU with SIMD kernels, and
// uploaded each frame through a staging ring into a vertex/storage buffer
// from a GpuBufferPool; a compute pass reads them and writes each particle's
// distance from the origin, which the last frame reads back.
//
//   deno run -A examples/gpu_particles.ts     bun run examples/gpu_particles.ts
import { GpuBufferPool, GpuBufferUsage, GpuStagingRing, readGpuBuffer, requestGpu, SIMDArray } from "../mod.ts"; // "@memkit/memkit" in your project

const PARTICLES = 10_000;
const FRAMES = 60;
const DT = 1 / 60;

using gpu = await requestGpu({ label: "particles" });
using pool = new GpuBufferPool(gpu);
using ring = new GpuStagingRing(gpu);
using positions = new SIMDArray("f32x4", { capacity: PARTICLES });
using velocities = new SIMDArray("f32x4", { capacity: PARTICLES });
for (let i = 0; i < PARTICLES; i++) {
  const angle = (i / PARTICLES) * 2 * Math.PI;
  positions.push([0, 0, 0, 1]);
  velocities.push([Math.cos(angle), Math.sin(angle), (i % 7) / 7, 0]);
}

const device = gpu.device;
const module = device.createShaderModule({
  code: `@group(0) @binding(0) var<storage, read> positions: array<vec4<f32>>;
    @group(0) @binding(1) var<storage, read_write> distances: array<f32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
      if (id.x < arrayLength(&distances)) { distances[id.x] = length(positions[id.x].xyz); }
    }`,
});
const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
const distances = gpu.createBuffer({ size: PARTICLES * 4, usage: GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_SRC });
const usage = GpuBufferUsage.VERTEX | GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_DST;
const bytes = PARTICLES * 16;

for (let frame = 0; frame < FRAMES; frame++) {
  positions.axpy(DT, velocities); // p += v·dt, in libmemkit's SIMD kernel
  const vertices = pool.acquire(bytes, usage); // the same GPU buffer every frame
  ring.upload(vertices, 0, positions);
  ring.flush(); // the copy runs before the compute pass below
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: vertices, size: bytes } },
        { binding: 1, resource: { buffer: distances } },
      ],
    }),
  );
  pass.dispatchWorkgroups(Math.ceil(PARTICLES / 64));
  pass.end();
  device.queue.submit([encoder.finish()]);
  pool.release(vertices); // reusable: later queue writes are ordered after this frame's work
  await device.queue.onSubmittedWorkDone(); // the frame's pace (a real app waits for the next animation frame)
}

const onGpu = new Float32Array(PARTICLES);
await readGpuBuffer(gpu, distances, onGpu);
const onCpu = positions.magnitudes(); // f32x4 magnitudes include w = 1
const worst = onGpu.reduce((max, d, i) => Math.max(max, Math.abs(d * d + 1 - onCpu[i] * onCpu[i])), 0);
const stats = pool.stats();
console.log(`frames: ${FRAMES}, particles: ${PARTICLES}`);
console.log(`bytes uploaded: ${ring.stats().uploadedBytes}`);
console.log(`vertex buffers created: ${stats.misses}, reused: ${stats.hits}`);
console.log(`GPU and CPU distances agree: ${worst < 1e-3}`);
gpu.destroyBuffer(distances);
