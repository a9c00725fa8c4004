// What the program does around memkit's GPU family (an adversarial pass,
// each case failing before its fix): a budget reclaimer that disposes the
// context or the pool, ring or suballocator creating a buffer; WebGPU's own
// destroy() of a buffer or a device instead of memkit's; option getters that
// free the source of a write; SharedArrayBuffer sources; a DynamicArray
// subclass whose getters lie; the suballocator's refusals and its blocks
// destroyed by hand.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { AllocationError } from "../../src/base/errors.ts";
import { GpuBufferUsage as U, requestGpu } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { GpuBufferPool } from "../../src/gpu/gpu_buffer_pool.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { GpuUniformRing } from "../../src/gpu/gpu_uniform_ring.ts";
import { GpuSuballocator } from "../../src/gpu/gpu_suballocator.ts";
import { MemoryBudget } from "../../src/budget/memory_budget.ts";
import { SystemAllocator } from "../../src/alloc/system_allocator.ts";
import { DynamicArray } from "../../src/arrays/dynamic_array.ts";
import { runChild } from "../_helpers.ts";
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

for (const which of ["buffer", "device"] as const) {
  test(
    `GPU${
      which === "buffer" ? "Buffer" : "Device"
    }.prototype frozen before memkit saw one: destroy() is still followed (child process)`,
    {
      skip: skipGpu,
    },
    () => {
      // Before: only a prototype's destroy was wrapped, so with it frozen memkit went on counting a destroyed
      // buffer (and a ring's flush lost another buffer's upload), or did not see the device go.
      const child = runChild(fileURLToPath(new URL("./_frozen_prototypes_child.ts", import.meta.url)), {}, [which]);
      assert.equal(child.signal, null, child.stderr);
      assert.equal(child.status, 0, child.stderr);
      const lines = child.stdout.trim().split("\n");
      assert.equal(lines.at(-1), "END", child.stdout + child.stderr);
      const seen = JSON.parse(lines.at(-2)!);
      const expected = which === "buffer"
        ? {
          owned: false,
          bytes: 0,
          write: "use-after-free",
          read: "use-after-free",
          innocent: [1, 2, 3, 4],
          release: "use-after-free",
          live: ["innocent"],
        }
        : { lost: true, bytes: 0, create: "use-after-free", wrap: "use-after-free", mineLost: true, mineBytes: 0 };
      assert.deepEqual(seen, expected);
    },
  );
}

// Budget reclaimers run inside memkit's calls (while a GPU buffer is created for them), after the calls'
// checks: what they free or destroy is checked again before WebGPU runs, and the call changes nothing.
test("a reclaimer that frees what a call is about to copy: use-after-free, nothing created or changed", {
  skip: skipGpu,
}, async () => {
  const budget = smallBudget();
  const gpu = await requestGpu({ budget, label: "reclaimer frees the source" });
  let onReclaim: () => void = () => {};
  let filler: GPUBuffer | null = null;
  budget.addReclaimer(() => {
    const run = onReclaim;
    onReclaim = () => {};
    run();
    if (filler !== null && gpu.owns(filler)) gpu.destroyBuffer(filler);
    filler = null;
    return 0;
  });
  // The rest of the budget: the next buffer needs the reclaimer (which destroys the filler).
  const fill = () => (filler = gpu.createBuffer({ size: (1 << 20) - budget.usedBytes, usage: U.STORAGE }));
  const target = gpu.createBuffer({ size: 4096, usage: U.STORAGE | U.COPY_DST | U.COPY_SRC, label: "target" });
  writeGpuBuffer(gpu, target, new Uint32Array(1024).fill(7));
  using allocator = new SystemAllocator();
  const ring = new GpuStagingRing(gpu, { chunkBytes: 64 << 10 });
  const rows: [string, (free: (what: () => void) => void) => unknown][] = [
    ["ring.upload, a DynamicArray", (free) => {
      const values = new DynamicArray<number>("u32");
      values.pushMany(new Uint32Array(256).fill(1));
      free(() => values.free());
      return ring.upload(target, 0, values);
    }],
    ["ring.upload, a memkit block", (free) => {
      const block = allocator.alloc(1024);
      free(() => allocator.free(block));
      return ring.upload(target, 0, block);
    }],
    ["createGpuBufferFrom, a DynamicArray", (free) => {
      const values = new DynamicArray<number>("f32");
      values.pushMany(new Float32Array(1024).fill(2));
      free(() => values.free());
      return createGpuBufferFrom(gpu, values, U.STORAGE | U.COPY_SRC);
    }],
    ["createGpuBufferFrom, a memkit block", (free) => {
      const block = allocator.alloc(16384).fill(7);
      free(() => allocator.free(block));
      return createGpuBufferFrom(gpu, block, U.STORAGE | U.COPY_SRC);
    }],
  ];
  for (const [name, run] of rows) {
    fill();
    const before = gpu.memoryStats();
    const ringBefore = ring.stats();
    // Before: the engine's TypeError (ring), "platform" wrapping it (createGpuBufferFrom), a chunk left made.
    assert.throws(() => run((what) => (onReclaim = what)), (error) => {
      assert.ok(error instanceof AllocationError, `${name}: ${error}`);
      assert.equal(error.category, "use-after-free", name);
      assert.match(error.message, /freed, moved or shrunk while a GPU buffer was created/, name);
      return true;
    });
    assert.equal(filler, null, `${name}: the reclaimer ran`);
    assert.equal(gpu.memoryStats().created, before.created, `${name}: nothing created`);
    assert.deepEqual(ring.stats(), ringBefore, `${name}: the ring as it was`);
    assert.equal(budget.usedBytes, 4096, `${name}: only the target is charged`);
  }
  // readGpuBuffer: the reclaimer destroys the buffer read, or frees the target, while the staging buffer is made.
  for (const what of ["the source", "the target"] as const) {
    const source = gpu.createBuffer({ size: 4096, usage: U.COPY_SRC, label: "source" });
    const into = allocator.alloc(4096).fill(9);
    fill();
    onReclaim = () => (what === "the source" ? gpu.destroyBuffer(source) : allocator.free(into));
    const created = gpu.memoryStats().created;
    // Before: WebGPU was called with a destroyed buffer ("platform ... has been destroyed").
    await assert.rejects(readGpuBuffer(gpu, source, into), error("use-after-free"), what);
    assert.equal(gpu.memoryStats().created, created, `${what}: no staging buffer`);
    if (what === "the target") gpu.destroyBuffer(source);
    else assert.equal(into[0], 9, "the target untouched");
  }
  const back = new Uint32Array(1024);
  await readGpuBuffer(gpu, target, back);
  assert.deepEqual([back[0], back[1023]], [7, 7], "no refused call wrote the target");
  ring.dispose();
  gpu.dispose();
});
