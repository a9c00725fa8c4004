// Only buffers a GpuContext created reach WebGPU, and their sizes, usages and
// labels come from memkit's own record (issue 17, adversarial pass findings
// 1-4): a look-alike object is a TypeError (in Bun it was a segfault), another
// device's buffer "mismatched-allocator", a destroyed one "use-after-free", a
// mapped one a TypeError, each before any native call; an own `size` on a real
// buffer changes nothing; one bad target never spoils a staging ring's frame.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { GpuBufferUsage as U, GpuContext, requestGpu } from "../../src/gpu/gpu_context.ts";
import { createGpuBufferFrom, readGpuBuffer, writeGpuBuffer } from "../../src/gpu/gpu_transfer.ts";
import { GpuStagingRing } from "../../src/gpu/gpu_staging_ring.ts";
import { GpuBufferPool } from "../../src/gpu/gpu_buffer_pool.ts";
import { GpuSuballocator } from "../../src/gpu/gpu_suballocator.ts";
import { runChild } from "../_helpers.ts";
import { context, skipGpu } from "./_gpu_context.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

test("look-alike buffers are refused before WebGPU sees them (child process)", { skip: skipGpu }, () => {
  const child = runChild(fixture("gpu_foreign_buffers.ts"));
  assert.equal(child.signal, null, child.stderr);
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split("\n");
  assert.equal(lines.at(-1), "END", child.stdout + child.stderr);
  const rows = lines.slice(0, -1).map((l) => JSON.parse(l));
  assert.equal(rows.length, 12);
  for (const row of rows) {
    assert.equal(row.outcome, "TypeError", row.name);
    assert.equal(row.created, 0, `${row.name}: no staging buffer created`);
    assert.equal(row.ring, 0, `${row.name}: no ring chunk created`);
  }
});

test("look-alike devices are refused by fromDevice; a device's own createBuffer is never called (child process)", {
  skip: skipGpu,
}, () => {
  // Before: fromDevice duck-typed its device, so a look-alike's "buffers" were registered as memkit's and
  // written through the real queue (in Bun a segfault, exit 139; in Deno "platform" or the engine's TypeError).
  const child = runChild(fileURLToPath(new URL("./_lookalike_device_child.ts", import.meta.url)));
  assert.equal(child.signal, null, child.stderr);
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split("\n");
  assert.equal(lines.at(-1), "END", child.stdout + child.stderr);
  const rows = lines.slice(0, -1).map((l) => JSON.parse(l));
  assert.equal(rows.length, 7);
  for (const row of rows.slice(0, -1)) assert.equal(row.outcome, "TypeError", row.name);
  assert.deepEqual(rows.at(-1), { name: "own createBuffer", called: 0, written: 64 });
});

test("another device's, destroyed and mapped buffers: refused, target untouched", { skip: skipGpu }, async () => {
  using gpu = context();
  using other = await requestGpu({ label: "other device" });
  const foreign = createGpuBufferFrom(other, new Uint32Array([1, 2, 3, 4]), U.COPY_SRC | U.COPY_DST);
  const destroyed = createGpuBufferFrom(gpu, new Uint32Array([1, 2, 3, 4]), U.COPY_SRC | U.COPY_DST);
  gpu.destroyBuffer(destroyed);
  const mapped = gpu.createBuffer({ size: 16, usage: U.COPY_SRC, mappedAtCreation: true });
  new Uint32Array(mapped.getMappedRange()).set([1, 2, 3, 4]);
  const cases: [string, GPUBuffer, object][] = [
    ["another device's", foreign, { name: "AllocationError", category: "mismatched-allocator" }],
    ["destroyed", destroyed, { name: "AllocationError", category: "use-after-free" }],
    ["mapped", mapped, { name: "TypeError", message: /unmapped/ }],
  ];
  for (const [name, buffer, expected] of cases) {
    const target = new Uint32Array(4).fill(7);
    const created = gpu.memoryStats().created;
    await assert.rejects(readGpuBuffer(gpu, buffer, target), expected, `read ${name}`);
    assert.deepEqual([...target], [7, 7, 7, 7], `read ${name}: target untouched`);
    assert.equal(gpu.memoryStats().created, created, `read ${name}: no staging buffer`);
    if (name !== "mapped") assert.throws(() => writeGpuBuffer(gpu, buffer, target), expected, `write ${name}`);
  }
  mapped.unmap();
  const back = new Uint32Array(4);
  assert.equal(await readGpuBuffer(gpu, mapped, back), 16); // unmapped: fine again
  assert.deepEqual([...back], [1, 2, 3, 4]);
});

test("a context over the same device may use the other's buffers", { skip: skipGpu }, async () => {
  using a = context("a");
  using b = GpuContext.fromDevice(a.device, { label: "b" });
  const buffer = createGpuBufferFrom(a, new Uint32Array([5, 6]), U.COPY_SRC | U.COPY_DST);
  const back = new Uint32Array(2);
  assert.equal(await readGpuBuffer(b, buffer, back), 8);
  assert.deepEqual([...back], [5, 6]);
});

