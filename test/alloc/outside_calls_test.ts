// What a program does around RegionAllocator, StackAllocator, workerArena()
// and onGC() (an adversarial pass; each case failed before its fix): a
// marker whose fields are set by hand, a backing whose code calls back into
// a region while the region makes its heap, calls that take no memory on a
// fresh RegionAllocator, a refusal that names what happened, the thread's
// arena after a reset, and watchers that come and go.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AllocationError,
  type Allocator,
  Arena,
  FreeListAllocator,
  gcHint,
  onGC,
  RegionAllocator,
  StackAllocator,
  type StackMarker,
  struct,
  SystemAllocator,
  workerArena,
} from "../../mod.ts";
import { fixture, runChild } from "../_helpers.ts";

const error = (category: string) => ({ name: "AllocationError", category });
const Vertex = struct({ position: "f32x3", color: "f32x4" });

test("StackAllocator: a marker's fields cannot be set; a look-alike is a TypeError", () => {
  using stack = new StackAllocator({ capacity: 4096 });
  const live = stack.alloc(64).fill(0xaa);
  const marker = stack.mark();
  stack.alloc(64);
  assert.throws(() => {
    (marker as { depth: number }).depth = 1.5;
  }, TypeError);
  assert.equal(marker.depth, 1);
  const forged = [
    { depth: 0 },
    { depth: -1, owner: stack, topId: 0 },
    Object.create(Object.getPrototypeOf(marker)),
    new Proxy(marker, {}),
  ];
  for (const fake of forged) assert.throws(() => stack.rewind(fake as StackMarker), TypeError);
  assert.equal(stack.stats().liveAllocations, 2, "nothing rewound");
  // A getter on a real marker runs no code of the program inside rewind.
  let reads = 0;
  Object.defineProperty(marker, "depth", {
    get() {
      reads++;
      stack.reset();
      return 0;
    },
  });
  stack.rewind(marker);
  assert.equal(reads, 0);
  assert.equal(stack.stats().liveAllocations, 1);
  const next = stack.alloc(64).fill(0x11);
  assert.equal(live[0], 0xaa, "the live block keeps its bytes");
  assert.notEqual(next.byteOffset, live.byteOffset);
});

test("StackAllocator: rewind to a marker whose depth was forged does not hang (a child process)", () => {
  const child = runChild(fixture("outside_calls_child.ts"), {}, ["stack"], 30_000);
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /live 1/);
});

// A backing in JavaScript whose first take runs `during` (once), then takes from a SystemAllocator.
function backingRunning(during: () => void): { backing: Allocator; system: SystemAllocator } {
  const system = new SystemAllocator();
  let first = true;
  const backing = {
    kind: "system",
    alloc: (size: number, align?: number) => system.alloc(size, align),
    tryAlloc(size: number, align?: number) {
      if (first) {
        first = false;
        during();
      }
      return system.tryAlloc(size, align);
    },
    array: () => {
      throw new Error("not used");
    },
    free: (view: ArrayBufferView) => system.free(view),
    resize: (view: ArrayBufferView, size: number) => system.resize(view, size),
    owns: (view: ArrayBufferView) => system.owns(view),
    stats: () => system.stats(),
    dispose: () => system.dispose(),
  } as unknown as Allocator;
  return { backing, system };
}

test("RegionAllocator: a call from its backing's code while a region makes its heap is unsupported", () => {
  let inner: unknown = null;
  const { backing, system } = backingRunning(() => {
    try {
      inner = regions.allocateAudioData(4);
    } catch (e) {
      inner = e;
    }
  });
  const regions = new RegionAllocator({ capacity: 4096, backing }); // the backing's code runs later
  const outer = regions.allocateAudioData(100);
  assert.ok(inner instanceof AllocationError && inner.category === "unsupported", String(inner));
  assert.equal(regions.getMemoryReport().regions.audio.liveAllocations, 1);
  assert.equal(system.stats().liveAllocations, 1, "one heap, one chunk");
  regions.dispose();
  assert.equal(outer.length, 0);
  assert.equal(system.stats().liveAllocations, 0, "the chunk went back");
  system.dispose();
});

test("RegionAllocator: disposed by its backing's code while a region makes its heap: use-after-free", () => {
  const { backing, system } = backingRunning(() => regions.dispose());
  const regions = new RegionAllocator({ capacity: 4096, backing }); // the backing's code runs later
  assert.throws(() => regions.allocateVertexData(4, Vertex), error("use-after-free"));
  assert.equal(system.stats().liveAllocations, 0, "the heap made meanwhile gave its chunk back");
  assert.equal(regions.getMemoryReport().totalCapacity, 0);
  system.dispose();
});

