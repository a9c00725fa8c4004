// Bad input to the uploads, readback, rings and suballocator: each row gets
// its documented error before anything reaches the GPU, and leaves the
// accounting and the target buffer as they were.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DynamicArray } from "../../src/arrays/dynamic_array.ts";
import { SharedDynamicArray } from "../../src/arrays/shared_dynamic_array.ts";
import { GpuBufferUsage as U } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { GpuUniformRing } from "../../src/gpu/gpu_uniform_ring.ts";
import { GpuSuballocator } from "../../src/gpu/gpu_suballocator.ts";
import { GpuBufferPool } from "../../src/gpu/gpu_buffer_pool.ts";
import { context, skipGpu } from "./_gpu_context.ts";

test("uploads and readback: bad input rows", { skip: skipGpu }, async () => {
  using gpu = context();
  const target = gpu.createBuffer({ size: 64, usage: U.STORAGE | U.COPY_DST | U.COPY_SRC });
  writeGpuBuffer(gpu, target, new Uint32Array(16).fill(7));
  const noDst = gpu.createBuffer({ size: 64, usage: U.STORAGE | U.COPY_SRC });
  const noSrc = gpu.createBuffer({ size: 64, usage: U.STORAGE | U.COPY_DST });
  const freed = new DynamicArray<number>("u32");
  freed.push(1);
  freed.free();
  const detached = new Uint32Array(new ArrayBuffer(16).transfer(16));
  (detached.buffer as ArrayBuffer).transfer(0);
  const words = new Uint32Array(4);
  const rows: [string, () => unknown, object][] = [
    ["gpu not a context", () => writeGpuBuffer({} as never, target, words), { name: "TypeError" }],
    ["buffer not a buffer", () => writeGpuBuffer(gpu, {} as never, words), { name: "TypeError" }],
    ["buffer without COPY_DST", () => writeGpuBuffer(gpu, noDst, words), { name: "TypeError", message: /COPY_DST/ }],
    ["source a number", () => writeGpuBuffer(gpu, target, 5 as never), { name: "TypeError" }],
    ["source a plain array", () => writeGpuBuffer(gpu, target, [1, 2] as never), { name: "TypeError" }],
    ["source freed", () => writeGpuBuffer(gpu, target, freed), { name: "AllocationError", category: "use-after-free" }],
    ["source detached", () => writeGpuBuffer(gpu, target, detached), {
      name: "AllocationError",
      category: "use-after-free",
    }],
    ["offset not a multiple of 4", () => writeGpuBuffer(gpu, target, words, { offset: 2 }), { name: "RangeError" }],
    ["offset negative", () => writeGpuBuffer(gpu, target, words, { offset: -4 }), { name: "RangeError" }],
    ["offset a string", () => writeGpuBuffer(gpu, target, words, { offset: "4" as never }), { name: "TypeError" }],
    ["past the buffer's end", () => writeGpuBuffer(gpu, target, words, { offset: 56 }), { name: "RangeError" }],
    ["bytes not whole words", () => writeGpuBuffer(gpu, target, new Uint8Array(6)), { name: "RangeError" }],
    ["ranges not an array", () => writeGpuBuffer(gpu, target, words, { ranges: {} as never }), { name: "TypeError" }],
    ["range past the source", () => writeGpuBuffer(gpu, target, words, { ranges: [{ first: 3, count: 2 }] }), {
      name: "RangeError",
    }],
    ["range count fractional", () => writeGpuBuffer(gpu, target, words, { ranges: [{ first: 0, count: 1.5 }] }), {
      name: "RangeError",
    }],
    ["range not an object", () => writeGpuBuffer(gpu, target, words, { ranges: [3 as never] }), { name: "TypeError" }],
    ["options not an object", () => writeGpuBuffer(gpu, target, words, 4 as never), { name: "TypeError" }],
    ["create from a non-view", () => createGpuBufferFrom(gpu, "abc" as never, U.STORAGE), { name: "TypeError" }],
    ["create with usage 0", () => createGpuBufferFrom(gpu, words, 0), { name: "RangeError" }],
  ];
  for (const [name, run, expected] of rows) {
    assert.throws(run, expected, name);
    assert.equal(gpu.memoryStats().buffers, 3, name);
  }
  const readRows: [string, () => Promise<unknown>, object][] = [
    ["read without COPY_SRC", () => readGpuBuffer(gpu, noSrc, new Uint32Array(4)), { name: "TypeError" }],
    ["read into a non-view", () => readGpuBuffer(gpu, target, {} as never), { name: "TypeError" }],
    ["read without a target", () => readGpuBuffer(gpu, target, undefined as never), {
      name: "TypeError",
      message: /without a target: pass .* as the third argument/,
    }],
    ["read past the end", () => readGpuBuffer(gpu, target, new Uint32Array(4), { offset: 56 }), { name: "RangeError" }],
    ["read into 3 bytes", () => readGpuBuffer(gpu, target, new Uint8Array(3)), { name: "RangeError" }],
    ["read at offset 2", () => readGpuBuffer(gpu, target, new Uint32Array(1), { offset: 2 }), { name: "RangeError" }],
    ["read into a freed array", () => readGpuBuffer(gpu, target, freed), {
      name: "AllocationError",
      category: "use-after-free",
    }],
  ];
  for (const [name, run, expected] of readRows) {
    await assert.rejects(run(), expected, name);
    assert.equal(gpu.memoryStats().buffers, 3, name);
  }
  const back = new Uint32Array(16);
  await readGpuBuffer(gpu, target, back);
  assert.deepEqual([...back], new Array(16).fill(7)); // no row wrote anything
});

