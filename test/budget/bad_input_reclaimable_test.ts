// Bad input and misuse of PurgeableBuffer, FramePool and ResourceHeap: each
// row gets its documented error without a native call (checked before any)
// and leaves memkit usable.
import assert from "node:assert/strict";
import { FramePool, type FrameSet } from "../../src/budget/frame_pool.ts";
import { PurgeableBuffer } from "../../src/budget/purgeable_buffer.ts";
import { type HeapResource, ResourceHeap } from "../../src/budget/resource_heap.ts";
import { type BadInputRow, badInputTable } from "../_bad_input.ts";
import { rangeBoundsTable } from "./_range_bounds.ts";

// deno-lint-ignore no-explicit-any
const any = (value: unknown): any => value;

const purgeableRows: BadInputRow<PurgeableBuffer | undefined>[] = [
  { name: "new PurgeableBuffer('8')", act: () => new PurgeableBuffer(any("8")), expect: TypeError },
  { name: "new PurgeableBuffer(-1)", act: () => new PurgeableBuffer(-1), expect: RangeError },
  { name: "new PurgeableBuffer(NaN)", act: () => new PurgeableBuffer(NaN), expect: RangeError },
  { name: "new PurgeableBuffer(1.5)", act: () => new PurgeableBuffer(1.5), expect: RangeError },
  { name: "new PurgeableBuffer(0)", act: () => new PurgeableBuffer(0), expect: RangeError },
  { name: "new PurgeableBuffer(2**48)", act: () => new PurgeableBuffer(2 ** 48), expect: RangeError },
  {
    name: "new PurgeableBuffer(8, { restore: 1 })",
    act: () => new PurgeableBuffer(8, any({ restore: 1 })),
    expect: TypeError,
  },
  {
    name: "new PurgeableBuffer(8, { bogus: 1 })",
    act: () => new PurgeableBuffer(8, any({ bogus: 1 })),
    expect: TypeError,
  },
  { name: "new PurgeableBuffer(8, 'x')", act: () => new PurgeableBuffer(8, any("x")), expect: TypeError },
  {
    name: "bytes of a volatile PurgeableBuffer",
    arrange: () => {
      const buffer = new PurgeableBuffer(8);
      buffer.makeVolatile();
      return buffer;
    },
    act: (buffer) => buffer!.bytes,
    expect: "unsupported",
    after: (buffer) => {
      buffer!.makeNonVolatile();
      buffer!.bytes[7] = 1;
      assert.equal(buffer!.bytes[7], 1);
      buffer!.dispose();
    },
  },
  ...(["bytes", "makeVolatile", "makeNonVolatile"] as const).map((op): BadInputRow<PurgeableBuffer | undefined> => ({
    name: `${op} of a disposed PurgeableBuffer`,
    arrange: () => {
      const buffer = new PurgeableBuffer(8);
      buffer.dispose();
      return buffer;
    },
    act: (buffer) => op === "bytes" ? buffer!.bytes : buffer![op](),
    expect: "use-after-free",
    after: () => new PurgeableBuffer(8).dispose(),
  })),
];
badInputTable("PurgeableBuffer", purgeableRows);

interface Pools {
  pool: FramePool;
  other: FramePool;
  set: FrameSet;
  released: FrameSet;
  foreign: FrameSet;
}

const format = { width: 16, height: 4, bytesPerPixel: 4 };

function arrangePools(): Pools {
  const pool = new FramePool({ maxFrames: 9 });
  const other = new FramePool();
  const released = pool.acquireFrameSet(format)!;
  released.release();
  return { pool, other, set: pool.acquireFrameSet(format)!, released, foreign: other.acquireFrameSet(format)! };
}

// The pool still serves its format, the set in use is intact, then everything goes.
function poolsUsable({ pool, other, set }: Pools): void {
  set.current.bytes[0] = 1;
  const stats = pool.stats().formats[0];
  assert.equal(stats.inUse, 3);
  const more = pool.acquireFrameSet(format)!;
  more.release();
  set.release();
  pool.dispose();
  other.dispose();
}

