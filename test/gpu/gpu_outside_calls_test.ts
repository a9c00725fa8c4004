// What the program does around memkit's GPU family (an adversarial pass,
// each case failing before its fix): a budget reclaimer that disposes the
// context or the pool, ring or suballocator creating a buffer; WebGPU's own
// destroy() of a buffer or a device instead of memkit's; option getters that
// free the source of a write; SharedArrayBuffer sources; a DynamicArray
// subclass whose getters lie; the suballocator's refusals and its blocks
// destroyed by hand.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GpuBufferUsage as U, requestGpu } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { GpuBufferPool } from "../../src/gpu/gpu_buffer_pool.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { GpuUniformRing } from "../../src/gpu/gpu_uniform_ring.ts";
import { GpuSuballocator } from "../../src/gpu/gpu_suballocator.ts";
import { MemoryBudget } from "../../src/budget/memory_budget.ts";
import { SystemAllocator } from "../../src/alloc/system_allocator.ts";
import { DynamicArray } from "../../src/arrays/dynamic_array.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const error = (category: string) => ({ name: "AllocationError", category });

// A budget with 1 MiB for "gpu" (half of 2 MiB physical at every level), and nothing in the way of it.
function smallBudget(): MemoryBudget {
  return new MemoryBudget({
    physicalBytes: 2 << 20,
    fractions: { normal: 1 / 2, warning: 1 / 2, critical: 1 / 2 },
    minimumBytes: 0,
  });
}

test("a reclaimer that disposes the context inside createBuffer: use-after-free, nothing created or charged", {
  skip: skipGpu,
}, async () => {
  const budget = smallBudget();
  const gpu = await requestGpu({ budget, label: "reclaimed" });
  gpu.createBuffer({ size: 1 << 20, usage: U.STORAGE }); // the whole budget
  let fired = 0;
  budget.addReclaimer(() => {
    fired++;
    gpu.dispose();
    return 0;
  });
  assert.throws(() => gpu.createBuffer({ size: 4096, usage: U.STORAGE }), error("use-after-free"));
  assert.equal(fired, 1);
  assert.equal(budget.usedBytes, 0);
  assert.equal(gpu.memoryStats().buffers, 0);
  assert.equal(gpu.liveBuffers().length, 0);
});

for (const owner of ["pool", "staging ring", "suballocator"] as const) {
  test(`a reclaimer that disposes the ${owner} making a buffer: use-after-free, the buffer destroyed`, {
    skip: skipGpu,
  }, () => {
    const budget = smallBudget();
    const gpu = context(`reclaimed ${owner}`);
    // A context over the shared device with its own budget: fromDevice takes the options.
    const charged = Object.getPrototypeOf(gpu).constructor.fromDevice(gpu.device, { budget, label: owner });
    const filler = charged.createBuffer({ size: 1 << 20, usage: U.STORAGE });
    let victim: { dispose(): void } | null = null;
    budget.addReclaimer(() => {
      victim?.dispose();
      victim = null;
      if (charged.owns(filler)) charged.destroyBuffer(filler);
      return 1 << 20;
    });
    const target = charged.owns(filler) ? gpu.createBuffer({ size: 256, usage: U.COPY_DST }) : null;
    const run = owner === "pool"
      ? () => {
        const pool = new GpuBufferPool(charged);
        victim = pool;
        return () => pool.acquire(64 << 10, U.VERTEX);
      }
      : owner === "staging ring"
      ? () => {
        const ring = new GpuStagingRing(charged, { chunkBytes: 64 << 10 });
        victim = ring;
        return () => ring.upload(target!, 0, new Uint32Array(4));
      }
      : () => {
        const sub = new GpuSuballocator(charged, { usage: U.STORAGE, blockBytes: 64 << 10 });
        victim = sub;
        return () => sub.allocate(256);
      };
    assert.throws(run(), error("use-after-free"));
    assert.equal(victim, null, "the reclaimer ran");
    assert.deepEqual(charged.liveBuffers(), [], "no buffer of the disposed owner is left");
    assert.equal(budget.usedBytes, 0);
    charged.dispose();
    gpu.dispose();
  });
}

test("GpuUniformRing.push after its buffer was destroyed (by the context or WebGPU): use-after-free, head kept", {
  skip: skipGpu,
}, () => {
  const gpu = context("uniform ring");
  for (const destroy of [(b: GPUBuffer) => gpu.destroyBuffer(b), (b: GPUBuffer) => b.destroy()]) {
    const ring = new GpuUniformRing(gpu, { capacity: 1024 });
    ring.push(new Float32Array(4));
    destroy(ring.buffer);
    assert.throws(() => ring.push(new Float32Array(16)), error("use-after-free"));
    assert.equal(ring.used, 256);
    ring.dispose();
  }
  gpu.dispose();
});

