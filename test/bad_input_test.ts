// Every bad input and misuse of the public API as a table row: each gets its
// documented error, makes no native call, and leaves memkit usable.
import assert from "node:assert/strict";
import { test } from "node:test";
import { spyOnNativeCalls } from "./_native_hooks.ts";
import {
  addressOf,
  Arena,
  audioArray,
  BuddyAllocator,
  cFree,
  cRealloc,
  DebugAllocator,
  DynamicArray,
  FailingAllocator,
  FreeListAllocator,
  type Handle,
  initAllocator,
  malloc,
  mapFile,
  mapPages,
  onGC,
  PoolAllocator,
  SharedDynamicArray,
  simd,
  SIMDArray,
  StackAllocator,
  struct,
  SystemAllocator,
  uniformArray,
  vertexArray,
} from "../mod.ts";
import type { Mapping } from "../mod.ts";
import { type Expected, matches } from "./_bad_input.ts";

interface Context {
  allocator: SystemAllocator;
  other: SystemAllocator;
  block: Uint8Array;
  freed: Uint8Array;
  unmapped: Mapping;
  arena: Arena;
  otherArena: Arena;
  arenaBlock: Uint8Array;
  /** A view from a scope that has ended (detached: safety is on by default). */
  released: Uint8Array;
  stack: StackAllocator;
  stackBottom: Uint8Array;
  stackTop: Uint8Array;
  stackFreed: Uint8Array;
  disposedStack: StackAllocator;
  pool: PoolAllocator;
  otherPool: PoolAllocator;
  poolBlock: Uint8Array;
  poolFreed: Uint8Array;
  fullPool: PoolAllocator;
  buddy: BuddyAllocator;
  buddyBlock: Uint8Array;
  buddyFreed: Uint8Array;
  heap: FreeListAllocator;
  heapBlock: Uint8Array;
  heapFreed: Uint8Array;
  handle: Handle;
  freedHandle: Handle;
  disposedHeap: FreeListAllocator;
  allocDuringDefrag: () => void;
  busyHeap: FreeListAllocator;
}