const frameRows: Omit<BadInputRow<Pools>, "arrange" | "after">[] = [
  { name: "acquireFrameSet(null)", act: (c) => c.pool.acquireFrameSet(any(null)), expect: TypeError },
  { name: "acquireFrameSet('4k')", act: (c) => c.pool.acquireFrameSet(any("4k")), expect: TypeError },
  { name: "width 0", act: (c) => c.pool.acquireFrameSet({ ...format, width: 0 }), expect: RangeError },
  { name: "height 0", act: (c) => c.pool.acquireFrameSet({ ...format, height: 0 }), expect: RangeError },
  { name: "width 1.5", act: (c) => c.pool.acquireFrameSet({ ...format, width: 1.5 }), expect: RangeError },
  { name: "height -1", act: (c) => c.pool.acquireFrameSet({ ...format, height: -1 }), expect: RangeError },
  {
    name: "bytesPerPixel NaN",
    act: (c) => c.pool.acquireFrameSet({ ...format, bytesPerPixel: NaN }),
    expect: RangeError,
  },
  {
    name: "bytesPerPixel 0.5",
    act: (c) => c.pool.acquireFrameSet({ ...format, bytesPerPixel: 0.5 }),
    expect: RangeError,
  },
  { name: "planes 0", act: (c) => c.pool.acquireFrameSet({ ...format, planes: 0 }), expect: RangeError },
  { name: "width Infinity", act: (c) => c.pool.acquireFrameSet({ ...format, width: Infinity }), expect: RangeError },
  { name: "width 2**21", act: (c) => c.pool.acquireFrameSet({ ...format, width: 2 ** 21 }), expect: RangeError },
  { name: "width '16'", act: (c) => c.pool.acquireFrameSet({ ...format, width: any("16") }), expect: TypeError },
  { name: "no height", act: (c) => c.pool.acquireFrameSet(any({ width: 4, bytesPerPixel: 4 })), expect: TypeError },
  {
    name: "unknown key 'stride'",
    act: (c) => c.pool.acquireFrameSet(any({ ...format, stride: 64 })),
    expect: TypeError,
  },
  { name: "release(null)", act: (c) => c.pool.release(any(null)), expect: TypeError },
  { name: "release({})", act: (c) => c.pool.release(any({ current: 1 })), expect: TypeError },
  { name: "release of a released set", act: (c) => c.pool.release(c.released), expect: "double-free" },
  { name: "release of a released frame", act: (c) => c.pool.release(c.released.next), expect: "double-free" },
  { name: "release of another pool's set", act: (c) => c.pool.release(c.foreign), expect: "mismatched-allocator" },
  {
    name: "release of another pool's frame",
    act: (c) => c.pool.release(c.foreign.current),
    expect: "mismatched-allocator",
  },
  { name: "bytes of a released frame", act: (c) => c.released.current.bytes, expect: "use-after-free" },
  { name: "plane(1) of a one-plane frame", act: (c) => c.set.current.plane(1), expect: RangeError },
  { name: "row(4) of a 4-row frame", act: (c) => c.set.current.row(4), expect: RangeError },
  { name: "row('0')", act: (c) => c.set.current.row(any("0")), expect: TypeError },
  { name: "adaptToPressure(5)", act: (c) => c.pool.adaptToPressure(any(5)), expect: RangeError },
  { name: "adaptToPressure(-1)", act: (c) => c.pool.adaptToPressure(any(-1)), expect: RangeError },
  { name: "adaptToPressure(1.5)", act: (c) => c.pool.adaptToPressure(any(1.5)), expect: RangeError },
  { name: "adaptToPressure('high')", act: (c) => c.pool.adaptToPressure(any("high")), expect: TypeError },
];
badInputTable(
  "FramePool",
  frameRows.map((row) => ({ ...row, arrange: arrangePools, after: poolsUsable })),
);

badInputTable<undefined>("FramePool options", [
  { name: "maxFrames 2", act: () => new FramePool({ maxFrames: 2 }), expect: RangeError },
  { name: "maxFrames 3.5", act: () => new FramePool({ maxFrames: 3.5 }), expect: RangeError },
  { name: "maxFrames '6'", act: () => new FramePool({ maxFrames: any("6") }), expect: TypeError },
  { name: "maxBytes -1", act: () => new FramePool({ maxBytes: -1 }), expect: RangeError },
  { name: "maxBytes NaN", act: () => new FramePool({ maxBytes: NaN }), expect: RangeError },
  { name: "unknown option", act: () => new FramePool(any({ frames: 3 })), expect: TypeError },
  {
    name: "acquireFrameSet after dispose",
    act: () => {
      const pool = new FramePool();
      pool.dispose();
      pool.acquireFrameSet(format);
    },
    expect: "use-after-free",
  },
]);

