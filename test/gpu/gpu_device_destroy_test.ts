// device.destroy() (issue 17, adversarial findings 5-6): the contexts over the
// device are lost at once, so every call between destroy() and the `lost`
// promise throws memkit's "use-after-free" (never WebGPU's OperationError or
// bun-webgpu's "Queue not initialized") and changes no counter; a read waiting
// for its map rejects and leaves the target as it was.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GpuBufferUsage as U, GpuContext, requestGpu } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { GpuBufferPool } from "../../src/gpu/gpu_buffer_pool.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { GpuUniformRing } from "../../src/gpu/gpu_uniform_ring.ts";
import { GpuSuballocator } from "../../src/gpu/gpu_suballocator.ts";
import { skipGpu } from "./_gpu_context.ts";

const useAfterFree = { name: "AllocationError", category: "use-after-free" };

test("device.destroy() while a read waits: rejects, the target untouched", { skip: skipGpu }, async () => {
  const gpu = await requestGpu({ label: "destroyed mid-read" });
  const source = createGpuBufferFrom(gpu, new Uint32Array([1, 2, 3, 4]), U.COPY_SRC);
  const target = new Uint32Array(4).fill(7);
  const read = readGpuBuffer(gpu, source, target);
  gpu.device.destroy();
  await assert.rejects(read, useAfterFree);
  assert.deepEqual([...target], [7, 7, 7, 7]);
  gpu.dispose();
});

test("right after device.destroy(): every call is use-after-free and changes nothing", { skip: skipGpu }, async () => {
  const gpu = await requestGpu({ label: "destroyed" });
  const pool = new GpuBufferPool(gpu);
  const ring = new GpuStagingRing(gpu);
  const uniforms = new GpuUniformRing(gpu, { capacity: 1024 });
  const sub = new GpuSuballocator(gpu, { usage: U.STORAGE | U.COPY_DST });
  const buffer = gpu.createBuffer({ size: 64, usage: U.COPY_DST | U.COPY_SRC });
  ring.upload(buffer, 0, new Uint32Array(4));
  gpu.device.destroy();
  assert.equal(gpu.lost, true, "lost at once, not a task later");
  const stats = gpu.memoryStats();
  const ringStats = ring.stats();
  const rows: [string, () => unknown][] = [
    ["createBuffer", () => gpu.createBuffer({ size: 64, usage: U.STORAGE })],
    ["createGpuBufferFrom", () => createGpuBufferFrom(gpu, new Uint32Array(4), U.STORAGE)],
    ["writeGpuBuffer", () => writeGpuBuffer(gpu, buffer, new Uint32Array(4))],
    ["pool.acquire", () => pool.acquire(256, U.COPY_DST)],
    ["ring.upload", () => ring.upload(buffer, 16, new Uint32Array(4))],
    ["ring.flush", () => ring.flush()],
    ["uniforms.push", () => uniforms.push(new Float32Array(64))],
    ["sub.allocate", () => sub.allocate(64)],
  ];
  for (const [name, run] of rows) assert.throws(run, useAfterFree, name);
  await assert.rejects(readGpuBuffer(gpu, buffer, new Uint32Array(4)), useAfterFree);
  assert.deepEqual(gpu.memoryStats(), stats, "no counter moved");
  assert.deepEqual(
    { ...ring.stats(), chunks: ringStats.chunks },
    ringStats,
    "the ring counted no upload or flush",
  );
  assert.equal(stats.bytes, 0);
  assert.equal(stats.lostBuffers > 0, true);
  for (const disposable of [ring, pool, uniforms, sub, gpu]) disposable.dispose();
});

test("fromDevice over a destroyed device: use-after-free, no context made", { skip: skipGpu }, async () => {
  // Before: a live context over the dead device (createBuffer counted bytes; writes reached WebGPU's errors).
  for (const how of ["device.destroy()", "the owner's dispose()", "GPUDevice.prototype.destroy"] as const) {
    const owner = await requestGpu({ label: how });
    const device = owner.device;
    if (how === "device.destroy()") device.destroy();
    else if (how === "the owner's dispose()") owner.dispose();
    else {
      let proto = Object.getPrototypeOf(device);
      while (!Object.hasOwn(proto, "destroy")) proto = Object.getPrototypeOf(proto);
      proto.destroy.call(device);
    }
    assert.throws(() => GpuContext.fromDevice(device), {
      name: "AllocationError",
      category: "use-after-free",
      message: /was destroyed/,
    }, how);
    owner.dispose();
  }
});
