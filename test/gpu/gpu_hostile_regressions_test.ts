// Regressions found by the hostile-argument suite (test/hostile_test.ts) in
// the GPU family: each failed before its fix with the engine's error (or a
// caller's getter run by WebGPU) instead of memkit's.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AllocationError } from "../../src/base/errors.ts";
import { GpuBufferUsage as U, GpuContext } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { GpuUniformRing } from "../../src/gpu/gpu_uniform_ring.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { SystemAllocator } from "../../src/alloc/system_allocator.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const COPY = U.STORAGE | U.COPY_DST | U.COPY_SRC;

test("new GpuContext from outside memkit is a TypeError, whatever its arguments", { skip: skipGpu }, () => {
  using gpu = context();
  const Ctor = GpuContext as unknown as new (...args: unknown[]) => GpuContext;
  // Before: Cannot read properties of undefined (reading 'limits'), or a context over a look-alike.
  for (const args of [[], [undefined], [{}], [gpu.device, null, {}, false], [gpu.device, null, null, false]]) {
    assert.throws(() => new Ctor(...args), {
      name: "TypeError",
      message: /requestGpu\(\) or GpuContext\.fromDevice\(\)/,
    });
  }
  assert.equal(gpu.memoryStats().buffers, 0, "nothing was created");
});

test("a context has no bufferRecord method to call with a flag of the caller's", { skip: skipGpu }, () => {
  using gpu = context();
  // Before: gpu.bufferRecord(buffer, view) coerced the view (the engine's join on a detached buffer).
  assert.equal((gpu as unknown as Record<string, unknown>).bufferRecord, undefined);
  const buffer = gpu.createBuffer({ size: 16, usage: COPY });
  assert.equal(writeGpuBuffer(gpu, buffer, new Uint32Array([1, 2, 3, 4])), 16, "the transfers still check buffers");
});

test("createGpuBufferFrom: a detached source is use-after-free and nothing is created", { skip: skipGpu }, () => {
  using gpu = context();
  const detached = new Uint8Array(16); // a plain Uint8Array is its own bytes: its detachment was missed
  detached.buffer.transfer(0);
  // Before: AllocationError("platform") wrapping the engine's "Cannot perform %TypedArray%.prototype.set".
  assert.throws(() => createGpuBufferFrom(gpu, detached, COPY), (error) => {
    assert.ok(error instanceof AllocationError);
    assert.equal(error.category, "use-after-free");
    assert.doesNotMatch(error.message, /Cannot perform/);
    return true;
  });
  assert.equal(gpu.memoryStats().buffers, 0);
});

test(
  "createGpuBufferFrom: a view out of bounds of its shrunk buffer is empty (4 zero bytes)",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    const resizable = new ArrayBuffer(64, { maxByteLength: 128 });
    const view = new Uint8Array(resizable, 16, 32);
    resizable.resize(8); // the view is out of bounds: length 0
    const buffer = createGpuBufferFrom(gpu, view, COPY);
    assert.equal(gpu.sizeOf(buffer), 4);
    const back = new Uint8Array(4).fill(9);
    await readGpuBuffer(gpu, buffer, back);
    assert.deepEqual([...back], [0, 0, 0, 0]);
  },
);

test(
  "GpuUniformRing.push never runs a view's own getters, and WebGPU's refusals are memkit's",
  { skip: skipGpu },
  () => {
    using gpu = context();
    using ring = new GpuUniformRing(gpu, { capacity: 1024 });
    const uniforms = new Float32Array(16).fill(2.5);
    for (const name of ["buffer", "byteOffset", "byteLength", "length"]) {
      Object.defineProperty(uniforms, name, {
        get() {
          throw new Error(`own getter ${name} ran`);
        },
      });
    }
    // Before, in Bun: bun-webgpu's writeBuffer read the own `buffer` getter.
    const base = ring.push(uniforms);
    assert.equal(base, 0);
    assert.equal(ring.used, 256, "one 256-byte slot written");
    // A view over a SharedArrayBuffer: Deno's WebGPU takes it, Bun's refuses it (before: a plain Error).
    const used = ring.used;
    try {
      const offset = ring.push(new Float32Array(new SharedArrayBuffer(64)));
      assert.equal(offset, used);
    } catch (error) {
      assert.ok(error instanceof AllocationError && error.category === "platform", String(error));
      assert.equal(ring.used, used, "a refused push leaves the head where it was");
    }
  },
);