interface Row {
  name: string;
  /** Setup that may call native code (runs before the spy starts); its result is `act`'s second argument. */
  arrange?: () => unknown;
  // deno-lint-ignore no-explicit-any
  act: (c: Context, arranged: any) => unknown;
  expect: Expected;
}

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const ROWS: Row[] = [
  { name: "alloc(-1)", act: (c) => c.allocator.alloc(-1), expect: RangeError },
  { name: "alloc(NaN)", act: (c) => c.allocator.alloc(NaN), expect: RangeError },
  { name: "alloc(1.5)", act: (c) => c.allocator.alloc(1.5), expect: RangeError },
  { name: "alloc(2**53)", act: (c) => c.allocator.alloc(2 ** 53), expect: RangeError },
  { name: "alloc(Infinity)", act: (c) => c.allocator.alloc(Infinity), expect: RangeError },
  { name: "alloc('64')", act: (c) => c.allocator.alloc(any("64")), expect: TypeError },
  { name: "alloc(64n)", act: (c) => c.allocator.alloc(any(64n)), expect: TypeError },
  { name: "alloc(undefined)", act: (c) => c.allocator.alloc(any(undefined)), expect: TypeError },
  { name: "alloc(64, 0)", act: (c) => c.allocator.alloc(64, 0), expect: RangeError },
  { name: "alloc(64, 3)", act: (c) => c.allocator.alloc(64, 3), expect: RangeError },
  { name: "alloc(64, 2**40)", act: (c) => c.allocator.alloc(64, 2 ** 40), expect: RangeError },
  { name: "alloc(64, 2 * pageSize)", act: (c) => c.allocator.alloc(64, 8192), expect: RangeError },
  { name: "alloc(64, -16)", act: (c) => c.allocator.alloc(64, -16), expect: RangeError },
  { name: "alloc(64, '16')", act: (c) => c.allocator.alloc(64, any("16")), expect: TypeError },
  {
    name: "tryAlloc(-1) (input errors are not null results)",
    act: (c) => c.allocator.tryAlloc(-1),
    expect: RangeError,
  },
  { name: "array(Array, 4)", act: (c) => c.allocator.array(any(Array), 4), expect: TypeError },
  { name: "array(Float64Array, -1)", act: (c) => c.allocator.array(Float64Array, -1), expect: RangeError },
  {
    name: "array(Float64Array, 2**45) (2^48 bytes)",
    act: (c) => c.allocator.array(Float64Array, 2 ** 45),
    expect: RangeError,
  },
  { name: "free(null)", act: (c) => c.allocator.free(any(null)), expect: TypeError },
  { name: "free({})", act: (c) => c.allocator.free(any({})), expect: TypeError },
  { name: "free(ArrayBuffer)", act: (c) => c.allocator.free(any(new ArrayBuffer(8))), expect: TypeError },
  { name: "free of a foreign view", act: (c) => c.allocator.free(new Uint8Array(64)), expect: "invalid-free" },
  { name: "free of an interior view", act: (c) => c.allocator.free(c.block.subarray(8)), expect: "invalid-free" },
  { name: "free twice", act: (c) => c.allocator.free(c.freed), expect: "double-free" },
  { name: "free into another allocator", act: (c) => c.other.free(c.block), expect: "mismatched-allocator" },
  { name: "resize of a freed view", act: (c) => c.allocator.resize(c.freed, 128), expect: "use-after-free" },
  {
    name: "resize of an interior view",
    act: (c) => c.allocator.resize(c.block.subarray(1), 128),
    expect: "invalid-free",
  },
  { name: "resize to -5", act: (c) => c.allocator.resize(c.block, -5), expect: RangeError },
  { name: "resize to 'big'", act: (c) => c.allocator.resize(c.block, any("big")), expect: TypeError },
  { name: "owns('x')", act: (c) => c.allocator.owns(any("x")), expect: TypeError },
  {
    name: "new SystemAllocator({ mmapThreshold: -1 })",
    act: () => new SystemAllocator({ mmapThreshold: -1 }),
    expect: RangeError,
  },
  {
    name: "new SystemAllocator({ retainBytes: -1 })",
    act: () => new SystemAllocator({ retainBytes: -1 }),
    expect: RangeError,
  },
  {
    name: "new SystemAllocator({ retainBytes: 1.5 })",
    act: () => new SystemAllocator({ retainBytes: 1.5 }),
    expect: RangeError,
  },
  {
    name: "new SystemAllocator({ retainBytes: '64' })",
    act: () => new SystemAllocator({ retainBytes: any("64") }),
    expect: TypeError,
  },
  {
    name: "new SystemAllocator({ zero: 'yes' })",
    act: () => new SystemAllocator({ zero: any("yes") }),
    expect: TypeError,
  },
  {
    name: "new SystemAllocator({ unknown: 1 })",
    act: () => new SystemAllocator(any({ unknown: 1 })),
    expect: TypeError,
  },
  { name: "new SystemAllocator('fast')", act: () => new SystemAllocator(any("fast")), expect: TypeError },
  { name: "mapPages(0)", act: () => mapPages(0), expect: RangeError },
  { name: "mapPages(-4096)", act: () => mapPages(-4096), expect: RangeError },
  { name: "mapPages(2**53)", act: () => mapPages(2 ** 53), expect: RangeError },
  { name: "mapPages('4096')", act: () => mapPages(any("4096")), expect: TypeError },
  {
    name: "mapPages(4096, { protection: 'rwx' })",
    act: () => mapPages(4096, { protection: any("rwx") }),
    expect: TypeError,
  },
  { name: "mapPages(4096, { populate: 1 })", act: () => mapPages(4096, { populate: any(1) }), expect: TypeError },
  { name: "protect after unmap", act: (c) => c.unmapped.protect("read"), expect: "use-after-free" },
  { name: "advise after unmap", act: (c) => c.unmapped.advise("normal"), expect: "use-after-free" },
  { name: "lock after unmap", act: (c) => c.unmapped.lock(), expect: "use-after-free" },
  { name: "protect('rw')", act: (c) => c.unmapped.protect(any("rw")), expect: TypeError },
  { name: "advise('yolo')", act: (c) => c.unmapped.advise(any("yolo")), expect: TypeError },
  { name: "mapFile(42)", act: () => mapFile(any(42)), expect: TypeError },
  { name: "mapFile('')", act: () => mapFile(""), expect: TypeError },
  { name: "mapFile of a missing file", act: () => mapFile("/nonexistent/memkit/file"), expect: "platform" },
  { name: "mapFile of a directory", act: () => mapFile("/tmp"), expect: TypeError },
  {
    name: "mapFile(path, { write: 'yes' })",
    act: () => mapFile("/etc/hostname", { write: any("yes") }),
    expect: TypeError,
  },
  {
    name: "simd.copy into a smaller dst",
    act: () => simd.copy(new Uint8Array(4), new Uint8Array(5)),
    expect: RangeError,
  },
  { name: "simd.copy from an array", act: () => simd.copy(new Uint8Array(4), any([1, 2])), expect: TypeError },
  { name: "simd.fill(x, 256)", act: () => simd.fill(new Uint8Array(4), 256), expect: RangeError },
  { name: "simd.fill(x, 'a')", act: () => simd.fill(new Uint8Array(4), any("a")), expect: TypeError },
  { name: "simd.compare(array, x)", act: () => simd.compare(any([1, 2]), new Uint8Array(2)), expect: TypeError },
  { name: "simd.equals(x, null)", act: () => simd.equals(new Uint8Array(2), any(null)), expect: TypeError },
  { name: "addressOf(42)", act: () => addressOf(any(42)), expect: TypeError },
  // Arena
  { name: "arena.alloc(-1)", act: (c) => c.arena.alloc(-1), expect: RangeError },
  { name: "arena.alloc('8')", act: (c) => c.arena.alloc(any("8")), expect: TypeError },
  { name: "arena.alloc(8, 3)", act: (c) => c.arena.alloc(8, 3), expect: RangeError },
  { name: "arena.alloc(8, 2**40)", act: (c) => c.arena.alloc(8, 2 ** 40), expect: RangeError },
  { name: "arena.array(Array, 4)", act: (c) => c.arena.array(any(Array), 4), expect: TypeError },
  { name: "arena.array(Float64Array, 1.5)", act: (c) => c.arena.array(Float64Array, 1.5), expect: RangeError },
  { name: "arena.free(ArrayBuffer)", act: (c) => c.arena.free(any(new ArrayBuffer(8))), expect: TypeError },
  { name: "arena.free of a foreign view", act: (c) => c.arena.free(new Uint8Array(8)), expect: "invalid-free" },
  { name: "arena.free of a SystemAllocator block", act: (c) => c.arena.free(c.block), expect: "mismatched-allocator" },
  {
    name: "arena.free into another arena",
    act: (c) => c.otherArena.free(c.arenaBlock),
    expect: "mismatched-allocator",
  },
  { name: "system.free of an arena block", act: (c) => c.allocator.free(c.arenaBlock), expect: "mismatched-allocator" },
  // A callback would never run and the scope would stay open: refused before one opens.
  { name: "arena.scope(callback)", act: (c) => any(c.arena).scope(() => {}), expect: TypeError },
  { name: "arena.free after its scope ended", act: (c) => c.arena.free(c.released), expect: "double-free" },
  { name: "arena.resize after its scope ended", act: (c) => c.arena.resize(c.released, 8), expect: "use-after-free" },
  { name: "arena.resize to NaN", act: (c) => c.arena.resize(c.arenaBlock, NaN), expect: RangeError },
  { name: "arena.clone(42)", act: (c) => c.arena.clone(any(42)), expect: TypeError },
  { name: "arena.reset('all')", act: (c) => c.arena.reset(any("all")), expect: TypeError },
  { name: "arena.reset({ retainLimit: -1 })", act: (c) => c.arena.reset({ retainLimit: -1 }), expect: RangeError },
  { name: "arena.observe(null)", act: (c) => c.arena.observe(any(null)), expect: TypeError },
  { name: "new Arena({ capacity: 0 })", act: () => new Arena({ capacity: 0 }), expect: RangeError },
  { name: "new Arena({ capacity: '1 MiB' })", act: () => new Arena({ capacity: any("1 MiB") }), expect: TypeError },
  { name: "new Arena({ growth: 'huge' })", act: () => new Arena({ growth: any("huge") }), expect: TypeError },
  { name: "new Arena({ alignment: 3 })", act: () => new Arena({ alignment: 3 }), expect: RangeError },
  { name: "new Arena({ alignment: 'word' })", act: () => new Arena({ alignment: any("word") }), expect: TypeError },
  { name: "new Arena({ backing: {} })", act: () => new Arena({ backing: any({}) }), expect: TypeError },
  {
    name: "new Arena({ capacity > maxCapacity })",
    act: () => new Arena({ capacity: 1 << 20, maxCapacity: 4096 }),
    expect: RangeError,
  },
  { name: "new Arena({ safety: 1 })", act: () => new Arena({ safety: any(1) }), expect: TypeError },
  // StackAllocator
  { name: "new StackAllocator()", act: () => new StackAllocator(any(undefined)), expect: TypeError },
  { name: "new StackAllocator({ capacity: -1 })", act: () => new StackAllocator({ capacity: -1 }), expect: RangeError },
  { name: "stack.alloc(1.5)", act: (c) => c.stack.alloc(1.5), expect: RangeError },
  { name: "stack.alloc(8, 6)", act: (c) => c.stack.alloc(8, 6), expect: RangeError },
  { name: "stack.free out of order", act: (c) => c.stack.free(c.stackBottom), expect: "invalid-free" },
  { name: "stack.free of an interior view", act: (c) => c.stack.free(c.stackTop.subarray(4)), expect: "invalid-free" },
  { name: "stack.free of a freed block", act: (c) => c.stack.free(c.stackFreed), expect: "double-free" },
  { name: "stack.free of an arena block", act: (c) => c.stack.free(c.arenaBlock), expect: "mismatched-allocator" },
  { name: "stack.free of a foreign view", act: (c) => c.stack.free(new Uint8Array(4)), expect: "invalid-free" },
  { name: "stack.rewind({ depth: 0 })", act: (c) => c.stack.rewind(any({ depth: 0 })), expect: TypeError },
  { name: "stack.resize below the top", act: (c) => c.stack.resize(c.stackBottom, 4), expect: "unsupported" },
  { name: "stack.alloc after dispose", act: (c) => c.disposedStack.alloc(8), expect: "use-after-free" },
  // PoolAllocator
  { name: "new PoolAllocator({})", act: () => new PoolAllocator(any({})), expect: TypeError },
  { name: "new PoolAllocator({ blockSize: 0 })", act: () => new PoolAllocator({ blockSize: 0 }), expect: RangeError },
  {
    name: "new PoolAllocator({ align: 48 })",
    act: () => new PoolAllocator({ blockSize: 8, align: 48 }),
    expect: RangeError,
  },
  {
    name: "new PoolAllocator({ maxBlocks: 'many' })",
    act: () => new PoolAllocator({ blockSize: 8, maxBlocks: any("many") }),
    expect: TypeError,
  },
  { name: "pool.alloc(blockSize + 1)", act: (c) => c.pool.alloc(65), expect: RangeError },
  { name: "pool.alloc(8, 128) above the pool's alignment", act: (c) => c.pool.alloc(8, 128), expect: RangeError },
  { name: "pool.alloc(NaN)", act: (c) => c.pool.alloc(NaN), expect: RangeError },
  { name: "pool.free twice", act: (c) => c.pool.free(c.poolFreed), expect: "double-free" },
  { name: "pool.free of an interior view", act: (c) => c.pool.free(c.poolBlock.subarray(1)), expect: "invalid-free" },
  { name: "pool.free into another pool", act: (c) => c.otherPool.free(c.poolBlock), expect: "mismatched-allocator" },
  { name: "pool.resize beyond blockSize", act: (c) => c.pool.resize(c.poolBlock, 65), expect: RangeError },
  { name: "pool.resize of a freed block", act: (c) => c.pool.resize(c.poolFreed, 8), expect: "use-after-free" },
  { name: "pool at maxBlocks", act: (c) => c.fullPool.alloc(8), expect: "limit-exceeded" },
  // BuddyAllocator
  { name: "new BuddyAllocator({ capacity: 0 })", act: () => new BuddyAllocator({ capacity: 0 }), expect: RangeError },
  {
    name: "new BuddyAllocator({ minBlockSize: 24 })",
    act: () => new BuddyAllocator({ capacity: 4096, minBlockSize: 24 }),
    expect: RangeError,
  },
  {
    name: "new BuddyAllocator({ minBlockSize: 8 })",
    act: () => new BuddyAllocator({ capacity: 4096, minBlockSize: 8 }),
    expect: RangeError,
  },
  {
    name: "new BuddyAllocator with 2^30 leaves",
    act: () => new BuddyAllocator({ capacity: 2 ** 34 }),
    expect: RangeError,
  },
  { name: "buddy.alloc(capacity + 1)", act: (c) => c.buddy.alloc(65537), expect: RangeError },
  { name: "buddy.free twice", act: (c) => c.buddy.free(c.buddyFreed), expect: "double-free" },
  {
    name: "buddy.free of an interior view",
    act: (c) => c.buddy.free(c.buddyBlock.subarray(16)),
    expect: "invalid-free",
  },
  { name: "buddy.free of a pool block", act: (c) => c.buddy.free(c.poolBlock), expect: "mismatched-allocator" },
  { name: "buddy.resize of a freed block", act: (c) => c.buddy.resize(c.buddyFreed, 8), expect: "use-after-free" },
  // FreeListAllocator and handles
  {
    name: "new FreeListAllocator({ growth: 'double' })",
    act: () => new FreeListAllocator({ growth: any("double") }),
    expect: TypeError,
  },
  {
    name: "new FreeListAllocator({ capacity: -5 })",
    act: () => new FreeListAllocator({ capacity: -5 }),
    expect: RangeError,
  },
  { name: "heap.alloc(8, 5)", act: (c) => c.heap.alloc(8, 5), expect: RangeError },
  { name: "heap.free twice", act: (c) => c.heap.free(c.heapFreed), expect: "double-free" },
  { name: "heap.free of an interior view", act: (c) => c.heap.free(c.heapBlock.subarray(16)), expect: "invalid-free" },
  { name: "heap.free of a handle's view", act: (c) => c.heap.free(c.handle.bytes), expect: "invalid-free" },
  { name: "heap.free of a stack block", act: (c) => c.heap.free(c.stackTop), expect: "mismatched-allocator" },
  { name: "heap.resize of a freed block", act: (c) => c.heap.resize(c.heapFreed, 8), expect: "use-after-free" },
  { name: "heap.handle(0)", act: (c) => c.heap.handle(0), expect: RangeError },
  { name: "heap.handle('8')", act: (c) => c.heap.handle(any("8")), expect: TypeError },
  { name: "handle.free twice", act: (c) => c.freedHandle.free(), expect: "double-free" },
  { name: "handle.bytes after free", act: (c) => c.freedHandle.bytes, expect: "use-after-free" },
  { name: "handle.unpin without pin", act: (c) => c.handle.unpin(), expect: RangeError },
  { name: "heap.defragment(42)", act: (c) => c.heap.defragment(any(42)), expect: TypeError },
  { name: "heap.alloc during defragment", act: (c) => c.allocDuringDefrag(), expect: "unsupported" },
  { name: "heap.alloc after dispose", act: (c) => c.disposedHeap.alloc(8), expect: "use-after-free" },
  // DebugAllocator, global allocator, testing helpers, GC hooks
  { name: "new DebugAllocator({})", act: () => new DebugAllocator(any({})), expect: TypeError },
  {
    name: "new DebugAllocator(undefined, { stackTraceFrames: -1 })",
    act: () => new DebugAllocator(undefined, { stackTraceFrames: -1 }),
    expect: RangeError,
  },
  {
    name: "new DebugAllocator(undefined, { poison: 'yes' })",
    act: () => new DebugAllocator(undefined, { poison: any("yes") }),
    expect: TypeError,
  },
  {
    name: "initAllocator({ leakCheckAtExit: 'loud' })",
    act: () => initAllocator({ leakCheckAtExit: any("loud") }),
    expect: TypeError,
  },
  { name: "malloc(1.5)", act: () => malloc(1.5), expect: RangeError },
  { name: "cFree(-8, 8)", act: () => cFree(-8, 8), expect: RangeError },
  { name: "cRealloc('a', 1, 2)", act: () => cRealloc(any("a"), 1, 2), expect: TypeError },
  {
    name: "new FailingAllocator(null, { failAfter: 1 })",
    act: () => new FailingAllocator(any(null), { failAfter: 1 }),
    expect: TypeError,
  },
  {
    name: "new FailingAllocator(system, { failAfter: 0.5 })",
    act: (c) => new FailingAllocator(c.allocator, { failAfter: 0.5 }),
    expect: RangeError,
  },
  { name: "onGC(42)", act: () => onGC(any(42)), expect: TypeError },
  {
    name: "new Arena({ backing: Proxy(SystemAllocator) }) (a Proxy cannot reach the allocator's private state)",
    act: () => new Arena({ backing: new Proxy(new SystemAllocator(), {}) }),
    expect: TypeError,
  },
  { name: "mapFile(an http: URL)", act: () => mapFile(new URL("http://example.com/x")), expect: TypeError },
  {
    name: "new BuddyAllocator({ capacity: 1024, minBlockSize: 4096 })",
    act: () => new BuddyAllocator({ capacity: 1024, minBlockSize: 4096 }),
    expect: RangeError,
  },
  { name: "struct({})", act: () => struct({}), expect: TypeError },
  { name: "struct({ x: 'f8' })", act: () => struct({ x: any("f8") }), expect: TypeError },
  { name: "struct({ 'x y': 'u8' })", act: () => struct({ "x y": "u8" }), expect: TypeError },
  { name: "struct({ __proto__: 'u8' })", act: () => struct(JSON.parse('{"__proto__": "u8"}')), expect: TypeError },
  { name: "struct({ x: 'u8' }, { align: 3 })", act: () => struct({ x: "u8" }, { align: 3 }), expect: RangeError },
  { name: "new DynamicArray('f8')", act: () => new DynamicArray(any("f8")), expect: TypeError },
  {
    name: "new DynamicArray('f32', { growth: 1 })",
    act: () => new DynamicArray("f32", { growth: 1 }),
    expect: RangeError,
  },
  {
    name: "DynamicArray push of a 2-float position into an f32x3 field",
    arrange: () => new DynamicArray(struct({ position: "f32x3" })),
    act: (_, points) => points.push({ position: [1, 2] }),
    expect: RangeError,
  },
  {
    name: "DynamicArray get(1) of a 1-element array",
    arrange: () => {
      const values = new DynamicArray<number>("f32");
      values.push(1);
      return values;
    },
    act: (_, values) => values.get(1),
    expect: RangeError,
  },
  {
    name: "DynamicArray push after free()",
    arrange: () => {
      const values = new DynamicArray<number>("f32");
      values.free();
      return values;
    },
    act: (_, values) => values.push(1),
    expect: "use-after-free",
  },
  { name: "vertexArray(null)", act: () => vertexArray(any(null)), expect: TypeError },
  { name: "vertexArray('f32')", act: () => vertexArray(any("f32")), expect: TypeError },
  {
    name: "vertexArray(Vertex, { alignment: 24 })",
    act: () => vertexArray(struct({ position: "f32x3" }), { alignment: 24 }),
    expect: RangeError,
  },
  { name: "audioArray({ growth: 0 })", act: () => audioArray({ growth: 0 }), expect: RangeError },
  { name: "audioArray({ capacity: '8' })", act: () => audioArray({ capacity: any("8") }), expect: TypeError },
  { name: "uniformArray(42)", act: () => uniformArray(any(42)), expect: TypeError },
  {
    name: "uniformArray(Uniforms, { capacity: -1 })",
    act: () => uniformArray(struct({ tint: "f32x4" }), { capacity: -1 }),
    expect: RangeError,
  },
  { name: "new SIMDArray('f64')", act: () => new SIMDArray(any("f64")), expect: TypeError },
  {
    name: "SIMDArray add of a shorter array",
    arrange: () => {
      const a = new SIMDArray("f32x3");
      a.push([1, 2, 3]);
      return [a, new SIMDArray("f32x3")];
    },
    act: (_, [a, b]) => a.add(b),
    expect: RangeError,
  },
  {
    name: "SIMDArray scale('2')",
    arrange: () => new SIMDArray("f32"),
    act: (_, a) => a.scale("2"),
    expect: TypeError,
  },
  {
    name: "new SharedDynamicArray('f32') without maxCapacity",
    act: () => new SharedDynamicArray("f32", any(undefined)),
    expect: TypeError,
  },
  {
    name: "new SharedDynamicArray('f32', { maxCapacity: 0 })",
    act: () => new SharedDynamicArray("f32", { maxCapacity: 0 }),
    expect: RangeError,
  },
  {
    name: "new SharedDynamicArray('f32', { maxCapacity: 4, capacity: 8 })",
    act: () => new SharedDynamicArray("f32", { maxCapacity: 4, capacity: 8 }),
    expect: RangeError,
  },
  {
    name: "SharedDynamicArray.attach(an ArrayBuffer)",
    act: () => SharedDynamicArray.attach(any(new ArrayBuffer(32)), "f32"),
    expect: TypeError,
  },
  {
    name: "SharedDynamicArray.attach(buffer, 'f32', null)",
    arrange: () => new SharedDynamicArray<number>("f32", { maxCapacity: 1 }).buffer,
    act: (_, buffer) => SharedDynamicArray.attach(buffer, "f32", any(null)),
    expect: TypeError,
  },
  {
    name: "SharedDynamicArray.attach(buffer, 'f32', { timeoutMs: -5 })",
    arrange: () => new SharedDynamicArray<number>("f32", { maxCapacity: 1 }).buffer,
    act: (_, buffer) => SharedDynamicArray.attach(buffer, "f32", { timeoutMs: -5 }),
    expect: RangeError,
  },
  {
    name: "SharedDynamicArray push past maxCapacity",
    act: () => {
      const one = new SharedDynamicArray<number>("f32", { maxCapacity: 1 });
      one.push(1);
      one.push(2);
    },
    expect: RangeError,
  },
  {
    name: "SharedDynamicArray get(-1)",
    act: () => new SharedDynamicArray<number>("f32", { maxCapacity: 1 }).get(-1),
    expect: RangeError,
  },
];