test("WebGPU's own buffer.destroy(): memkit forgets the buffer at once", { skip: skipGpu }, async () => {
  const budget = smallBudget();
  const gpu = await requestGpu({ budget, label: "native destroy" });
  const a = gpu.createBuffer({ size: 4096, usage: U.COPY_DST | U.COPY_SRC, label: "a" });
  a.destroy();
  assert.equal(gpu.owns(a), false);
  assert.equal(gpu.memoryStats().bytes, 0);
  assert.equal(gpu.memoryStats().destroyed, 1);
  assert.equal(budget.usedBytes, 0, "its budget bytes are back");
  assert.throws(() => writeGpuBuffer(gpu, a, new Uint32Array(4)), error("use-after-free"));
  await assert.rejects(readGpuBuffer(gpu, a, new Uint32Array(4)), error("use-after-free"));
  assert.throws(() => gpu.destroyBuffer(a), TypeError, "destroyed already");
  a.destroy(); // WebGPU allows it twice: nothing more changes
  assert.equal(gpu.memoryStats().destroyed, 1);
  gpu.dispose();
});

test("a staging ring's flush leaves out a target destroyed by WebGPU's destroy(): the others arrive", {
  skip: skipGpu,
}, async () => {
  const gpu = context("flush");
  const good = gpu.createBuffer({ size: 256, usage: U.COPY_DST | U.COPY_SRC, label: "good" });
  const bad = gpu.createBuffer({ size: 256, usage: U.COPY_DST, label: "bad" });
  const ring = new GpuStagingRing(gpu);
  ring.upload(good, 0, new Uint32Array(64).fill(9));
  ring.upload(bad, 0, new Uint32Array(4));
  bad.destroy();
  ring.flush();
  const back = new Uint32Array(64);
  await readGpuBuffer(gpu, good, back);
  assert.equal(back[0], 9);
  assert.equal(back[63], 9);
  ring.dispose();
  gpu.dispose();
});

test("GPUDevice.prototype.destroy.call(device): the contexts are lost at once", { skip: skipGpu }, async () => {
  const gpu = await requestGpu({ label: "prototype destroy" });
  const other = Object.getPrototypeOf(gpu).constructor.fromDevice(gpu.device, { label: "second" });
  const pool = new GpuBufferPool(gpu);
  const uniforms = new GpuUniformRing(gpu, { capacity: 1024 });
  const buffer = gpu.createBuffer({ size: 64, usage: U.COPY_DST | U.COPY_SRC });
  let proto = Object.getPrototypeOf(gpu.device);
  while (!Object.hasOwn(proto, "destroy")) proto = Object.getPrototypeOf(proto);
  proto.destroy.call(gpu.device);
  assert.equal(gpu.lost, true);
  assert.equal(other.lost, true);
  const rows: [string, () => unknown][] = [
    ["createBuffer", () => gpu.createBuffer({ size: 64, usage: U.STORAGE })],
    ["createGpuBufferFrom", () => createGpuBufferFrom(gpu, new Uint32Array(4), U.STORAGE)],
    ["writeGpuBuffer", () => writeGpuBuffer(gpu, buffer, new Uint32Array(4))],
    ["pool.acquire", () => pool.acquire(256, U.COPY_DST)],
    ["uniforms.push", () => uniforms.push(new Float32Array(4))],
    ["other.createBuffer", () => other.createBuffer({ size: 64, usage: U.STORAGE })],
  ];
  for (const [name, run] of rows) assert.throws(run, error("use-after-free"), name);
  await assert.rejects(readGpuBuffer(gpu, buffer, new Uint32Array(4)), error("use-after-free"));
  assert.equal(gpu.memoryStats().bytes, 0);
  gpu.dispose();
});

test("memkit's own destroy is WebGPU's, whatever the program put on the buffer", { skip: skipGpu }, () => {
  const gpu = context("own property");
  const buffer = gpu.createBuffer({ size: 64, usage: U.COPY_DST });
  let called = 0;
  Object.defineProperty(buffer, "destroy", { value: () => called++ });
  gpu.destroyBuffer(buffer);
  assert.equal(called, 0);
  assert.equal(gpu.memoryStats().buffers, 0);
  gpu.dispose();
});

