import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressOf,
  Arena,
  audioArray,
  DynamicArray,
  FreeListAllocator,
  SIMDArray,
  StackAllocator,
  struct,
  uniformArray,
  vertexArray,
} from "../../mod.ts";

const Vertex = struct({ position: "f32x3", color: "f32x4" });
const Uniforms = struct({ mvp: "f32x4x4", tint: "f32x4", time: "f32" });

test("vertexArray: storage aligned to 16 bytes, Vertex records of 32 bytes", () => {
  const heap = new FreeListAllocator({ capacity: 1 << 20 });
  heap.alloc(3); // so the next block would not be 16-aligned by accident of an empty heap
  using vertices = vertexArray<{ position: number[]; color: number[] }>(Vertex, { allocator: heap, capacity: 1 });
  for (let i = 0; i < 100; i++) vertices.push({ position: [i, i, i], color: [1, 0, 0, 1] });
  assert.equal(addressOf(vertices.bytes) % 16, 0);
  assert.equal(vertices.stride, 32);
  assert.deepEqual(vertices.get(99), { position: [99, 99, 99], color: [1, 0, 0, 1] });
  using wider = vertexArray(Vertex, { alignment: 64 });
  assert.equal(addressOf(wider.bytes) % 64, 0);
  assert.throws(() => vertexArray(null as never), TypeError);
  assert.throws(() => vertexArray(Vertex, { alignment: 24 }), RangeError);
  assert.throws(() => vertexArray(Vertex, { alignment: "16" as never }), TypeError);
});

test("uniformArray: one 256-byte slot per element, each bindable by offset", () => {
  using uniforms = uniformArray<{ mvp: number[]; tint: number[]; time: number }>(Uniforms);
  assert.equal(uniforms.stride, 256);
  for (let i = 0; i < 5; i++) uniforms.push({ mvp: new Array(16).fill(i), tint: [i, i, i, 1], time: i / 2 });
  assert.equal(addressOf(uniforms.bytes) % 256, 0);
  const floats = uniforms.view(Float32Array);
  for (let i = 0; i < 5; i++) {
    assert.equal(floats[i * 64], i, "mvp[0] at the start of slot i");
    assert.equal(floats[i * 64 + 16], i, "tint at byte 64 of slot i");
    assert.equal(floats[i * 64 + 20], i / 2, "time at byte 80 of slot i");
  }
  assert.deepEqual(uniforms.get(3), { mvp: new Array(16).fill(3), tint: [3, 3, 3, 1], time: 1.5 });
  const Big = struct({ a: "f32x4x4", b: "f32x4x4", c: "f32x4x4", d: "f32x4x4", e: "f32" });
  using big = uniformArray(Big);
  assert.equal(big.stride, 512, "a 260-byte record takes two slots");
  assert.throws(() => uniformArray("f32" as never), TypeError);
});

test("audioArray: f32 samples with the SIMD kernels", () => {
  const samples = audioArray({ capacity: 8 });
  samples.pushMany(new Float32Array([0.5, -0.5, 0.25, 1]));
  samples.scale(0.5);
  assert.deepEqual([...samples], [0.25, -0.25, 0.125, 0.5]);
  assert.equal(samples.sum(), 0.625);
  assert.equal(addressOf(samples.bytes) % 16, 0);
  samples.free();
});

test("factories check values strictly, and pass `wrap` on", () => {
  const Colored = struct({ position: "f32x3", rgba: "u32" });
  using strict = vertexArray<{ position: number[]; rgba: number }>(Colored);
  assert.throws(() => strict.push({ position: [0, 0, 0], rgba: -1 }), RangeError);
  assert.throws(() => strict.push({ position: [0, 0, 0], rgba: 1, alpha: 1 } as never), TypeError);
  using wrapping = vertexArray<{ position: number[]; rgba: number }>(Colored, { wrap: true });
  wrapping.push({ position: [0, 0, 0], rgba: -1 });
  assert.equal(wrapping.get(0).rgba, 0xffffffff);
  using uniforms = uniformArray<{ rgba: number }>(struct({ rgba: "u32" }), { wrap: true });
  uniforms.push({ rgba: 2 ** 32 + 7 });
  assert.equal(uniforms.get(0).rgba, 7);
  const samples = audioArray();
  assert.throws(() => samples.push("0.5" as never), TypeError);
  samples.pushMany([Infinity, NaN]);
  assert.equal(samples.length, 2);
  samples.free();
});

test("vertexArray and uniformArray check `alignment` as DynamicArray does, before raising it", () => {
  const allocations = () => heap.stats().liveAllocations;
  const heap = new FreeListAllocator({ capacity: 1 << 16 });
  for (const alignment of [3, 1.5, -8, 0, 7, 8192, NaN, Infinity]) {
    for (const make of [vertexArray, uniformArray]) {
      assert.throws(
        () => make(Vertex, { allocator: heap, alignment }),
        (e: unknown) => e instanceof RangeError && /'alignment' must be a power of two from 1 to 4096/.test(e.message),
        `${make.name} alignment ${alignment}`,
      );
    }
    assert.throws(() => new DynamicArray(Vertex, { allocator: heap, alignment }), RangeError);
  }
  assert.throws(() => uniformArray(Uniforms, { alignment: "256" as never }), TypeError);
  assert.equal(allocations(), 0, "nothing allocated");
  // Legal ones below the minimum are raised to it.
  using small = vertexArray(Vertex, { alignment: 1 });
  assert.equal(addressOf(small.bytes) % 16, 0);
  using slots = uniformArray(Uniforms, { alignment: 4 });
  assert.equal(addressOf(slots.bytes) % 256, 0);
});

test("a legal alignment below 8 (1, 2, 4) works with any allocator: the storage is asked for at 8 at least", () => {
  for (const alignment of [1, 2, 4]) {
    const arena = new Arena();
    arena.alloc(3, 1); // the arena's next free byte is at offset 3
    const bytes = new DynamicArray<number>("u8", { allocator: arena, alignment, capacity: 1 });
    for (let i = 0; i < 100; i++) bytes.push(i); // grows through resize
    arena.alloc(1, 1);
    const copy = bytes.snapshot();
    bytes.set(0, 7); // copy on write: a new block
    assert.equal(copy.get(0), 0);
    assert.equal(bytes.get(0), 7);
    assert.equal(addressOf(bytes.bytes) % 8, 0);
    arena.alloc(5, 1);
    const floats = new SIMDArray("f32", { allocator: arena, alignment });
    floats.pushMany([1, 2, 3]);
    assert.equal(floats.sum(), 6);
    arena.dispose();
  }
  const stack = new StackAllocator({ capacity: 4096 });
  stack.alloc(5, 1);
  const onStack = new DynamicArray<number>("u8", { allocator: stack, alignment: 1 });
  onStack.push(1);
  assert.equal(onStack.get(0), 1);
  onStack.free();
});