test(
  "writeGpuBuffer, readGpuBuffer, createGpuBufferFrom: a view's own buffer/offset/length getters and an own or patched set change nothing",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    const buffer = gpu.createBuffer({ size: 64, usage: COPY });
    const source = new Uint8Array(64).fill(7);
    const ran: string[] = [];
    for (
      const [name, value] of [["buffer", new ArrayBuffer(1 << 20)], ["byteOffset", 2 ** 40], ["byteLength", 2 ** 40]]
    ) {
      Object.defineProperty(source, name as string, {
        get() {
          ran.push(name as string);
          return value;
        },
      });
    }
    // Before, in Bun: bun-webgpu read the own `buffer` getter and wrote that buffer's zeros.
    assert.equal(writeGpuBuffer(gpu, buffer, source), 64);
    const back = new Uint8Array(64);
    Object.defineProperty(back, "set", { value: () => ran.push("own set") });
    assert.equal(await readGpuBuffer(gpu, buffer, back), 64);
    assert.deepEqual([...back], new Array(64).fill(7), "the source's bytes went to the GPU and came back");
    const set = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), "set")!;
    Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), "set", {
      ...set,
      value() {
        ran.push("patched set");
      },
    });
    let made;
    try {
      made = createGpuBufferFrom(gpu, new Uint8Array(16).fill(3), COPY);
    } finally {
      Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), "set", set);
    }
    const again = new Uint8Array(16);
    await readGpuBuffer(gpu, made, again);
    assert.deepEqual([...again], new Array(16).fill(3));
    assert.deepEqual(ran, [], "no getter, own set or patched set ran");
  },
);

test("a freed memkit block (a plain Uint8Array, detached) in every transfer: use-after-free, nothing changed", {
  skip: skipGpu,
}, async () => {
  using gpu = context();
  using ring = new GpuStagingRing(gpu);
  using uniforms = new GpuUniformRing(gpu, { capacity: 1024 });
  const buffer = gpu.createBuffer({ size: 256, usage: COPY, label: "buffer" });
  writeGpuBuffer(gpu, buffer, new Uint8Array(256).fill(7));
  using allocator = new SystemAllocator();
  const freed = allocator.alloc(64);
  allocator.free(freed); // detached: its views read as length 0, and it is its own bytes
  const useAfterFree = (name: string) => (error: unknown) => {
    assert.ok(error instanceof AllocationError, `${name}: ${error}`);
    assert.equal(error.category, "use-after-free", name);
    assert.doesNotMatch(error.message, /Cannot perform|already detached/, name);
    return true;
  };
  const stats = gpu.memoryStats();
  // Before: writeGpuBuffer leaked the engine's error; the ring, the uniform ring and the read did nothing.
  assert.throws(() => writeGpuBuffer(gpu, buffer, freed), useAfterFree("writeGpuBuffer"));
  assert.throws(() => ring.upload(buffer, 0, freed), useAfterFree("ring.upload"));
  assert.throws(() => uniforms.push(freed), useAfterFree("uniforms.push"));
  assert.throws(() => createGpuBufferFrom(gpu, freed, COPY), useAfterFree("createGpuBufferFrom"));
  await assert.rejects(readGpuBuffer(gpu, buffer, freed), useAfterFree("readGpuBuffer"));
  assert.deepEqual(gpu.memoryStats(), stats, "nothing created");
  assert.deepEqual([ring.stats().uploadedBytes, ring.stats().chunks, uniforms.used], [0, 0, 0]);
  const back = new Uint8Array(256);
  await readGpuBuffer(gpu, buffer, back);
  assert.deepEqual([back[0], back[255]], [7, 7]);
});