// Every entry point taking a source or target, with a value of the wrong kind: the message names what is accepted
// and the value's class (never "[object Object]"), and what to do with a SharedDynamicArray.
test("sources and targets of the wrong kind: what is accepted, the value's class, what to do", {
  skip: skipGpu,
}, async () => {
  using gpu = context();
  const target = gpu.createBuffer({ size: 1024, usage: U.STORAGE | U.COPY_DST | U.COPY_SRC | U.UNIFORM });
  using ring = new GpuStagingRing(gpu);
  using uniforms = new GpuUniformRing(gpu);
  const shared = new SharedDynamicArray<number>("f32", { maxCapacity: 64 });
  shared.pushMany([1, 2, 3, 4]);
  class Particles {
    readonly count = 4;
  }
  const buffers = gpu.memoryStats().buffers; // the target and the rings' own
  const entries: [string, string, (value: unknown) => unknown][] = [
    ["writeGpuBuffer", "source", (value) => writeGpuBuffer(gpu, target, value as never)],
    ["createGpuBufferFrom", "source", (value) => createGpuBufferFrom(gpu, value as never, U.STORAGE)],
    ["GpuStagingRing.upload", "source", (value) => ring.upload(target, 0, value as never)],
    ["GpuUniformRing.push", "uniforms", (value) => uniforms.push(value as never)],
    ["readGpuBuffer", "target", (value) => readGpuBuffer(gpu, target, value as never)],
  ];
  const values: [string, unknown, RegExp][] = [
    ["a SharedDynamicArray", shared, /current value is a SharedDynamicArray \(/],
    ["an instance of a class", new Particles(), /current value is a Particles$/],
    ["a plain object", { length: 4 }, /current value is an object$/],
    ["a plain array", [1, 2, 3, 4], /current value is an Array \(wrap its numbers in a typed array/],
    ["an ArrayBuffer", new ArrayBuffer(16), /current value is an ArrayBuffer \(wrap it in a view/],
    ["a SharedArrayBuffer", new SharedArrayBuffer(16), /current value is a SharedArrayBuffer \(wrap it in a view/],
    ["a Proxy", new Proxy(new Float32Array(4), {}), /current value is a Proxy$/],
    ["a number", 16, /current value is 16$/],
    ["null", null, /current value is null$/],
  ];
  for (const [entry, name, call] of entries) {
    for (const [what, value, described] of values) {
      const row = `${entry} with ${what}`;
      let thrown: unknown = null;
      try {
        await call(value);
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof TypeError, `${row}: ${thrown}`);
      const message = thrown.message;
      assert.match(
        message,
        new RegExp(
          `^Cannot .* as '${name}' must be a DynamicArray or SIMDArray \\(uniformArray\\(\\) makes one\\), a typed array or a DataView: current value is `,
        ),
        row,
      );
      assert.match(message, described, row);
      assert.doesNotMatch(message, /\[object/, row);
      if (value === shared) {
        // Why it is refused, and what to pass instead (for a read: where the bytes go first).
        assert.match(message, /other threads may write while the GPU copies/, row);
        assert.match(message, name === "target" ? /then store them with pushMany\(\) or set\(\)/ : /toArray\(\)/, row);
      }
      assert.equal(gpu.memoryStats().buffers, buffers, row); // nothing reached the GPU
    }
  }
  // The advice works: the elements copied out upload as any typed array does.
  writeGpuBuffer(gpu, target, new Float32Array(shared.toArray()));
  const back = new Float32Array(4);
  await readGpuBuffer(gpu, target, back);
  assert.deepEqual([...back], [1, 2, 3, 4]);
});

test("rings and suballocator: bad options and use after dispose", { skip: skipGpu }, () => {
  using gpu = context();
  const max = gpu.device.limits.maxBufferSize;
  const rows: [string, () => unknown, object][] = [
    ["staging ring without a context", () => new GpuStagingRing(null as never), { name: "TypeError" }],
    ["staging chunk not a multiple of 256", () => new GpuStagingRing(gpu, { chunkBytes: 1000 }), {
      name: "RangeError",
    }],
    ["staging unknown option", () => new GpuStagingRing(gpu, { size: 1 } as never), { name: "TypeError" }],
    ["uniform ring capacity 100", () => new GpuUniformRing(gpu, { capacity: 100 }), { name: "RangeError" }],
    ["uniform ring capacity a string", () => new GpuUniformRing(gpu, { capacity: "1" as never }), {
      name: "TypeError",
    }],
    ["suballocator without usage", () => new GpuSuballocator(gpu, {} as never), { name: "TypeError" }],
    ["suballocator block 1000", () => new GpuSuballocator(gpu, { usage: U.VERTEX, blockBytes: 1000 }), {
      name: "RangeError",
    }],
    ["suballocator alignment 3", () => new GpuSuballocator(gpu, { usage: U.VERTEX, alignment: 3 }), {
      name: "RangeError",
    }],
    // Before: accepted, then refused at the first use (naming the 'size' of a buffer the caller never asked for).
    ["staging chunk above maxBufferSize", () => new GpuStagingRing(gpu, { chunkBytes: 2 ** 32 }), {
      name: "RangeError",
      message: `Cannot create GpuStagingRing as 'chunkBytes' must be at most the device's maxBufferSize ${max}: ` +
        `current value is ${2 ** 32}`,
    }],
    ["uniform ring capacity above maxBufferSize", () => new GpuUniformRing(gpu, { capacity: 2 ** 32 }), {
      name: "RangeError",
      message: /'capacity' must be at most the device's maxBufferSize/,
    }],
    [
      "suballocator block above maxBufferSize",
      () => new GpuSuballocator(gpu, { usage: U.VERTEX, blockBytes: 2 ** 40 }),
      {
        name: "RangeError",
        message: /'blockBytes' must be at most the device's maxBufferSize .*: current value is 1099511627776/,
      },
    ],
    ["suballocator MAP_READ with STORAGE", () => new GpuSuballocator(gpu, { usage: U.MAP_READ | U.STORAGE }), {
      name: "TypeError",
      message: /Cannot create GpuSuballocator as 'usage' may combine MAP_READ only with COPY_DST/,
    }],
  ];
  for (const [name, run, expected] of rows) {
    assert.throws(run, expected, name);
    assert.equal(gpu.memoryStats().buffers, 0, name);
  }
  const ring = new GpuStagingRing(gpu);
  const uniforms = new GpuUniformRing(gpu, { capacity: 256 });
  const heap = new GpuSuballocator(gpu, { usage: U.VERTEX | U.COPY_DST });
  const target = gpu.createBuffer({ size: 16, usage: U.VERTEX | U.COPY_DST });
  ring.upload(target, 0, new Uint32Array(4));
  ring.dispose();
  uniforms.dispose();
  heap.dispose();
  const gone = { name: "AllocationError", category: "use-after-free" };
  assert.throws(() => ring.upload(target, 0, new Uint32Array(4)), gone);
  assert.throws(() => ring.flush(), gone);
  assert.throws(() => uniforms.push(new Uint32Array(64)), gone);
  assert.throws(() => heap.allocate(16), gone);
  assert.equal(gpu.memoryStats().buffers, 1); // only the target: every chunk, ring and block destroyed
});

test("pool and suballocator at the device's maxBufferSize: messages name the caller's value; a slice of it fits", {
  skip: skipGpu,
}, () => {
  using gpu = context();
  const max = gpu.device.limits.maxBufferSize;
  using pool = new GpuBufferPool(gpu);
  // Before: "'size' must be at most ... current value is 536870912" (the size class, not the caller's size).
  assert.throws(() => pool.acquire(max + 1, U.STORAGE), {
    name: "RangeError",
    message: `Cannot acquire from GpuBufferPool as 'size' must be at most the device's maxBufferSize ${max}: ` +
      `current value is ${max + 1}`,
  });
  assert.throws(() => pool.acquire(64, U.MAP_READ | U.STORAGE), { name: "TypeError", message: /from GpuBufferPool/ });
  assert.equal(gpu.memoryStats().created, 0);
  using sub = new GpuSuballocator(gpu, { usage: U.STORAGE | U.COPY_DST });
  assert.throws(() => sub.allocate(max + 4), {
    name: "RangeError",
    message: new RegExp(`current value is ${max + 4}`),
  });
  // Before: refused, naming a block of maxBufferSize + 256 bytes; a block of exactly its size serves it.
  const whole = sub.allocate(max);
  assert.deepEqual([whole.offset, whole.size, gpu.sizeOf(whole.buffer)], [0, max, max]);
  sub.free(whole);
  assert.equal(sub.trim(), max);
});