test("writeGpuBuffer reads its options before the source: a getter that frees it is use-after-free", {
  skip: skipGpu,
}, () => {
  const gpu = context("getters");
  const buffer = gpu.createBuffer({ size: 4096, usage: U.COPY_DST });
  using allocator = new SystemAllocator();
  const freed = allocator.array(Uint32Array, 256);
  const ranges = {
    get ranges() {
      allocator.free(freed);
      return undefined;
    },
  };
  assert.throws(() => writeGpuBuffer(gpu, buffer, freed, ranges), error("use-after-free"));
  const moved = new Uint32Array(256);
  const range = {
    get first() {
      (moved.buffer as ArrayBuffer).transfer();
      return 0;
    },
    count: 4,
  };
  assert.throws(() => writeGpuBuffer(gpu, buffer, moved, { ranges: [range] }), error("use-after-free"));
  gpu.dispose();
});

test("SharedArrayBuffer sources and targets: every transfer takes them, in both runtimes", {
  skip: skipGpu,
}, async () => {
  const gpu = context("shared");
  const shared = new Uint32Array(new SharedArrayBuffer(256)).map((_, i) => i + 1);
  const usage = U.COPY_DST | U.COPY_SRC;
  const written = gpu.createBuffer({ size: 256, usage });
  assert.equal(writeGpuBuffer(gpu, written, shared), 256);
  const made = createGpuBufferFrom(gpu, shared, usage);
  const uploaded = gpu.createBuffer({ size: 256, usage });
  const ring = new GpuStagingRing(gpu);
  ring.upload(uploaded, 0, shared);
  ring.flush();
  for (const buffer of [written, made, uploaded]) {
    const back = new Uint32Array(new SharedArrayBuffer(256));
    assert.equal(await readGpuBuffer(gpu, buffer, back), 256);
    assert.deepEqual([...back], [...shared]);
  }
  const uniforms = new GpuUniformRing(gpu, { capacity: 1024 });
  assert.equal(uniforms.push(shared), 0);
  assert.equal(uniforms.used, 256);
  ring.dispose();
  uniforms.dispose();
  gpu.dispose();
});

test("a DynamicArray subclass whose bytes and stride getters lie: its real elements are written", {
  skip: skipGpu,
}, async () => {
  class Lying extends DynamicArray<number> {
    override get bytes(): Uint8Array<ArrayBuffer> {
      return new Uint8Array(4096).fill(0xee);
    }
    override get stride(): number {
      return -256;
    }
  }
  const gpu = context("subclass");
  using values = new Lying("u32");
  values.pushMany([1, 2, 3, 4]);
  const buffer = gpu.createBuffer({ size: 64, usage: U.COPY_DST | U.COPY_SRC });
  assert.equal(writeGpuBuffer(gpu, buffer, values, { ranges: [{ first: 1, count: 2 }] }), 8);
  assert.equal(writeGpuBuffer(gpu, buffer, values), 16);
  const back = new Uint32Array(4);
  await readGpuBuffer(gpu, buffer, back);
  assert.deepEqual([...back], [1, 2, 3, 4]);
  gpu.dispose();
});

test("GpuSuballocator: a slice freed twice, another's, a copy; a block destroyed by hand leaves its books", {
  skip: skipGpu,
}, () => {
  const gpu = context("suballocator");
  const sub = new GpuSuballocator(gpu, { usage: U.STORAGE, blockBytes: 64 << 10 });
  const other = new GpuSuballocator(gpu, { usage: U.STORAGE, blockBytes: 64 << 10 });
  const slice = sub.allocate(256);
  const kept = sub.allocate(256);
  sub.free(slice);
  assert.throws(() => sub.free(slice), error("double-free"));
  assert.throws(() => other.free(kept), error("mismatched-allocator"));
  assert.throws(() => sub.free({ ...kept }), error("invalid-free"));
  assert.deepEqual(sub.stats(), { blocks: 1, blockBytes: 64 << 10, slices: 1, sliceBytes: 256 });
  kept.buffer.destroy();
  assert.deepEqual(sub.stats(), { blocks: 0, blockBytes: 0, slices: 0, sliceBytes: 0 });
  assert.equal(sub.trim(), 0, "the destroyed block is not counted as trimmed");
  assert.throws(() => sub.free(kept), error("use-after-free"));
  const fresh = sub.allocate(256);
  assert.equal(gpu.owns(fresh.buffer), true);
  sub.free(fresh);
  sub.dispose();
  other.dispose();
  gpu.dispose();
});