test("RegionAllocator: the same with an Arena backing and its observer", () => {
  using arena = new Arena({ capacity: 1 << 16 });
  using regions = new RegionAllocator({ capacity: 4096, backing: arena });
  let inner: unknown = null;
  const stop = arena.observe({
    onAlloc() {
      try {
        regions.allocateUniformData(1, Vertex);
      } catch (e) {
        inner = e;
      }
    },
  });
  const outer = regions.allocateUniformData(2, Vertex);
  stop();
  assert.ok(inner instanceof AllocationError && inner.category === "unsupported", String(inner));
  assert.equal(outer.length, 512);
  assert.equal(regions.getMemoryReport().regions.uniform.liveAllocations, 1);
});

test("RegionAllocator: what takes no memory makes no heap, refused or not", () => {
  using regions = new RegionAllocator({ capacity: 1 << 16 });
  const untouched = () => assert.equal(regions.getMemoryReport().totalCapacity, 0);
  regions.deallocate(new Uint8Array(0));
  untouched();
  assert.throws(
    () => regions.deallocate(new Uint8Array(new ArrayBuffer(0, { maxByteLength: 16 }))),
    error("invalid-free"),
  );
  untouched();
  assert.throws(() => regions.deallocate(new Uint8Array(16)), error("invalid-free"));
  untouched();
  for (const make of [() => regions.allocateVertexData(-0, Vertex), () => regions.allocateUniformData(0, Vertex)]) {
    assert.equal(make().length, 0);
  }
  assert.equal(regions.allocateAudioData(0).length, 0);
  assert.equal(regions.allocateAlignedBuffer(0, 64, "f32").length, 0);
  assert.equal(regions.region("texture").alloc(0).length, 0);
  assert.equal(regions.region("texture").resize(new Uint8Array(0), 0).length, 0);
  assert.throws(() => regions.region("vertex").alloc("8" as never), TypeError);
  assert.throws(() => regions.region("vertex").alloc(-1), RangeError);
  untouched();
  // A detached view: the same answer before and after the regions have heaps.
  const detached = new Uint8Array(8);
  detached.buffer.transfer();
  assert.throws(() => regions.deallocate(detached), error("double-free"));
  regions.allocateVertexData(1, Vertex);
  assert.throws(() => regions.deallocate(detached), error("double-free"));
});

test("RegionAllocator: a block of a region that ended, or of another allocator, says so", () => {
  using heap = new FreeListAllocator({ capacity: 1 << 16 });
  const regions = new RegionAllocator({ capacity: 4096, backing: heap });
  const vertices = regions.allocateVertexData(4, Vertex);
  using other = new FreeListAllocator({ capacity: 4096 });
  assert.throws(() => regions.deallocate(other.alloc(16)), error("mismatched-allocator"));
  const moved = regions.allocateVertexData(1, Vertex);
  (moved.buffer as ArrayBuffer).transfer();
  assert.throws(() => regions.deallocate(vertices), error("corruption"));
  regions.dispose();
});

test("RegionAllocator: its heaps are named after it in the report at exit (a child process)", () => {
  const child = runChild(fixture("outside_calls_child.ts"), {}, ["region"], 30_000);
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stderr, /RegionAllocator \(audio region\)/);
  assert.doesNotMatch(child.stderr, /FreeListAllocator/);
});

test("workerArena(): a reset keeps the thread's arena; later options are checked", () => {
  const arena = workerArena();
  arena.reset("free-all");
  assert.equal(workerArena(), arena);
  arena.alloc(8);
  arena.reset({ retainLimit: 0 });
  assert.equal(workerArena(), arena);
  assert.throws(() => workerArena({ capacity: -5 }), RangeError);
  assert.throws(() => workerArena("x" as never), TypeError);
  assert.equal(workerArena({ capacity: 1 << 16 }), arena, "valid options of a later call are ignored");
  arena.dispose();
  const next = workerArena();
  assert.notEqual(next, arena, "after dispose() the thread gets a new arena");
});

test("onGC(): a watcher that comes and goes arms no second sentinel", async () => {
  for (let i = 0; i < 50; i++) onGC(() => {})();
  let calls = 0;
  const stop = onGC(() => calls++);
  try {
    for (let round = 0; round < 3; round++) {
      const before = calls;
      if (!gcHint()) return; // no way to ask for a collection here (Deno without --expose-gc)
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One call a collection (the runtime may collect on its own meanwhile, a few times at most); each of the
      // 50 watchers that came and went used to leave a sentinel behind: 51 calls a collection, for good.
      assert.ok(calls - before < 10, `called ${calls - before} times after one requested collection`);
    }
  } finally {
    stop();
  }
});