test("an own `size` on a real buffer fakes no bounds check", { skip: skipGpu }, async () => {
  using gpu = context();
  using ring = new GpuStagingRing(gpu);
  const real = gpu.createBuffer({ size: 16, usage: U.COPY_DST | U.COPY_SRC, label: "small" });
  Object.defineProperty(real, "size", { value: 1 << 20 });
  Object.defineProperty(real, "usage", { value: 0x3ff });
  assert.throws(() => writeGpuBuffer(gpu, real, new Uint8Array(65536)), { name: "RangeError", message: /16 bytes/ });
  assert.throws(() => ring.upload(real, 0, new Uint8Array(65536)), { name: "RangeError", message: /16 bytes/ });
  const target = new Uint32Array(16384).fill(7);
  await assert.rejects(readGpuBuffer(gpu, real, target), { name: "RangeError", message: /16 bytes/ });
  assert.equal(target[0], 7);
  assert.equal(ring.stats().chunks, 0);
  // The usage comes from the record too: an own `usage` grants nothing.
  const vertexOnly = gpu.createBuffer({ size: 16, usage: U.VERTEX });
  Object.defineProperty(vertexOnly, "usage", { value: U.VERTEX | U.COPY_DST });
  assert.throws(() => writeGpuBuffer(gpu, vertexOnly, new Uint32Array(4)), { name: "TypeError", message: /COPY_DST/ });
});

test("staging ring: a bad target never drops the frame's other uploads", { skip: skipGpu }, async () => {
  using gpu = context();
  using other = await requestGpu({ label: "other device" });
  using ring = new GpuStagingRing(gpu);
  const good = gpu.createBuffer({ size: 16, usage: U.COPY_DST | U.COPY_SRC });
  const foreign = other.createBuffer({ size: 16, usage: U.COPY_DST });
  const doomed = gpu.createBuffer({ size: 16, usage: U.COPY_DST | U.COPY_SRC });
  const destroyed = gpu.createBuffer({ size: 16, usage: U.COPY_DST });
  gpu.destroyBuffer(destroyed);
  ring.upload(good, 0, new Uint32Array([1, 2, 3, 4]));
  const uploaded = ring.stats().uploadedBytes;
  assert.throws(() => ring.upload(foreign, 0, new Uint32Array(4)), { category: "mismatched-allocator" });
  assert.throws(() => ring.upload(destroyed, 0, new Uint32Array(4)), { category: "use-after-free" });
  assert.equal(ring.stats().uploadedBytes, uploaded, "refused uploads count nothing");
  // Destroyed after its upload, before the flush: left out, the rest still runs.
  ring.upload(doomed, 0, new Uint32Array([9, 9, 9, 9]));
  ring.upload(good, 8, new Uint32Array([30, 40]));
  gpu.destroyBuffer(doomed);
  ring.flush();
  const back = new Uint32Array(4);
  await readGpuBuffer(gpu, good, back);
  assert.deepEqual([...back], [1, 2, 30, 40]);
  assert.throws(() => writeGpuBuffer(gpu, foreign, new Uint32Array(4)), { category: "mismatched-allocator" });
});

test(
  "staging ring: a target mapped before the flush refuses the flush, then it goes through",
  { skip: skipGpu },
  async () => {
    using gpu = context();
    using ring = new GpuStagingRing(gpu);
    const target = gpu.createBuffer({ size: 16, usage: U.COPY_DST | U.MAP_READ });
    ring.upload(target, 0, new Uint32Array([1, 2, 3, 4]));
    await target.mapAsync(1);
    const flushes = ring.stats().flushes;
    assert.throws(() => ring.flush(), { name: "TypeError", message: /unmapped/ });
    assert.equal(ring.stats().flushes, flushes, "nothing changed");
    target.unmap();
    ring.flush();
    await target.mapAsync(1);
    assert.deepEqual([...new Uint32Array(target.getMappedRange())], [1, 2, 3, 4]);
    target.unmap();
  },
);

test("pool and suballocator: buffers destroyed by hand are never handed out again", { skip: skipGpu }, () => {
  using gpu = context();
  using pool = new GpuBufferPool(gpu);
  const usage = U.STORAGE | U.COPY_DST;
  const idle = pool.acquire(256, usage);
  pool.release(idle);
  gpu.destroyBuffer(idle); // behind the pool's back while idle
  const next = pool.acquire(256, usage);
  assert.notEqual(next, idle);
  assert.ok(gpu.owns(next));
  gpu.destroyBuffer(next); // while in use
  assert.throws(() => pool.release(next), { name: "AllocationError", category: "use-after-free" });
  // Before: "invalid-free ... is not a buffer it handed out", though the pool had handed it out.
  assert.throws(() => pool.release(next), { name: "AllocationError", category: "double-free", message: /dropped/ });
  assert.deepEqual([pool.stats().inUse, pool.stats().idle], [0, 0]);
  using sub = new GpuSuballocator(gpu, { usage, blockBytes: 4096 });
  const slice = sub.allocate(64);
  gpu.destroyBuffer(slice.buffer);
  const placed = sub.allocate(64);
  assert.notEqual(placed.buffer, slice.buffer);
  assert.ok(gpu.owns(placed.buffer));
  // The destroyed block went with its slices: freeing one says so (as the pool's release does).
  assert.throws(() => sub.free(slice), { name: "AllocationError", category: "use-after-free" });
  sub.free(placed);
});

test("pool and suballocator: release and free after dispose are use-after-free", { skip: skipGpu }, () => {
  using gpu = context();
  const pool = new GpuBufferPool(gpu);
  const buffer = pool.acquire(256, U.STORAGE);
  pool.dispose();
  assert.throws(() => pool.release(buffer), { name: "AllocationError", category: "use-after-free" });
  const sub = new GpuSuballocator(gpu, { usage: U.STORAGE });
  const slice = sub.allocate(64);
  sub.dispose();
  assert.throws(() => sub.free(slice), { name: "AllocationError", category: "use-after-free" });
});