interface Heaps {
  heap: ResourceHeap;
  other: ResourceHeap;
  a: HeapResource;
  fixed: HeapResource;
  big: HeapResource;
  released: HeapResource;
  gone: HeapResource;
  foreign: HeapResource;
}

function arrangeHeaps(): Heaps {
  const heap = new ResourceHeap({ capacity: 1 << 16 });
  const other = new ResourceHeap({ capacity: 1 << 16 });
  const released = heap.allocate(64)!;
  released.release();
  const gone = heap.allocate(256, { aliasable: true, name: "gone" })!;
  const taker = heap.allocate(128, { name: "taker" })!;
  heap.alias(gone, taker);
  taker.release();
  const a = heap.allocate(1024, { aliasable: true, name: "a" })!;
  a.bytes.fill(7);
  return {
    heap,
    other,
    a,
    fixed: heap.allocate(512, { name: "fixed" })!,
    big: heap.allocate(2048, { name: "big" })!,
    released,
    gone,
    foreign: other.allocate(64)!,
  };
}

// The heap still places resources and its live ones are intact, then everything goes.
function heapsUsable({ heap, other, a, fixed, big }: Heaps): void {
  assert.ok(a.bytes.every((b) => b === 7));
  assert.equal(heap.stats().resources, 3);
  heap.allocate(32)!.release();
  fixed.release();
  big.release();
  a.release();
  heap.dispose();
  other.dispose();
}

const heapRows: Omit<BadInputRow<Heaps>, "arrange" | "after">[] = [
  { name: "allocate(-1)", act: (c) => c.heap.allocate(-1), expect: RangeError },
  { name: "allocate(NaN)", act: (c) => c.heap.allocate(NaN), expect: RangeError },
  { name: "allocate(1.5)", act: (c) => c.heap.allocate(1.5), expect: RangeError },
  { name: "allocate(0)", act: (c) => c.heap.allocate(0), expect: RangeError },
  { name: "allocate(capacity + 1)", act: (c) => c.heap.allocate(c.heap.capacity + 1), expect: RangeError },
  { name: "allocate('8')", act: (c) => c.heap.allocate(any("8")), expect: TypeError },
  { name: "allocate(8, { alignment: 3 })", act: (c) => c.heap.allocate(8, { alignment: 3 }), expect: RangeError },
  {
    name: "allocate(8, { alignment: 2 pages })",
    act: (c) => c.heap.allocate(8, { alignment: 1 << 20 }),
    expect: RangeError,
  },
  {
    name: "allocate(8, { alignment: '16' })",
    act: (c) => c.heap.allocate(8, any({ alignment: "16" })),
    expect: TypeError,
  },
  { name: "allocate(8, { aliasable: 1 })", act: (c) => c.heap.allocate(8, any({ aliasable: 1 })), expect: TypeError },
  { name: "allocate(8, { bogus: 1 })", act: (c) => c.heap.allocate(8, any({ bogus: 1 })), expect: TypeError },
  { name: "maxAvailableSize(3)", act: (c) => c.heap.maxAvailableSize(3), expect: RangeError },
  { name: "maxAvailableSize('16')", act: (c) => c.heap.maxAvailableSize(any("16")), expect: TypeError },
  {
    name: "alias of resources of different heaps",
    act: (c) => c.heap.alias(c.a, c.foreign),
    expect: "mismatched-allocator",
  },
  { name: "alias(null, a)", act: (c) => c.heap.alias(any(null), c.a), expect: TypeError },
  { name: "alias(a, a)", act: (c) => c.heap.alias(c.a, c.a), expect: RangeError },
  { name: "alias of a resource not aliasable", act: (c) => c.heap.alias(c.fixed, c.a), expect: "unsupported" },
  {
    name: "alias into a smaller resource",
    act: (c) => c.heap.alias(c.a, c.big),
    expect: RangeError,
  },
  { name: "alias of a released resource", act: (c) => c.heap.alias(c.released, c.a), expect: "use-after-free" },
  { name: "alias of a resource aliased away", act: (c) => c.heap.alias(c.gone, c.a), expect: "use-after-free" },
  { name: "bytes of a resource aliased away", act: (c) => c.gone.bytes, expect: "use-after-free" },
  { name: "allocate(8, { into: {} })", act: (c) => c.heap.allocate(8, { into: any({}) }), expect: TypeError },
  { name: "allocate(8, { into: null })", act: (c) => c.heap.allocate(8, { into: any(null) }), expect: TypeError },
  {
    name: "allocate(8, { into: a Proxy of a resource })",
    act: (c) => c.heap.allocate(8, { into: new Proxy(c.a, {}) }),
    expect: TypeError,
  },
  {
    name: "allocate into another heap's resource",
    act: (c) => c.heap.allocate(8, { into: c.foreign }),
    expect: "mismatched-allocator",
  },
  {
    name: "allocate into a resource not aliasable",
    act: (c) => c.heap.allocate(8, { into: c.fixed }),
    expect: "unsupported",
  },
  {
    name: "allocate into a released resource",
    act: (c) => c.heap.allocate(8, { into: c.released }),
    expect: "use-after-free",
  },
  {
    name: "allocate into a resource whose memory went to another",
    act: (c) => c.heap.allocate(8, { into: c.gone }),
    expect: "use-after-free",
  },
  { name: "allocate into a smaller resource", act: (c) => c.heap.allocate(2048, { into: c.a }), expect: RangeError },
  {
    name: "allocate into a resource whose address misses the alignment",
    act: (c) => {
      assert.ok(c.a.offset !== 0);
      return c.heap.allocate(8, { alignment: (c.a.offset & -c.a.offset) * 2, into: c.a });
    },
    expect: RangeError,
  },
  { name: "free of a released resource", act: (c) => c.heap.free(c.released), expect: "double-free" },
  { name: "free of another heap's resource", act: (c) => c.heap.free(c.foreign), expect: "mismatched-allocator" },
  { name: "free(new Uint8Array(8))", act: (c) => c.heap.free(any(new Uint8Array(8))), expect: TypeError },
];
badInputTable("ResourceHeap", heapRows.map((row) => ({ ...row, arrange: arrangeHeaps, after: heapsUsable })));