function freshContext(): Context {
  const allocator = new SystemAllocator();
  const freed = allocator.alloc(64);
  allocator.free(freed);
  const unmapped = mapPages(4096);
  unmapped.unmap();
  const arena = new Arena({ capacity: 1 << 16 });
  const arenaBlock = arena.alloc(64);
  const scope = arena.scope();
  const released = arena.alloc(32);
  scope.end();
  return {
    allocator,
    other: new SystemAllocator(),
    block: allocator.alloc(64),
    freed,
    unmapped,
    arena,
    otherArena: new Arena({ capacity: 4096 }),
    arenaBlock,
    released,
    ...stackContext(),
    ...poolContext(),
    ...buddyContext(),
    ...heapContext(),
  };
}

function buddyContext() {
  const buddy = new BuddyAllocator({ capacity: 65536 });
  const buddyBlock = buddy.alloc(64);
  const buddyFreed = buddy.alloc(64);
  buddy.free(buddyFreed);
  return { buddy, buddyBlock, buddyFreed };
}

function heapContext() {
  const heap = new FreeListAllocator({ capacity: 65536 });
  const heapBlock = heap.alloc(64);
  const heapFreed = heap.alloc(64);
  const handle = heap.handle(32);
  heap.free(heapFreed);
  const freedHandle = heap.handle(16);
  freedHandle.free();
  const disposedHeap = new FreeListAllocator({ capacity: 4096 });
  disposedHeap.dispose();
  // A second heap where a handle sits after a hole, so defragment() calls back and the callback allocates.
  const busy = new FreeListAllocator({ capacity: 4096 });
  const hole = busy.handle(16);
  busy.handle(16);
  hole.free();
  const allocDuringDefrag = () => {
    busy.defragment(() => busy.alloc(8));
  };
  return { heap, heapBlock, heapFreed, handle, freedHandle, disposedHeap, allocDuringDefrag, busyHeap: busy };
}