badInputTable<undefined>("ResourceHeap options", [
  { name: "capacity 0", act: () => new ResourceHeap({ capacity: 0 }), expect: RangeError },
  { name: "capacity -1", act: () => new ResourceHeap({ capacity: -1 }), expect: RangeError },
  { name: "capacity NaN", act: () => new ResourceHeap({ capacity: NaN }), expect: RangeError },
  { name: "capacity '1'", act: () => new ResourceHeap({ capacity: any("1") }), expect: TypeError },
  { name: "unknown option", act: () => new ResourceHeap(any({ size: 1 })), expect: TypeError },
]);

const frame = { width: 16, height: 4, bytesPerPixel: 4 };
rangeBoundsTable("FramePool", [
  { name: "maxFrames", make: (v) => new FramePool({ maxFrames: v }), below: [2, 0, -1], above: [2 ** 20 + 1, 2 ** 30] },
  { name: "maxBytes", make: (v) => new FramePool({ maxBytes: v }), below: [0, -1], above: [2 ** 47 + 1, 2 ** 52] },
  ...(["width", "height", "bytesPerPixel", "planes"] as const).map((key) => ({
    name: `acquireFrameSet ${key}`,
    make: (v: number) => {
      using pool = new FramePool();
      pool.acquireFrameSet({ ...frame, [key]: v })?.release();
    },
    below: [0, -1, -(2 ** 31)],
    above: key === "bytesPerPixel" || key === "planes" ? [65, 2 ** 20 + 1, 2 ** 31] : [2 ** 20 + 1, 2 ** 31],
  })),
  {
    name: "adaptToPressure level",
    make: (v: number) => new FramePool().adaptToPressure(any(v)),
    below: [-1, -9],
    above: [5, 99],
  },
]);
rangeBoundsTable("ResourceHeap", [
  {
    name: "capacity",
    make: (v) => new ResourceHeap({ capacity: v }),
    below: [0, -1],
    above: [2 ** 47 + 1, 2 ** 52],
    tryUpper: false, // would reserve 128 TiB
  },
  {
    name: "allocate size",
    make: (v) => {
      using heap = new ResourceHeap({ capacity: 1 << 16 });
      heap.allocate(v);
    },
    below: [0, -1],
    above: [(1 << 16) + 1, 2 ** 52],
  },
]);
rangeBoundsTable("PurgeableBuffer", [
  {
    name: "byteLength",
    make: (v) => new PurgeableBuffer(v),
    below: [0, -1],
    above: [2 ** 47 + 1, 2 ** 52],
    tryUpper: false, // would map 128 TiB
  },
]);