function stackContext() {
  const stack = new StackAllocator({ capacity: 4096 });
  const stackBottom = stack.alloc(16);
  const stackTop = stack.alloc(16);
  const scratch = stack.alloc(16);
  stack.free(scratch);
  const disposedStack = new StackAllocator({ capacity: 4096 });
  disposedStack.dispose();
  return { stack, stackBottom, stackTop, stackFreed: scratch, disposedStack };
}

function poolContext() {
  const pool = new PoolAllocator({ blockSize: 64, align: 64 });
  const poolBlock = pool.alloc(64);
  const poolFreed = pool.alloc(64);
  pool.free(poolFreed);
  const fullPool = new PoolAllocator({ blockSize: 8, maxBlocks: 1 });
  fullPool.alloc(8);
  return { pool, otherPool: new PoolAllocator({ blockSize: 64 }), poolBlock, poolFreed, fullPool };
}

test("the bad-input table has at least 25 rows", () => {
  assert.ok(ROWS.length >= 25);
});

for (const row of ROWS) {
  const label = typeof row.expect === "string" ? `AllocationError("${row.expect}")` : row.expect.name;
  test(`bad input: ${row.name} throws ${label}, makes no native call, and memkit keeps working`, () => {
    const context = freshContext();
    context.block.fill(9);
    const arranged = row.arrange?.();
    const spy = spyOnNativeCalls();
    let thrown: unknown = null;
    try {
      row.act(context, arranged);
    } catch (error) {
      thrown = error;
    } finally {
      spy.restore();
    }
    assert.ok(thrown !== null, `${row.name} did not throw`);
    assert.ok(matches(thrown, row.expect), `${row.name} threw ${thrown}`);
    assert.ok((thrown as Error).message.length > 20, "the message explains");
    assert.deepEqual(spy.calls, [], `${row.name} made native calls`);
    // Still usable: the block survived and new blocks work.
    assert.equal(context.block[63], 9);
    const again = context.allocator.alloc(128, 64);
    again.fill(1);
    context.allocator.free(again);
    context.allocator.free(context.block);
    assert.equal(context.allocator.stats().liveAllocations, 0);
    assert.equal(context.arenaBlock.length, 64);
    context.arena.free(context.arena.alloc(16));
    context.arena.reset("free-all");
    context.otherArena.reset("free-all");
    context.stack.free(context.stackTop);
    context.stack.free(context.stackBottom);
    assert.equal(context.stack.stats().liveAllocations, 0);
    context.pool.free(context.poolBlock);
    assert.equal(context.pool.stats().liveAllocations, 0);
    for (const owner of [context.stack, context.pool, context.otherPool, context.fullPool]) owner.dispose();
    context.buddy.free(context.buddyBlock);
    assert.equal(context.buddy.stats().largestFreeBlock, 65536);
    context.buddy.dispose();
    context.heap.free(context.heapBlock);
    context.handle.free();
    assert.equal(context.heap.stats().liveAllocations, 0);
    context.heap.dispose();
    context.busyHeap.dispose();
  });
}

test("input errors name the value and what was expected", () => {
  const allocator = new SystemAllocator();
  assert.throws(() => allocator.alloc(-1), /'size' must be an integer from 0 to \d+: current value is -1/);
  assert.throws(() => allocator.alloc(8, 3), /'align' must be a power of two from 1 to 4096: current value is 3/);
  assert.throws(
    () => mapPages(4096, { protection: any("rwx") }),
    /must be one of "none", "read", "read-write": current value is "rwx"/,
  );
});
